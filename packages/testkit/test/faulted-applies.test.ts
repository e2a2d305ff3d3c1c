/**
 * The story environment applied 20 times on the in-memory cloud under throttling, eventual
 * consistency and lost responses; the cloud's own tables counted after each run.
 */
import { loadSpecFile } from '@armada/core';
import { fileURLToPath } from 'node:url';
import { describeAppliesUnderFaults } from '../src/conformance.js';
import { InMemoryCloud, createInMemoryProvider } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

describeAppliesUnderFaults({
  name: 'in-memory',
  spec: () => loadSpecFile(specPath),
  async start(seed) {
    const cloud = new InMemoryCloud({ seed, bootMs: 50 });
    return { provider: createInMemoryProvider({ cloud, region: 'local-1' }), faults: cloud.faults, inventory: () => cloud.inventory() };
  },
  expected: { networks: 1, subnets: 2, firewalls: 2, keyPairs: 1, instances: 4, dnsRecords: 0 },
});
