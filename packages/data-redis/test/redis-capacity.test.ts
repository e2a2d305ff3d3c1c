/**
 * The target's memory, LRU/LFU metadata and one point in time on resume, between real Redis
 * servers. Results are compared with the servers' own DBSIZE, DEBUG DIGEST and DEBUG DIGEST-VALUE,
 * not with verify (which could share a blind spot with the copy).
 *
 * - A target whose maxmemory cannot hold the data set (or only by evicting) is refused before
 *   anything is written, with the numbers, for both strategies; one that can hold it is copied.
 * - A target that starts evicting during the copy fails it; a noeviction target that runs out
 *   fails it on the OOM reply, naming the key.
 * - rdb carries the LRU idle time / LFU counter of each key (the source's RDB holds them only
 *   under an LRU / LFU maxmemory-policy).
 * - A resumed rdb copy keeps the databases it finished only if the source has not changed since;
 *   else it empties them and copies everything from the new snapshot.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArmadaError, CancelledError, ValidationError } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover, type RedisCopyStrategy } from '../src/index.js';

const clients: Redis[] = [];
const servers: RedisServer[] = [];
const client = (server: RedisServer, db = 0) => {
  const made = new Redis({ host: server.host, port: server.port, db });
  clients.push(made);
  return made;
};
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });
/** A throwaway server, stopped after the test. */
async function server(...extraArguments: string[]): Promise<RedisServer> {
  const started = await startRedisServer({ extraArguments });
  servers.push(started);
  return started;
}
const keyCount = async (server: RedisServer) => {
  const info = await client(server).info('keyspace');
  return [...info.matchAll(/^db\d+:keys=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
};
const evicted = async (server: RedisServer) => Number(/evicted_keys:(\d+)/.exec(await client(server).info('stats'))?.[1]);

/** Per database: its DBSIZE and every key's DEBUG DIGEST-VALUE; and the whole data set's DEBUG DIGEST. */
async function state(server: RedisServer, databases: number[]) {
  const perDb: Record<number, { size: number; digests: Record<string, string> }> = {};
  for (const db of databases) {
    const connection = client(server, db);
    const keys = (await connection.keys('*')).sort();
    const pipeline = connection.pipeline();
    for (const key of keys) pipeline.call('DEBUG', 'DIGEST-VALUE', key);
    const values = ((await pipeline.exec()) ?? []).map(([, value]) => String(value));
    perDb[db] = { size: Number(await connection.dbsize()), digests: Object.fromEntries(keys.map((key, index) => [key, values[index] as string])) };
  }
  return { perDb, digest: String(await client(server).call('DEBUG', 'DIGEST')) };
}

afterEach(async () => {
  for (const made of clients.splice(0)) made.disconnect();
  await Promise.all(servers.splice(0).map((started) => started.stop()));
});

describe('the target has too little memory', () => {
  let source: RedisServer;
  const keys = 10_000;
  beforeAll(async () => {
    // About 40 MB: 10,000 values of 4,000 random bytes (random, so nothing shrinks them).
    source = await startRedisServer();
    const admin = new Redis({ host: source.host, port: source.port });
    await admin.config('SET', 'repl-diskless-sync-delay', '0');
    for (let batch = 0; batch < keys; batch += 1000) {
      const pipeline = admin.pipeline();
      for (let index = batch; index < batch + 1000; index++) pipeline.set(`value:${index}`, randomBytes(4000));
      await pipeline.exec();
    }
    // A small second database, so a copy of database 0 alone is "some databases".
    await admin.select(1);
    await admin.set('db1:only', 'small');
    admin.disconnect();
  }, 60_000);
  afterAll(async () => {
    await source?.stop();
  });

  describe.each(['rdb', 'scan'] as RedisCopyStrategy[])('strategy %s', (strategy) => {
    it('refuses a 20 MB allkeys-lru target before writing anything, with the numbers', async () => {
      const target = await server('--maxmemory', '20mb', '--maxmemory-policy', 'allkeys-lru');
      const error = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error), String(error)).toBe(true);
      const message = (error as Error).message;
      expect(message).toMatch(/the data set is about (\d+\.\d) MiB \(the source's INFO memory used_memory_dataset.*\); the target has 20\.0 MiB maxmemory with \d+\.\d MiB used/);
      // The estimate is of the right size: 40 MB of values and their keys.
      const estimate = Number(/about (\d+\.\d) MiB/.exec(message)?.[1]);
      expect(estimate).toBeGreaterThan(38);
      expect(estimate).toBeLessThan(60);
      expect(message).toMatch(/allkeys-lru would evict keys/);
      expect(await keyCount(target)).toBe(0);
    });

    it('refuses it too when only some databases are copied, estimated by MEMORY USAGE', async () => {
      const target = await server('--maxmemory', '20mb', '--maxmemory-policy', 'allkeys-lru');
      const error = await new RedisDataMover().copy({ ...endpoint(source), databases: [0] }, endpoint(target), { strategy }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/the data set is about \d+\.\d MiB \(the sum of MEMORY USAGE of the keys on the source\); the target has 20\.0 MiB maxmemory/);
      expect(await keyCount(target)).toBe(0);
    });

    it('copies into a target the data set fits in, with nothing evicted', async () => {
      const target = await server('--maxmemory', '200mb', '--maxmemory-policy', 'allkeys-lru');
      const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy });
      expect(report).toMatchObject({ strategy, items: keys + 1 });
      expect(await evicted(target)).toBe(0);
      expect(await state(target, [0, 1])).toEqual(await state(source, [0, 1]));
    });

    it('fails when the target starts evicting during the copy', async () => {
      // Fits by the estimate; then maxmemory is lowered from another connection at the first
      // progress event, so the target evicts (CONFIG SET evicts at once, and so does each write).
      const target = await server('--maxmemory', '200mb', '--maxmemory-policy', 'allkeys-lru');
      const admin = client(target);
      await admin.ping();
      let lowered = false;
      const error = await new RedisDataMover()
        .copy(endpoint(source), endpoint(target), {
          strategy,
          batchSize: 500,
          maxInFlightBytes: 1 << 20,
          onProgress: () => {
            if (lowered) return;
            lowered = true;
            admin.config('SET', 'maxmemory', '10mb').catch(() => undefined);
          },
        })
        .catch((caught: unknown) => caught);
      expect(lowered).toBe(true);
      expect(ArmadaError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/evicted [\d,]+ keys? during the copy: .*maxmemory-policy allkeys-lru/);
      // Without the check the copy would have "succeeded" with keys missing: they are.
      expect(await keyCount(target)).toBeLessThan(keys);
    });
  });

  it('rdb: a noeviction target that runs out fails on the OOM reply, naming the key and what was written', async () => {
    const target = await server('--maxmemory', '200mb', '--maxmemory-policy', 'noeviction');
    const admin = client(target);
    await admin.ping();
    let lowered = false;
    const error = await new RedisDataMover()
      .copy(endpoint(source), endpoint(target), {
        strategy: 'rdb',
        batchSize: 500,
        maxInFlightBytes: 1 << 20,
        onProgress: () => {
          if (lowered) return;
          lowered = true;
          admin.config('SET', 'maxmemory', '10mb').catch(() => undefined);
        },
      })
      .catch((caught: unknown) => caught);
    expect(ArmadaError.isInstance(error), String(error)).toBe(true);
    const message = (error as Error).message;
    // Strings without a TTL go many to an MSET: the first key of the refused one is named.
    expect(message).toMatch(/(RESTORE of key|MSET of \d+ keys, the first) "value:\d+" \(target db 0\),? failed on the target Redis at .*: OOM command not allowed/);
    const written = Number(/([\d,]+) keys \(\d+\.\d MiB of commands\) had been written before it/.exec(message)?.[1]?.replaceAll(',', ''));
    // What it says was written is on the target (noeviction: nothing was dropped). A few RESTOREs
    // pipelined after the failed one may have gone through as the target's memory use moved.
    const held = await keyCount(target);
    expect(written).toBeGreaterThan(0);
    expect(held).toBeGreaterThanOrEqual(written);
    expect(held).toBeLessThan(keys);
    expect(await evicted(target)).toBe(0);
  });
});

