/**
 * The story's migration in both directions between the two emulated clouds, through the real
 * provider plugins, with real MariaDB and Redis servers: provision the target, copy and verify
 * the data, lower the TTLs and switch DNS. Afterwards DNS points at the new web servers (read back
 * through the source's DNS API) and the target data stores hold what the source held.
 */
import { type ProvisionOutput, renderMigrationReport, runMigration, standardMigrationSteps } from '@armada/core';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { type CloudName, startStoryWorld, storyMigration, ZONE } from '../story/index.js';

const directions: Array<[CloudName, CloudName]> = [
  ['digitalocean', 'aws'],
  ['aws', 'digitalocean'],
  // The example third provider, written only against the public API, to either.
  ['openstack', 'aws'],
  ['openstack', 'digitalocean'],
];

describe.each(directions)('migration from %s to %s', (from, to) => {
  it('provisions the target, moves and verifies the data, and switches DNS', { timeout: 120_000 }, async () => {
    const world = await startStoryWorld({ source: from, target: to, customers: 500, sessions: 1_000 });
    try {
      const waits: number[] = [];
      const definition = storyMigration(world, { wait: async (ms) => void waits.push(ms) });
      const report = await runMigration({ name: definition.name, steps: standardMigrationSteps(definition), directory: world.directory });
      expect(report.status).toBe('succeeded');
      expect(report.steps.map((step) => step.id)).toEqual(['check-policies', 'provision-target', 'copy-data', 'verify-data', 'lower-dns-ttl', 'switch-dns']);
      expect(waits).toEqual([3_600_000]);

      const provisioned = report.steps.find((step) => step.id === 'provision-target')?.output as unknown as ProvisionOutput;
      expect(provisioned.provider).toBe(world.target.provider.id);
      const newWeb = provisioned.instances.filter((instance) => instance.role === 'web');
      expect(newWeb).toHaveLength(2);
      const records = await world.dns.listRecords(ZONE);
      const www = records.find((record) => record.name === 'www');
      expect([...(www?.values ?? [])].sort()).toEqual(newWeb.map((instance) => instance.publicIp).sort());
      expect(www?.ttl).toBe(60);

      const mysql = await createConnection({ host: world.mysql.target.host, port: world.mysql.target.port, user: 'root' });
      const [[counted]] = (await mysql.query('SELECT (SELECT COUNT(*) FROM shop.customers) + (SELECT COUNT(*) FROM shop.orders) AS n')) as unknown as [[{ n: number }]];
      await mysql.end();
      expect(Number(counted.n)).toBe(world.seeded.rows);
      const redis = new Redis({ host: world.redis.target.host, port: world.redis.target.port });
      expect(await redis.dbsize()).toBe(world.seeded.keys);
      redis.disconnect();

      const text = renderMigrationReport(report);
      expect(text).toContain(`Migration ${definition.name}: succeeded`);
      expect(text).toMatch(/2 stores identical/);
      expect(report.cutoverAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    } finally {
      await world.stop();
    }
  });
});
