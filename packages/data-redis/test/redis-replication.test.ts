/**
 * Replication between two real Redis servers while a writer keeps writing to the source: after
 * cutover, the promoted target holds every acknowledged write, and the write downtime is reported.
 */
import { ValidationError } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReplication } from '../src/index.js';

describe('Redis replication and cutover', () => {
  let source: RedisServer;
  let target: RedisServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
  });
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('catches up while writes go on, then promotes the target with every acknowledged write', async () => {
    const writer = new Redis({ host: source.host, port: source.port });
    const reader = new Redis({ host: target.host, port: target.port });
    try {
      const seed = writer.pipeline();
      for (let index = 0; index < 20_000; index++) seed.set(`seed:${index}`, `${index}`);
      await seed.exec();
      const acknowledged: number[] = [];
      let writing = true;
      const loop = (async () => {
        for (let index = 0; writing; index++) {
          try {
            await writer.set(`live:${index}`, `${index}`);
            acknowledged.push(index);
          } catch {
            // Refused once the old source follows the new primary: never acknowledged, so never lost.
          }
        }
      })();
      const replication = await RedisReplication.start({ host: source.host, port: source.port }, { host: target.host, port: target.port }, { timeoutMs: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await replication.status()).linkUp).toBe(true);
      const report = await replication.cutover({ sourceReadOnly: true });
      writing = false;
      await loop;
      replication.close();
      expect(acknowledged.length).toBeGreaterThan(50);
      // Every write the source acknowledged is on the promoted target.
      const values = await reader.mget(acknowledged.map((index) => `live:${index}`));
      expect(values.filter((value) => value === null)).toEqual([]);
      expect(Number(await reader.dbsize())).toBeGreaterThanOrEqual(20_000 + acknowledged.length);
      expect(await reader.info('replication')).toContain('role:master');
      expect(await writer.info('replication')).toContain('role:slave');
      expect(report.writeDowntimeMs).toBeGreaterThan(0);
      expect(report.writeDowntimeMs).toBeLessThan(5000);
      console.info(`Redis cutover: write downtime ${report.writeDowntimeMs.toFixed(1)} ms, ${acknowledged.length} live writes carried over`);
    } finally {
      writer.disconnect();
      reader.disconnect();
    }
  });

  it('refuses a target that holds data', async () => {
    const fresh = await startRedisServer();
    const other = await startRedisServer();
    const seeded = new Redis({ host: other.host, port: other.port });
    try {
      await seeded.set('precious', 'data');
      const error = await RedisReplication.start({ host: fresh.host, port: fresh.port }, { host: other.host, port: other.port }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect(await seeded.get('precious')).toBe('data');
    } finally {
      seeded.disconnect();
      await Promise.all([fresh.stop(), other.stop()]);
    }
  });
});
