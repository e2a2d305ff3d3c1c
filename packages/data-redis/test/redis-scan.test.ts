/**
 * The `scan` strategy between real servers, checked key by key without verify: TYPE, DEBUG
 * DIGEST-VALUE and PEXPIRETIME equal (ABSTTL carries the source's absolute expiry), OBJECT
 * IDLETIME carried (not reset to ~0) and OBJECT FREQ equal under LFU, DEBUG DIGEST equal per
 * database. `auto` falls back to `scan` as it does on managed services (an ACL user without
 * PSYNC/SYNC, the commands renamed away), and a target out of memory names the key it refused.
 */
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RedisDataMover } from '../src/index.js';
import { populateEveryEncoding } from './fixtures.js';

const servers: RedisServer[] = [];
const clients: Redis[] = [];
async function server(extraArguments: string[] = []): Promise<RedisServer> {
  const started = await startRedisServer({ extraArguments });
  servers.push(started);
  return started;
}
const client = (where: RedisServer, db = 0) => {
  const made = new Redis({ host: where.host, port: where.port, db });
  clients.push(made);
  return made;
};
const endpoint = (where: RedisServer) => ({ host: where.host, port: where.port });

afterEach(() => {
  for (const made of clients.splice(0)) made.disconnect();
});
afterAll(async () => {
  await Promise.all(servers.splice(0).map((started) => started.stop()));
});

interface KeyState {
  type: string;
  digest: string;
  expireAt: number;
  idle?: number;
  freq?: number;
}

/** Every key of `db`: its type, value digest, absolute expiry, and (without touching it) idle time or LFU counter. */
async function snapshot(where: RedisServer, db: number, lfu = false): Promise<Map<string, KeyState>> {
  const redis = client(where, db);
  const keys: Buffer[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scanBuffer(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = String(next);
  } while (cursor !== '0');
  const states = new Map<string, KeyState>();
  for (const key of keys) {
    // OBJECT, TYPE and PEXPIRETIME do not touch the key; read before DEBUG DIGEST-VALUE anyway.
    const meta = Number(await redis.call('OBJECT', lfu ? 'FREQ' : 'IDLETIME', key));
    const type = await redis.type(key);
    const expireAt = Number(await redis.call('PEXPIRETIME', key));
    const digest = String(await redis.call('DEBUG', 'DIGEST-VALUE', key));
    states.set(key.toString('hex'), { type, digest, expireAt, ...(lfu ? { freq: meta } : { idle: meta }) });
  }
  return states;
}

/** Type, value and absolute expiry equal key by key (idle and frequency are compared by the callers). */
function expectSameKeys(source: Map<string, KeyState>, target: Map<string, KeyState>): void {
  expect([...target.keys()].sort()).toEqual([...source.keys()].sort());
  for (const [key, state] of source) {
    const copied = target.get(key) as KeyState;
    const name = Buffer.from(key, 'hex').toString();
    expect({ key: name, type: copied.type, digest: copied.digest, expireAt: copied.expireAt }).toEqual({ key: name, type: state.type, digest: state.digest, expireAt: state.expireAt });
  }
}

const digest = async (where: RedisServer) => String(await client(where).call('DEBUG', 'DIGEST'));
const databaseDigests = async (where: RedisServer, databases: number[]) => {
  const digests: string[] = [];
  for (const db of databases) {
    // DEBUG DIGEST covers the whole server; per database, the sum of DIGEST-VALUEs with the names.
    const states = await snapshot(where, db);
    digests.push(
      [...states]
        .map(([key, state]) => `${key}:${state.type}:${state.digest}:${state.expireAt}`)
        .sort()
        .join(','),
    );
  }
  return digests;
};

async function populateSmall(redis: Redis): Promise<void> {
  await redis.set('plain', 'value');
  await redis.set('expiring', 'soon', 'PX', 900_000);
  await redis.hset('hash', { a: '1', b: '2' });
  await redis.rpush('list', 'x', 'y', 'z');
  await redis.zadd('zset', 1, 'one', 2, 'two');
  const pipeline = redis.pipeline();
  for (let index = 0; index < 500; index++) pipeline.set(`bulk:${index}`, `v${index}`, 'PX', 600_000 + index);
  await pipeline.exec();
}

describe('Redis scan copy, key by key', () => {
  it('copies every type in each encoding: type, value, absolute expiry and idle time per key, digest per database', async () => {
    const [source, target] = await Promise.all([server(), server()]);
    const { bigKeys } = await populateEveryEncoding(client(source, 0));
    await populateSmall(client(source, 2));
    await client(source, 5).set('in:db5', 'five', 'PX', 700_000);
    // Idle keys: a copy that does not carry OBJECT IDLETIME leaves them at ~0 on the target.
    await new Promise((resolve) => setTimeout(resolve, 3_200));
    const before = new Map<number, Map<string, KeyState>>();
    const looked = performance.now();
    for (const db of [0, 2, 5]) before.set(db, await snapshot(source, db));
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'scan', batchSize: 100, bigKeyBytes: 64 * 1024 });
    expect(report).toMatchObject({ strategy: 'scan', bigKeys: bigKeys.length });
    const total = [...before.values()].reduce((sum, states) => sum + states.size, 0);
    expect(report.items).toBe(total);

    for (const [db, states] of before) {
      const copied = await snapshot(target, db);
      // Seconds since the source's idle times were read, up to when the target's were: each key's
      // idle time can have grown by at most that (plus a second of rounding on each side).
      const since = (performance.now() - looked) / 1000;
      expectSameKeys(states, copied);
      for (const [key, state] of states) {
        const name = Buffer.from(key, 'hex').toString();
        if (bigKeys.includes(name)) continue; // copied in pieces: written fresh, idle from the copy on
        const idle = (copied.get(key) as KeyState).idle as number;
        expect(state.idle, `source idle time of ${name}`).toBeGreaterThanOrEqual(2);
        // The source's idle time at the copy, ticking since: at least what it was, at most that plus the time since.
        expect(idle, `target idle time of ${name}`).toBeGreaterThanOrEqual((state.idle as number) - 1);
        expect(idle, `target idle time of ${name}`).toBeLessThanOrEqual((state.idle as number) + since + 2);
      }
    }
    expect(await digest(target)).toBe(await digest(source));
    expect(await databaseDigests(target, [0, 2, 5])).toEqual(await databaseDigests(source, [0, 2, 5]));
  }, 60_000);

  it('carries the LFU counters (OBJECT FREQ) under an LFU policy', async () => {
    // lfu-log-factor 0: every access counts, so the counters differ key by key, deterministically.
    // lfu-decay-time 0: no decay, or a minute boundary between the snapshot and the copy's read
    // lowers a source counter by one (seen on a loaded machine).
    const [source, target] = await Promise.all([
      server(['--maxmemory-policy', 'allkeys-lfu', '--lfu-log-factor', '0', '--lfu-decay-time', '0']),
      server(['--maxmemory-policy', 'allkeys-lfu']),
    ]);
    const redis = client(source, 0);
    await populateEveryEncoding(redis);
    for (let index = 0; index < 40; index++) {
      const pipeline = redis.pipeline();
      for (let hit = 0; hit < index; hit++) pipeline.get(`bulk:${index}`);
      await pipeline.exec();
    }
    for (let hit = 0; hit < 30; hit++) await redis.hget('hash:small', 'name');
    const before = await snapshot(source, 0, true);
    expect(before.get(Buffer.from('bulk:39').toString('hex'))?.freq).toBeGreaterThan(30);
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'scan', batchSize: 100, bigKeyBytes: 64 * 1024 });
    expect(report.strategy).toBe('scan');
    const after = await snapshot(target, 0, true);
    expectSameKeys(before, after);
    for (const [key, state] of before) {
      const name = Buffer.from(key, 'hex').toString();
      if (name.startsWith('big:')) continue; // copied in pieces
      expect({ key: name, freq: after.get(key)?.freq }).toEqual({ key: name, freq: state.freq });
    }
    expect(await digest(target)).toBe(await digest(source));
  }, 60_000);
});

