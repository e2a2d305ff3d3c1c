/**
 * The story environment applied 20 times on this package's OpenStack emulator (the plugin's fetch
 * client on the wire) under throttling, eventual consistency and lost responses; the emulator's own
 * tables counted after each run. See describeAppliesUnderFaults in @armada/testkit.
 */
import { loadSpecFile } from '@armada/core';
import { describeAppliesUnderFaults } from '@armada/testkit/conformance';
import { fileURLToPath } from 'node:url';
import { createOpenStackProvider } from '../src/index.js';
import { EMULATOR_REGION, providerOptionsFor, startOpenStackEmulator } from './emulator/index.js';

const specPath = fileURLToPath(new URL('../../environments/armada.yaml', import.meta.url));

describeAppliesUnderFaults({
  name: 'OpenStack (example emulator)',
  spec: async () => ({ ...(await loadSpecFile(specPath)), provider: { id: 'openstack', region: EMULATOR_REGION } }),
  async start(seed) {
    const emulator = await startOpenStackEmulator({ bootMs: 60, deleteMs: 20, retryAfterSeconds: 0, seed });
    const provider = createOpenStackProvider(providerOptionsFor(emulator, { waitTimeoutMs: 20_000 }));
    return { provider, faults: emulator.faults, inventory: () => emulator.inventory(), close: () => emulator.close() };
  },
  // A router for the network. Ports: one per server, plus the router's interface on the public
  // subnet (Neutron counts it as a port too). A floating IP per server in the public subnet.
  expected: { networks: 1, subnets: 2, ports: 5, routers: 1, floatingIps: 2, securityGroups: 2, servers: 4, keypairs: 1 },
});
