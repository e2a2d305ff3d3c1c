import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvironment, destroyEnvironment, parseSpec, readStateFile } from '../src/index.js';
import { FakeProvider } from './fake-provider.js';

const spec = () =>
  parseSpec({
    name: 'state-test',
    provider: { id: 'fake', region: 'test-1' },
    network: { name: 'net', cidr: '10.0.0.0/16', subnets: [{ name: 'a', cidr: '10.0.1.0/24', access: 'private' }] },
    instances: [
      { name: 'db', count: 2, size: 'small', image: 'debian-12', subnet: 'a', tags: { Name: 'db', Version: '1' }, userData: 'export ROOT_PASSWORD=correct-horse' },
    ],
  });

describe('the local state file', () => {
  it('is written after apply without secrets, readable only by its owner', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'armada-state-')), 'nested', 'state.json');
    const fake = new FakeProvider();
    await applyEnvironment({ spec: await spec(), provider: fake.provider(), statePath: path });
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain('correct-horse');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const state = await readStateFile(path);
    expect(state?.resources.map((resource) => resource.address).sort()).toEqual(['instance.db-1', 'instance.db-2', 'network.net', 'subnet.a']);
    expect(await readStateFile(join(path, '..', 'missing.json'))).toBeUndefined();
  });

  it('is a cache: the plan follows the cloud and notes where the two disagree', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'armada-state-')), 'state.json');
    const fake = new FakeProvider();
    const provider = fake.provider();
    await applyEnvironment({ spec: await spec(), provider, statePath: path });
    const goneId = fake.resources.get('instance.db-2')?.id;
    fake.resources.delete('instance.db-2'); // deleted outside Armada
    const second = await applyEnvironment({ spec: await spec(), provider, statePath: path });
    expect(second.plan.summary).toMatchObject({ create: 1, noop: 3 });
    expect(second.plan.notes).toEqual([
      { severity: 'warning', path: 'instance.db-2', message: `${goneId} is in the state file but no longer in the cloud: deleted outside Armada?` },
    ]);
    const { execution } = await destroyEnvironment({ environment: 'state-test', provider, statePath: path });
    expect(execution.status).toBe('succeeded');
    expect((await readStateFile(path))?.resources).toEqual([]);
  });
});
