/**
 * The story environment applied 20 times on the EC2 emulator (the real SDK client on the wire)
 * under throttling, eventual consistency and lost responses; the emulator's own tables counted
 * after each run. See describeAppliesUnderFaults.
 */
import { loadSpecFile } from '@armada/core';
import { startAwsEmulator } from '@armada/testkit';
import { describeAppliesUnderFaults } from '@armada/testkit/conformance';
import { fileURLToPath } from 'node:url';
import { createAwsProvider } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

describeAppliesUnderFaults({
  name: 'AWS (EC2 emulator)',
  spec: async () => ({ ...(await loadSpecFile(specPath)), provider: { id: 'aws', region: 'us-east-1' } }),
  async start(seed) {
    const emulator = await startAwsEmulator({ bootMs: 100, terminateMs: 20, seed });
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' }, pollIntervalMs: 20 });
    return { provider, faults: emulator.faults, inventory: () => emulator.inventory(), close: () => emulator.close() };
  },
  // The main route table and the default security group come with the VPC.
  expected: { vpcs: 1, subnets: 2, internetGateways: 1, routeTables: 3, securityGroups: 3, keyPairs: 1, instances: 4 },
});
