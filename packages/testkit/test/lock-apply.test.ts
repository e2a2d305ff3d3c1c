/**
 * applyEnvironment holds the environment's lock (core's lock.ts): a second apply of the same
 * environment waits for the first, or refuses when told not to wait, and never doubles its work.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockedError, applyEnvironment, localLock, parseSpec, type EnvironmentSpecInput } from '@armada/core';
import { afterEach, describe, expect, it } from 'vitest';
import { InMemoryCloud, createInMemoryProvider } from '../src/index.js';

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe('applyEnvironment holds the environment lock', () => {
  const spec = (): EnvironmentSpecInput => ({
    name: 'locked-shop',
    provider: { id: 'in-memory', region: 'local-1' },
    network: { name: 'net', cidr: '10.0.0.0/16', subnets: [{ name: 'public', cidr: '10.0.1.0/24', access: 'public' }] },
    firewalls: [],
    keyPairs: [],
    instances: [{ name: 'web', size: 'small', image: 'debian-12', subnet: 'public' }],
  });

  it('makes a second apply of the same environment wait for the first, or refuse when told not to wait', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'armada-lock-test-'));
    directories.push(directory);
    const cloud = new InMemoryCloud({ bootMs: 400, terminateMs: 0 });
    const provider = createInMemoryProvider({ cloud, region: 'local-1', pollIntervalMs: 10 });
    const parsed = await parseSpec(spec());
    const lock = localLock({ directory });
    const first = applyEnvironment({ spec: parsed, provider, lock, rules: [] });
    // Until the first holds the lock (its file is there); its instance then takes 400 ms to boot.
    const file = join(directory, `${encodeURIComponent('in-memory/local-1/locked-shop')}.lock`);
    for (let attempt = 0; !existsSync(file); attempt++) {
      if (attempt > 1000) throw new Error('the first apply never took the lock');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const refused = await applyEnvironment({ spec: parsed, provider, lock, rules: [], lockWaitMs: 0 }).catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(LockedError);
    expect((refused as LockedError).message).toMatch(/^Environment "in-memory\/local-1\/locked-shop" is locked by .* \(apply, since /);
    const second = applyEnvironment({ spec: parsed, provider, lock, rules: [], lockWaitMs: 30_000 });
    const [one, two] = await Promise.all([first, second]);
    expect(one.execution.status).toBe('succeeded');
    // The second planned after the first had finished: nothing left to do, and no second instance.
    expect(two.execution.status).toBe('succeeded');
    expect(two.plan.summary.create).toBe(0);
    expect(cloud.inventory().instances).toBe(1);
  });
});
