/**
 * A droplet cannot move to another VPC: when the network is replaced (its range changed), every
 * droplet in it is replaced too, the droplets deleted before their VPC (DigitalOcean refuses to
 * delete a VPC with members), through the real dots-wrapper client against the emulator.
 */
import { executePlan, isEmptyPlan, loadSpecFile, plan, type EnvironmentSpec } from '@armada/core';
import { startDigitalOceanEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createDigitalOceanProvider } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };

/** The same environment in 10.1.0.0/16 instead of 10.0.0.0/16. */
function moved(spec: EnvironmentSpec): EnvironmentSpec {
  const renumber = (cidr: string) => cidr.replace(/^10\.0\./, '10.1.');
  return { ...spec, network: { ...spec.network, cidr: renumber(spec.network.cidr), subnets: spec.network.subnets.map((subnet) => ({ ...subnet, cidr: renumber(subnet.cidr) })) } };
}

describe('replacing a DigitalOcean VPC', () => {
  it('replaces its droplets, deleting them before the VPC, and settles', async () => {
    const emulator = await startDigitalOceanEmulator({ bootMs: 20 });
    try {
      const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'replace', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 10 });
      const spec: EnvironmentSpec = { ...(await loadSpecFile(specPath)), provider: { id: 'digitalocean', region: 'nyc3' } };
      expect((await executePlan(await plan({ spec, provider }), { provider, retry: fastRetry })).status).toBe('succeeded');
      const target = moved(spec);
      const replacing = await plan({ spec: target, provider });
      const replaced = replacing.actions.filter((action) => action.type === 'replace').map((action) => action.address);
      expect(replaced.sort()).toEqual(['instance.data-1', 'instance.data-2', 'instance.web-1', 'instance.web-2', 'network.Armada']);
      expect(replacing.actions.find((action) => action.address === 'instance.web-1')?.reason).toBe('network.Armada is replaced');
      // Deleted in order on the first attempt: no VPC delete refused for its members, then retried.
      const retried: string[] = [];
      const result = await executePlan(replacing, { provider, retry: fastRetry, onEvent: (event) => event.type === 'retried' && retried.push(`${event.address}: ${event.error.message}`) });
      expect(result.failed.map((failure) => `${failure.address}: ${failure.error.message}`)).toEqual([]);
      expect(result.status).toBe('succeeded');
      expect(retried.filter((entry) => entry.startsWith('network.'))).toEqual([]);
      expect(emulator.inventory()).toMatchObject({ vpcs: 1, droplets: 4 });
      expect(isEmptyPlan(await plan({ spec: target, provider }))).toBe(true);
    } finally {
      await emulator.close();
    }
  });
});
