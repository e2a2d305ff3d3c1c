/**
 * The story with replication: the application keeps writing to the source MySQL (as an account
 * without SUPER, as applications run) and Redis through the whole migration. The target replicates
 * until the cutover, where the source is made read-only and the target promoted; afterwards the
 * target holds every write the source acknowledged, verify passes, and the report carries the
 * measured write downtime.
 */
import { runMigration, standardMigrationSteps } from '@armada/core';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { startStoryWorld, storyMigration } from '../story/index.js';

describe('migration with replication', () => {
  it('keeps every acknowledged write through the cutover and reports the write downtime', { timeout: 180_000 }, async () => {
    const world = await startStoryWorld({ source: 'digitalocean', target: 'aws', customers: 2_000, sessions: 2_000 });
    const root = await createConnection({ host: world.mysql.source.host, port: world.mysql.source.port, user: 'root' });
    await root.query('CREATE TABLE shop.events (id INT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL)');
    await root.query("CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-password'");
    await root.query("GRANT SELECT, INSERT ON shop.* TO 'app'@'127.0.0.1'");
    await root.end();

    // The application: writes until the source refuses them (read-only after the cutover).
    let running = true;
    const ackedRows: number[] = [];
    const ackedKeys: string[] = [];
    const app = await createConnection({ host: world.mysql.source.host, port: world.mysql.source.port, user: 'app', password: 'app-password' });
    const cache = new Redis({ host: world.redis.source.host, port: world.redis.source.port, maxRetriesPerRequest: 0 });
    const mysqlWriter = (async () => {
      for (let n = 0; running; n++) {
        try {
          await app.query('INSERT INTO shop.events (n) VALUES (?)', [n]);
          ackedRows.push(n);
        } catch {
          return; // read-only: the cutover has begun
        }
      }
    })();
    const redisWriter = (async () => {
      for (let n = 0; running; n++) {
        try {
          await cache.set(`w:${n}`, String(n));
          ackedKeys.push(`w:${n}`);
        } catch {
          return; // READONLY: the old source now follows the new primary
        }
      }
    })();

    try {
      const definition = storyMigration(world, { replicate: true, wait: async () => {} });
      const report = await runMigration({ name: definition.name, steps: standardMigrationSteps(definition), directory: world.directory });
      running = false;
      await Promise.all([mysqlWriter, redisWriter]);

      expect(report.status).toBe('succeeded');
      expect(report.steps.map((step) => step.id)).toEqual(['check-policies', 'provision-target', 'copy-data', 'lower-dns-ttl', 'cutover-data', 'verify-data', 'switch-dns']);
      expect(typeof report.writeDowntimeMs).toBe('number');
      expect(report.writeDowntimeMs).toBeLessThan(10_000);
      expect(ackedRows.length).toBeGreaterThan(10);
      expect(ackedKeys.length).toBeGreaterThan(10);

      const target = await createConnection({ host: world.mysql.target.host, port: world.mysql.target.port, user: 'root' });
      const [rows] = (await target.query('SELECT n FROM shop.events ORDER BY n')) as unknown as [Array<{ n: number }>];
      await target.end();
      expect(rows.map((row) => row.n)).toEqual(ackedRows);
      const promoted = new Redis({ host: world.redis.target.host, port: world.redis.target.port });
      const values = await promoted.mget(...ackedKeys);
      expect(values.filter((value) => value === null)).toEqual([]);
      expect((await promoted.info('replication')).includes('role:master')).toBe(true);
      promoted.disconnect();
    } finally {
      running = false;
      await app.end().catch(() => undefined);
      cache.disconnect();
      await world.stop();
    }
  });
});