describe('auto falls back to scan where a managed Redis refuses PSYNC', () => {
  it('with an ACL user that may not run PSYNC or SYNC', async () => {
    const [source, target] = await Promise.all([server(), server()]);
    const admin = client(source, 0);
    await admin.call('ACL', 'SETUSER', 'migrator', 'on', '>pw', '~*', '&*', '+@all', '-psync', '-sync');
    await admin.config('SET', 'repl-diskless-sync-delay', '0');
    await populateEveryEncoding(admin);
    await populateSmall(client(source, 3));
    const before = [await snapshot(source, 0), await snapshot(source, 3)];
    const report = await new RedisDataMover().copy({ ...endpoint(source), user: 'migrator', password: 'pw' }, endpoint(target), { bigKeyBytes: 64 * 1024 });
    expect(report.strategy).toBe('scan');
    expect(report.fallbackReason).toMatch(/\S/);
    expectSameKeys(before[0] as Map<string, KeyState>, await snapshot(target, 0));
    expectSameKeys(before[1] as Map<string, KeyState>, await snapshot(target, 3));
    expect(await digest(target)).toBe(await digest(source));
  }, 60_000);

  it('with PSYNC and SYNC renamed away (rename-command PSYNC "")', async () => {
    const [source, target] = await Promise.all([server(['--rename-command', 'PSYNC', '', '--rename-command', 'SYNC', '']), server()]);
    const admin = client(source, 0);
    await expect(admin.call('PSYNC', '?', '-1')).rejects.toThrow(/unknown command/i);
    await populateEveryEncoding(admin);
    const before = await snapshot(source, 0);
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { bigKeyBytes: 64 * 1024 });
    expect(report.strategy).toBe('scan');
    expect(report.fallbackReason).toMatch(/\S/);
    expectSameKeys(before, await snapshot(target, 0));
    expect(await digest(target)).toBe(await digest(source));
  }, 60_000);
});

describe('a target out of memory', () => {
  it('fails naming the key it refused, and what had been written', async () => {
    const [source, target] = await Promise.all([server(), server(['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'])]);
    const redis = client(source, 0);
    const pipeline = redis.pipeline();
    for (let index = 0; index < 400; index++) pipeline.set(`blob:${index}`, Buffer.alloc(20_000, index % 251));
    await pipeline.exec();
    // Room enough when the copy starts (the mover checks), none once it is under way: as when
    // something else fills the target meanwhile. Few bytes in flight, so the change lands early.
    const admin = client(target, 0);
    let squeezed: Promise<unknown> | undefined;
    const error = await new RedisDataMover()
      .copy(endpoint(source), endpoint(target), {
        strategy: 'scan',
        batchSize: 20,
        maxInFlightBytes: 100_000,
        onProgress: () => {
          squeezed ??= admin.config('SET', 'maxmemory', '1mb');
        },
      })
      .catch((caught: unknown) => caught);
    await squeezed;
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toMatch(/RESTORE of key "blob:\d+" \(target db 0\) failed on the target Redis at 127\.0\.0\.1:\d+: OOM/);
    expect(message).toMatch(/\d+ keys \(\d+ bytes\) had been written before it/);
    const written = Number(await admin.dbsize());
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(400);
  }, 60_000);
});
