/** The sample migration file in examples/migrations is valid, and its paths lead to real files. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMigrationFile, loadServerPoliciesFile, loadSpecFile } from '@armada/core';
import { describe, expect, it } from 'vitest';

const file = fileURLToPath(new URL('../migrations/digitalocean-to-aws.yaml', import.meta.url));

describe('examples/migrations/digitalocean-to-aws.yaml', () => {
  it('parses, and names a spec and server policies that load', async () => {
    const migration = await loadMigrationFile(file);
    expect(migration.name).toBe('digitalocean-to-aws');
    expect(migration.data.map((store) => store.mover)).toEqual(['mysql', 'redis']);
    const spec = resolve(migration.baseDirectory, migration.target.spec);
    expect(existsSync(spec)).toBe(true);
    expect((await loadSpecFile(spec)).name).toBe(migration.source.environment);
    const policies = await loadServerPoliciesFile(resolve(migration.baseDirectory, migration.servers?.policies ?? ''));
    expect(Object.keys(policies.roles)).toContain('web');
  });
});
