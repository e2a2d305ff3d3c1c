/**
 * A run killed (SIGKILL, a real child process) in the middle of an apply on the EC2 emulator, then
 * resumed by a new plan: nothing that was being created is replaced, and the resumed run ends with
 * exactly the desired resources. Killed at each kind of create call the story environment makes:
 * - CreateVpc: the VPC can be there without its internet gateway, which the first public subnet
 *   then finishes (it used to fail the resume);
 * - CreateSubnet, CreateRouteTable, RunInstances: a subnet can be there without its route table,
 *   its route or its public-IP mapping; it used to be read as private and replaced, with its
 *   instances. Now it is read as unfinished (or private) and finished in place.
 */
import { spawn } from 'node:child_process';
import { executePlan, isEmptyPlan, loadSpecFile, plan } from '@armada/core';
import { startAwsEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createAwsProvider } from '../src/index.js';
const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/apply-child.ts', import.meta.url));
describe('killed apply', () => {
  it.each(['CreateVpc', 'CreateInternetGateway', 'CreateSubnet', 'CreateRouteTable', 'CreateSecurityGroup', 'ImportKeyPair', 'RunInstances'])('killed at the first %s, resumed: nothing replaced, exactly the desired resources', async (action) => {
    const emulator = await startAwsEmulator({ bootMs: 300, terminateMs: 20 });
    try {
      const run = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', child, emulator.endpoint], { stdio: ['ignore', 'pipe', 'inherit'] });
      // Killed as soon as the emulator has answered the call.
      for (let attempt = 0; emulator.calls(action) === 0; attempt++) {
        if (attempt > 10_000) throw new Error(`the run never called ${action}`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      run.kill('SIGKILL');
      await new Promise((resolve) => run.once('exit', resolve));
      const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' }, pollIntervalMs: 20 });
      const spec = { ...(await loadSpecFile(specPath)), provider: { id: 'aws', region: 'us-east-1' } };
      const resumed = await plan({ spec, provider });
      expect(resumed.summary.replace + resumed.summary.delete).toBe(0);
      const result = await executePlan(resumed, { provider, retry: { minDelayMs: 10, maxDelayMs: 100, maxAttempts: 15 } });
      expect(result.failed.map((failure) => `${failure.address}: ${failure.error.message}`)).toEqual([]);
      expect(result.status).toBe('succeeded');
      expect(emulator.inventory()).toEqual({ vpcs: 1, subnets: 2, internetGateways: 1, routeTables: 3, securityGroups: 3, keyPairs: 1, instances: 4 });
      expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
    } finally {
      await emulator.close();
    }
  });
});
