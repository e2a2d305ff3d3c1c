/**
 * The provider conformance suite on the wire: the plugin's fetch client against this package's
 * OpenStack emulator on 127.0.0.1. Skipped: DNS (no Designate here) and subnet peers (Neutron
 * security groups cannot name a subnet), which the provider declares missing.
 */
import { describeProviderConformance } from '@armada/testkit/conformance';
import { createOpenStackProvider } from '../src/index.js';
import { startOpenStackEmulator, type OpenStackEmulator } from './emulator/index.js';

let emulator: OpenStackEmulator;

describeProviderConformance({
  name: 'openstack (emulator, fetch client)',
  skip: ['dns', 'firewallPeerBySubnet'],
  async setup() {
    emulator = await startOpenStackEmulator({ bootMs: 60, deleteMs: 20, retryAfterSeconds: 0 });
    const provider = createOpenStackProvider({
      region: 'region-b.geo-1',
      authUrl: emulator.authUrl,
      username: 'demo',
      password: 'secret',
      project: 'demo',
      pollIntervalMs: 20,
      waitTimeoutMs: 20_000,
      throttleDelayMs: 10,
      // Pages of 2: discovery must follow the `<key>_links` next links.
      pageSize: 2,
    });
    await provider.verify?.();
    return {
      provider,
      faults: emulator.faults,
      countInstances: async (environment) => emulator.servers().filter((server) => server.metadata['armada:environment'] === environment).length,
      close: () => emulator.close(),
    };
  },
});
