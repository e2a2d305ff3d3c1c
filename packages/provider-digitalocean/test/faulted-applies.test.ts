/**
 * The story environment applied 20 times on the DigitalOcean emulator (the real dots-wrapper client
 * on the wire) under throttling, eventual consistency and lost responses; the emulator's own tables
 * counted after each run. See describeAppliesUnderFaults.
 */
import { loadSpecFile } from '@armada/core';
import { startDigitalOceanEmulator } from '@armada/testkit';
import { describeAppliesUnderFaults } from '@armada/testkit/conformance';
import { fileURLToPath } from 'node:url';
import { createDigitalOceanProvider } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

describeAppliesUnderFaults({
  name: 'DigitalOcean (API emulator)',
  spec: async () => ({ ...(await loadSpecFile(specPath)), provider: { id: 'digitalocean', region: 'nyc3' } }),
  async start(seed) {
    const emulator = await startDigitalOceanEmulator({ bootMs: 60, retryAfterSeconds: 0, seed });
    const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'bad-day', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 20, waitTimeoutMs: 20_000 });
    return { provider, faults: emulator.faults, inventory: () => emulator.inventory(), close: () => emulator.close() };
  },
  // The spec's two firewalls and the private subnet's; the droplet and firewall tags a fault-free apply makes.
  expected: { vpcs: 1, droplets: 4, firewalls: 2, sshKeys: 1, tags: 17, domainRecords: 0 },
});