describe('rdb carries LRU idle times and LFU counters', () => {
  it('allkeys-lru source: OBJECT IDLETIME on the target matches the source', async () => {
    // The RDB holds idle times only under an LRU policy (checked: none under noeviction).
    const source = await server('--maxmemory-policy', 'allkeys-lru');
    const target = await server();
    const admin = client(source);
    await admin.config('SET', 'repl-diskless-sync-delay', '0');
    for (let index = 0; index < 20; index++) await admin.set(`cold:${index}`, `value ${index}`);
    await admin.hset('cold:hash', { a: '1' });
    // Idle for ~3 s (the LRU clock counts seconds); then some keys are touched again.
    await new Promise((resolve) => setTimeout(resolve, 3_200));
    for (let index = 0; index < 5; index++) await admin.set(`hot:${index}`, 'fresh');
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'rdb' });
    expect(report.items).toBe(26);
    const keys = await client(source).keys('*');
    const idle = async (server: RedisServer) => {
      const pipeline = client(server).pipeline();
      for (const key of keys) pipeline.object('IDLETIME', key);
      return ((await pipeline.exec()) ?? []).map(([, value]) => Number(value));
    };
    // Read both at once, before anything else reads the keys (a read resets the idle time).
    const [onSource, onTarget] = await Promise.all([idle(source), idle(target)]);
    keys.forEach((key, index) => {
      expect(Math.abs((onTarget[index] as number) - (onSource[index] as number)), key).toBeLessThanOrEqual(2);
      // Without IDLETIME every restored key would be idle ~0 s on the target.
      if (key.startsWith('cold:')) expect(onTarget[index], key).toBeGreaterThanOrEqual(2);
    });
  });

  it('allkeys-lfu source: OBJECT FREQ on the target matches the source', async () => {
    // lfu-log-factor 0: every access counts one (the default counts logarithmically, at random).
    // lfu-decay-time 0: no decay, so a minute ticking over between copy and check changes nothing.
    const lfu = ['--maxmemory-policy', 'allkeys-lfu', '--lfu-log-factor', '0', '--lfu-decay-time', '0'];
    const source = await server(...lfu);
    // FREQ is applied only by a target whose own policy is LFU (Redis keeps LRU or LFU data, not both).
    const target = await server(...lfu);
    const admin = client(source);
    await admin.config('SET', 'repl-diskless-sync-delay', '0');
    for (let index = 0; index < 10; index++) {
      await admin.set(`key:${index}`, 'value');
      for (let read = 0; read < index * 10; read++) await admin.get(`key:${index}`);
    }
    await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'rdb' });
    for (let index = 0; index < 10; index++) {
      const onSource = Number(await client(source).object('FREQ', `key:${index}`));
      expect(onSource).toBeGreaterThanOrEqual(5 + index * 10); // LFU_INIT_VAL 5, plus the reads
      expect(Number(await client(target).object('FREQ', `key:${index}`)), `key:${index}`).toBe(onSource);
    }
  });
});

