/**
 * The provider conformance suite on the wire: the real dots-wrapper client against the testkit's
 * DigitalOcean API emulator on 127.0.0.1. Skipped: native subnets, which DigitalOcean lacks.
 */
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { describeProviderConformance } from '@armada/testkit/conformance';
import { createDigitalOceanProvider, tag } from '../src/index.js';

let emulator: DigitalOceanEmulator;

describeProviderConformance({
  name: 'digitalocean (API emulator, real dots-wrapper client)',
  skip: ['nativeSubnets'],
  async setup() {
    emulator = await startDigitalOceanEmulator({ bootMs: 60, retryAfterSeconds: 0 });
    emulator.createDomain('conformance.test');
    const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'test-token', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 20, waitTimeoutMs: 20_000, pageSize: 2 });
    // Pages of 2: discovery must follow links.pages.next.
    return {
      provider,
      faults: emulator.faults,
      dnsZone: 'conformance.test',
      countInstances: async (environment) => emulator.dropletsTagged(tag('armada:env', environment)).length,
      close: () => emulator.close(),
    };
  },
});
