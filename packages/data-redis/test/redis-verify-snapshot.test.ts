/**
 * Verify's snapshot path against real Redis servers, where it differs from the live path: when
 * `auto` takes it (and falls back when PSYNC is refused), hashtable collections that two servers
 * serialize in different orders, values too big to buffer, keys only on the target next to keys
 * expired there, and the unit pieces it stands on (LZF, the multiset digest, the key set) checked
 * against what Redis itself writes.
 */
import { ArmadaError } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover } from '../src/index.js';
import { KeyHashSet } from '../src/key-set.js';
import { lzfDecompressInto } from '../src/rdb.js';
import { StringSpan, unorderedDigest } from '../src/rdb-values.js';
import { noise } from './fixtures.js';

const clients: Redis[] = [];
const client = (server: RedisServer, db = 0) => {
  const made = new Redis({ host: server.host, port: server.port, db });
  clients.push(made);
  return made;
};
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });
const SNAPSHOT_NOTE = /^the source was read from its RDB snapshot/;

afterEach(() => {
  for (const made of clients.splice(0)) made.disconnect();
});

/** Debug calls the server has answered since its stats were reset: the exact (live) comparison makes them, the snapshot's does not. */
async function debugCalls(server: RedisServer): Promise<number> {
  const stats = String(await client(server).info('commandstats'));
  return Number(/cmdstat_debug:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** The same keys written to both servers, in opposite orders: hashtable collections then differ in their serialized order. */
async function writeBoth(source: RedisServer, target: RedisServer, count: number): Promise<void> {
  for (const [server, reverse] of [
    [source, false],
    [target, true],
  ] as const) {
    const db = client(server);
    const order = Array.from({ length: count }, (_, index) => (reverse ? count - 1 - index : index));
    for (let start = 0; start < count; start += 5000) {
      const pipeline = db.pipeline();
      for (const index of order.slice(start, start + 5000)) pipeline.set(`key:${index}`, `value ${index} ${'v'.repeat(index % 40)}`);
      await pipeline.exec();
    }
    const fields = order.flatMap((index) => (index < 2000 ? [`field:${index}`, `v${index}`] : []));
    await db.hset('hash:hashtable', ...fields);
    await db.sadd('set:hashtable', ...order.filter((index) => index < 2000).map((index) => `member:${index}`));
    await db.zadd('zset:skiplist', ...order.filter((index) => index < 2000).flatMap((index) => [index / 3, `z${index}`]));
    await db.set('ttl:key', 'expires', 'PXAT', 4_000_000_000_000);
  }
}

describe('Redis verify from the source snapshot', () => {
  let source: RedisServer;
  let target: RedisServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    await writeBoth(source, target, 60_000);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('is taken by auto for a large source with no sync delay, not with the default 5 s delay', async () => {
    const verify = () => new RedisDataMover().verify(endpoint(source), endpoint(target));
    // Redis 7's default delay (5 s) costs more than 60,000 keys' reads save: live.
    const live = await verify();
    expect(live).toMatchObject({ ok: true, compared: 60_004, differences: [] });
    expect(live.notes ?? []).not.toContainEqual(expect.stringMatching(SNAPSHOT_NOTE));
    await client(source).config('SET', 'repl-diskless-sync-delay', '0');
    const fromSnapshot = await verify();
    expect(fromSnapshot).toMatchObject({ ok: true, compared: 60_004, differences: [] });
    expect(fromSnapshot.notes).toEqual([expect.stringMatching(SNAPSHOT_NOTE)]);
  });

  it('proves hashtable collections equal whatever their order, without reading the source live', async () => {
    await client(source).config('SET', 'repl-diskless-sync-delay', '0');
    // The two servers really serialize them differently: DUMP bytes differ, Redis's digest agrees
    // (a skiplist sorted set is written in score order, the same on both).
    for (const name of ['hash:hashtable', 'set:hashtable']) {
      const [left, right] = await Promise.all([client(source).dumpBuffer(name), client(target).dumpBuffer(name)]);
      expect(left.equals(right)).toBe(false);
      expect(await client(target).call('DEBUG', 'DIGEST-VALUE', name)).toEqual(await client(source).call('DEBUG', 'DIGEST-VALUE', name));
    }
    await Promise.all([client(source).config('RESETSTAT'), client(target).config('RESETSTAT')]);
    const report = await new RedisDataMover().verify(endpoint(source), endpoint(target), { sourceSnapshot: 'always' });
    expect(report).toMatchObject({ ok: true, compared: 60_004, differences: [] });
    // Every key matched the snapshot: no live digest was asked of either side (one DEBUG each is
    // the capability probe), and the source was not scanned.
    expect(await debugCalls(source)).toBe(1);
    expect(await debugCalls(target)).toBe(1);
    expect(String(await client(source).info('commandstats'))).not.toMatch(/cmdstat_scan:/);
  });

  it('finds one element changed in each hashtable collection, a TTL moved, and a TTL the source has not', async () => {
    await client(source).config('SET', 'repl-diskless-sync-delay', '0');
    const tampered = client(target);
    await tampered.hset('hash:hashtable', 'field:1999', 'changed');
    await tampered.srem('set:hashtable', 'member:0');
    await tampered.sadd('set:hashtable', 'member:x');
    await tampered.zadd('zset:skiplist', 1000, 'z5');
    await tampered.pexpireat('ttl:key', 4_000_000_100_000);
    await tampered.set('key:59999', 'changed');
    // Its TTL is not asked for (the snapshot gives it none): the target's count of TTLs gives it away.
    await tampered.pexpire('key:123', 500_000);
    try {
      const report = await new RedisDataMover().verify(endpoint(source), endpoint(target), { sourceSnapshot: 'always' });
      expect(report.differences?.map((difference) => [difference.object, difference.detail.replace(/\d+ ms/g, 'N ms')])).toEqual([
        ['db 0 key "hash:hashtable"', 'values differ'],
        ['db 0 key "key:123"', 'no TTL on the source, TTL N ms on the target (tolerance N ms)'],
        ['db 0 key "key:59999"', 'values differ'],
        ['db 0 key "set:hashtable"', 'values differ'],
        ['db 0 key "ttl:key"', 'TTL N ms on the source, TTL N ms on the target (tolerance N ms)'],
        ['db 0 key "zset:skiplist"', 'values differ'],
      ]);
      expect(report.compared).toBe(60_004);
    } finally {
      await tampered.hset('hash:hashtable', 'field:1999', 'v1999');
      await tampered.srem('set:hashtable', 'member:x');
      await tampered.sadd('set:hashtable', 'member:0');
      await tampered.zadd('zset:skiplist', 5 / 3, 'z5');
      await tampered.pexpireat('ttl:key', 4_000_000_000_000);
      await tampered.set('key:59999', `value 59999 ${'v'.repeat(59999 % 40)}`);
      await tampered.persist('key:123');
    }
    expect((await new RedisDataMover().verify(endpoint(source), endpoint(target), { sourceSnapshot: 'always' })).ok).toBe(true);
  });

  it('falls back to the live comparison when the source refuses PSYNC, and says why; always is refused then', async () => {
    await client(source).config('SET', 'repl-diskless-sync-delay', '0');
    await client(source).call('ACL', 'SETUSER', 'nosync', 'on', '>secret', '~*', '&*', '+@all', '-psync', '-sync');
    const guarded = { ...endpoint(source), user: 'nosync', password: 'secret' };
    try {
      const report = await new RedisDataMover().verify(guarded, endpoint(target));
      expect(report).toMatchObject({ ok: true, compared: 60_004, differences: [] });
      expect(report.notes).toEqual([expect.stringMatching(/^the source's snapshot could not be used \(.*\): every key compared live on both sides$/)]);
      const error = await new RedisDataMover().verify(guarded, endpoint(target), { sourceSnapshot: 'always' }).catch((caught: unknown) => caught);
      expect(ArmadaError.isInstance(error) && error.code).toBe('Unsupported');
      expect((error as Error).message).toMatch(/sourceSnapshot 'always'/);
      expect((error as Error).message).not.toContain('secret');
    } finally {
      await client(source).call('ACL', 'DELUSER', 'nosync');
    }
  });
});

describe('Redis verify from the snapshot: big values, and keys only on the target', () => {
  it('compares a value too big to buffer live, and finds target-only keys next to keys expired there', async () => {
    const [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    try {
      await client(source).config('SET', 'repl-diskless-sync-delay', '0');
      const big = noise(9 * 1024 * 1024, 3);
      for (const server of [source, target]) {
        const db = client(server);
        await db.set('big:string', big);
        await db.set('small', 'one');
      }
      const verify = () => new RedisDataMover().verify(endpoint(source), endpoint(target), { sourceSnapshot: 'always' });
      expect(await verify()).toMatchObject({ ok: true, compared: 2, differences: [] });
      await client(target).setrange('big:string', 5_000_000, 'x');
      expect((await verify()).differences).toEqual([{ object: 'db 0 key "big:string"', kind: 'different', detail: 'values differ' }]);
      await client(target).set('big:string', big);

      // The target holds more keys than it matched (DBSIZE counts keys expired but not reclaimed): its SCAN decides.
      const db = client(target);
      await db.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
      const expiring = db.pipeline();
      for (let index = 0; index < 500; index++) expiring.set(`gone:${index}`, 'x', 'PX', 1);
      await expiring.exec();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await verify()).toMatchObject({ ok: true, compared: 2, differences: [] });
      await db.set('only:target', 'stray');
      const report = await verify();
      expect(report.differences).toEqual([{ object: 'db 0 key "only:target"', kind: 'extra', detail: 'string on the target only, not on the source' }]);
      expect(report.compared).toBe(3);
    } finally {
      await Promise.all([source.stop(), target.stop()]);
    }
  }, 60_000);
});

describe('snapshot verify: its pieces against what Redis writes', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('decompresses every LZF string Redis writes back to the value', async () => {
    const db = client(server);
    const values = [
      'x'.repeat(5000), // one byte repeated: back references of distance 1
      'abcdefghij'.repeat(400), // long copies that do not overlap
      `${'0123456789abcdef'.repeat(3)}${noise(40, 9).toString('hex')}${'0123456789abcdef'.repeat(3)}`, // literal runs over 16 bytes between copies
      `value-12345-${'x'.repeat(64)}`,
      ...Array.from({ length: 50 }, (_, index) => `${'ab'.repeat(index + 11)}${noise(index * 7, index + 1).toString('base64')}${'-'.repeat(index * 3)}`),
    ];
    let compressed = 0;
    for (const [index, value] of values.entries()) {
      await db.set(`lzf:${index}`, value);
      const dump = await db.dumpBuffer(`lzf:${index}`);
      const span = new StringSpan().read(dump, 1);
      if (span.kind !== 1) continue;
      compressed++;
      const out = Buffer.alloc(span.length + 8, 0xee);
      lzfDecompressInto(dump, span.start, span.end, out, 4, span.length);
      expect(out.subarray(4, 4 + span.length).toString()).toBe(value);
      expect(out.subarray(0, 4).equals(Buffer.alloc(4, 0xee)) && out.subarray(4 + span.length).equals(Buffer.alloc(4, 0xee))).toBe(true);
    }
    expect(compressed).toBeGreaterThan(40);
  });

  it('digests a hashtable collection the same in any order, and differently when one element changes', async () => {
    const db = client(server);
    const names = Array.from({ length: 1000 }, (_, index) => `m${index}`);
    await db.hset('h1', ...names.flatMap((name) => [name, `v-${name}`]));
    await db.hset('h2', ...[...names].reverse().flatMap((name) => [name, `v-${name}`]));
    await db.hset('h3', ...names.flatMap((name) => [name, name === 'm500' ? 'v-m501' : `v-${name}`]));
    // Moved between field and value: the framing keeps them apart.
    await db.hset('h4', ...names.flatMap((name) => (name === 'm500' ? ['m500v', '-m500'] : [name, `v-${name}`])));
    const digest = async (key: string) => {
      const dump = await db.dumpBuffer(key);
      expect(dump[0]).toBe(4);
      return unorderedDigest(4, dump, 1, dump.length - 10);
    };
    const [one, two, three, four] = await Promise.all(['h1', 'h2', 'h3', 'h4'].map(digest));
    expect((await db.dumpBuffer('h1')).equals(await db.dumpBuffer('h2'))).toBe(false);
    expect(one?.equals(two as never)).toBe(true);
    expect(one?.equals(three as never)).toBe(false);
    expect(one?.equals(four as never)).toBe(false);
  });

  it('remembers keys by hash exactly as a Set of their names would, through its growth', () => {
    const set = new KeyHashSet();
    const names = new Set<string>();
    for (let index = 0; index < 50_000; index++) {
      const name = `key:${index % 40_000}:${'z'.repeat(index % 7)}`;
      expect(set.add(Buffer.from(name))).toBe(!names.has(name));
      names.add(name);
    }
    expect(set.size).toBe(names.size);
    for (let index = 0; index < 1000; index++) expect(set.has(Buffer.from(`absent:${index}`))).toBe(false);
    expect(set.has(Buffer.from('key:7:'))).toBe(true);
    // A view into a larger buffer is the same key as the name alone.
    expect(set.has(Buffer.from('..key:7:..'), 2, 8)).toBe(true);
  });
});