describe('a resumed rdb copy is one point in time', () => {
  const databases = [0, 1, 2];
  // Each database far longer than what the copy has in flight when it is cancelled (a chunk of the
  // snapshot and a reply run acknowledging many MSETs at once), so that database 1 is left unfinished.
  const perDb = 8000;

  /** A source with three databases, and a copy of it killed once database 0 is finished. */
  async function killedCopy() {
    const source = await server();
    const target = await server();
    const admin = client(source);
    await admin.config('SET', 'repl-diskless-sync-delay', '0');
    for (const db of databases) {
      await admin.select(db);
      const pipeline = admin.pipeline();
      for (let index = 0; index < perDb; index++) pipeline.set(`db${db}:${index}`, `value ${index} ${'z'.repeat(100)}`);
      await pipeline.exec();
    }
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-redis-capacity-')), 'copy.json');
    const controller = new AbortController();
    const first = await new RedisDataMover()
      .copy(endpoint(source), endpoint(target), {
        strategy: 'rdb',
        batchSize: 100,
        maxInFlightBytes: 4096,
        checkpointPath,
        signal: controller.signal,
        // Past database 0 (its keys and its SELECT answered), inside database 1.
        onProgress: (event) => {
          if (event.items > perDb + 200) controller.abort();
        },
      })
      .catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(first), String(first)).toBe(true);
    // The checkpoint is written in the background: wait for the save that marks database 0 done.
    let saved: { databases: Record<string, { done: boolean }>; snapshot?: { replid: string; offset: number } } | undefined;
    for (let attempt = 0; attempt < 100; attempt++) {
      saved = existsSync(checkpointPath) ? JSON.parse(readFileSync(checkpointPath, 'utf8')) : undefined;
      if (saved?.databases['0']?.done) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(saved?.databases['0']?.done).toBe(true);
    expect(saved?.databases['1']?.done).toBe(false);
    expect(saved?.snapshot?.replid).toMatch(/^[0-9a-f]{40}$/);
    // A key only the target has, in the finished database: it stays if (and only if) database 0 is kept.
    await client(target, 0).set('sentinel', 'kept means not rewritten');
    return { source, target, checkpointPath };
  }

  it('keeps the finished databases when the source has not changed', async () => {
    const { source, target, checkpointPath } = await killedCopy();
    const resumed = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'rdb', checkpointPath });
    expect(resumed).toMatchObject({ resumed: true, strategy: 'rdb', items: databases.length * perDb });
    expect(resumed.restarted).toBeUndefined();
    expect(await client(target, 0).get('sentinel')).toBe('kept means not rewritten');
    await client(target, 0).del('sentinel');
    expect(await state(target, databases)).toEqual(await state(source, databases));
  });

  it('reads a checkpoint from before snapshots were recorded, and then copies everything again', async () => {
    const { source, target, checkpointPath } = await killedCopy();
    // As an older version wrote it: no snapshot field. Nothing proves database 0 is current.
    const old = JSON.parse(readFileSync(checkpointPath, 'utf8'));
    delete old.snapshot;
    writeFileSync(checkpointPath, JSON.stringify(old));
    const resumed = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'rdb', checkpointPath });
    expect(resumed).toMatchObject({ resumed: true, strategy: 'rdb', items: databases.length * perDb });
    expect(resumed.restarted).toMatch(/does not record which snapshot/);
    expect(await client(target, 0).exists('sentinel')).toBe(0);
    expect(await state(target, databases)).toEqual(await state(source, databases));
  });

  it('copies everything again from the new snapshot when the source changed in a finished database', async () => {
    const { source, target, checkpointPath } = await killedCopy();
    // Written after the first run's snapshot, in database 0, which that run had finished.
    const db0 = client(source, 0);
    await db0.set('db0:new', 'written between the runs');
    await db0.del('db0:7');
    await db0.set('db0:8', 'changed');
    const resumed = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'rdb', checkpointPath });
    expect(resumed).toMatchObject({ resumed: true, strategy: 'rdb', items: databases.length * perDb });
    expect(resumed.restarted).toMatch(/the source changed after the snapshot.*database 0, finished then/);
    // Database 0 was emptied and copied again: the sentinel is gone, the changes are there.
    expect(await client(target, 0).exists('sentinel')).toBe(0);
    expect(await client(target, 0).get('db0:new')).toBe('written between the runs');
    expect(await state(target, databases)).toEqual(await state(source, databases));
  });
});
