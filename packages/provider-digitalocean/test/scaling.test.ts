/**
 * Count scaling keeps the first droplet under its new address (`web` becomes `web-1` at count 2,
 * `web` again at count 1), and the droplet takes the new name with a `rename` droplet action,
 * through the real dots-wrapper client against the emulator.
 */
import { executePlan, isEmptyPlan, parseSpec, plan, type EnvironmentSpec } from '@armada/core';
import { startDigitalOceanEmulator } from '@armada/testkit';
import { createApiClient } from 'dots-wrapper';
import { describe, expect, it } from 'vitest';
import { createDigitalOceanProvider, tag } from '../src/index.js';

const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };

describe('scaling an instance group on DigitalOcean', () => {
  it('renames the droplet it keeps: web -> web-1 at count 2, back to web at count 1', async () => {
    const emulator = await startDigitalOceanEmulator({ bootMs: 20, actionMs: 20 });
    try {
      const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'scale', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 10 });
      const api = createApiClient({ token: 'scale', endpoint: `${emulator.endpoint}/v2` });
      const withCount = (count: number): Promise<EnvironmentSpec> =>
        parseSpec({
          name: 'scaling',
          provider: { id: 'digitalocean', region: 'nyc3' },
          network: { name: 'net', cidr: '10.70.0.0/16', subnets: [{ name: 'a', cidr: '10.70.1.0/24', access: 'public' }] },
          instances: [{ name: 'web', count, size: 'small', image: 'debian-12', subnet: 'a', tags: { Name: 'web' } }],
        });
      const apply = async (count: number) => {
        const spec = await withCount(count);
        const result = await executePlan(await plan({ spec, provider }), { provider, retry: fastRetry });
        expect(result.failed).toEqual([]);
        expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
      };
      const names = () => Object.fromEntries(emulator.dropletsTagged(tag('armada:env', 'scaling')).map((droplet) => [droplet.id, droplet.name]));

      await apply(1);
      const [first] = Object.keys(names()).map(Number);
      expect(names()).toEqual({ [String(first)]: 'web' });

      await apply(2);
      expect(names()[String(first)]).toBe('web-1');
      expect(Object.values(names()).sort()).toEqual(['web-1', 'web-2']);
      // What DigitalOcean itself says, and the rename action it ran.
      expect((await api.droplet.getDroplet({ droplet_id: Number(first) })).data.droplet.name).toBe('web-1');
      const actions = (await api.droplet.listDropletActions({ droplet_id: Number(first) })).data.actions;
      expect(actions.map((action) => [action.type, action.status])).toEqual([
        ['create', 'completed'],
        ['rename', 'completed'],
      ]);

      await apply(1);
      expect(names()).toEqual({ [String(first)]: 'web' });
    } finally {
      await emulator.close();
    }
  });
});
