/** The sample migration file in examples/migrations is valid, and its paths lead to real files. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMigrationFile, loadServerPoliciesFile, loadSpecFile, migrationFromFile, PluginRegistry } from '@armada/core';
import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { awsProviderPlugin } from '@armada/provider-aws';
import { digitalOceanProviderPlugin } from '@armada/provider-digitalocean';
import { mysqlDataMoverPlugin } from '@armada/data-mysql';
import { redisDataMoverPlugin } from '@armada/data-redis';
import { puppetConfigManagerPlugin } from '@armada/config-puppet';

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

  it('builds with every data store reached through a jump host, and the data tier through web-1', async () => {
    const registry = new PluginRegistry().use(
      awsProviderPlugin({ credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' } }),
      digitalOceanProviderPlugin({ token: 'unused' }),
      mysqlDataMoverPlugin(),
      redisDataMoverPlugin(),
      puppetConfigManagerPlugin(),
    );
    const env = { OLD_DB_PASSWORD: 'x', NEW_DB_PASSWORD: 'x', OLD_REDIS_PASSWORD: 'x', NEW_REDIS_PASSWORD: 'x', SHOP_DB_PASSWORD: 'x', ANALYTICS_DB_PASSWORD: 'x', REPLICATION_PASSWORD: 'x' };
    const migration = await migrationFromFile(await loadMigrationFile(file), { registry, env, cwd: tmpdir() });
    try {
      const stores = migration.definition.data ?? [];
      expect(stores.map((store) => store.name)).toEqual(['shop-db', 'sessions']);
      for (const store of stores) {
        // The source through a public droplet of the source environment, the target through web-1 (made at provisioning).
        expect(store.routes?.source?.description).toMatch(/^through web-1 of armada$/);
        expect(typeof store.routes?.target).toBe('function');
        // Copy mode: no replication path is made.
        expect(store.routes?.replicationPath).toBeUndefined();
      }
      expect(migration.definition.servers?.concurrency).toBe(4);
    } finally {
      await migration.close();
    }
  });
});

