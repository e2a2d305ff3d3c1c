/**
 * What the piecewise copy (keys above `bigKeyBytes`) and the copy of FUNCTION libraries must keep,
 * between real Redis servers, with each strategy: streams with their consumer groups, pending
 * entries (also of deleted messages), consumers, last-generated-id, entries-added and
 * max-deleted-entry-id; the absolute expiry of a big key; function libraries, refused when the
 * target has one of the same name with other code. Streams are compared independently of verify:
 * XINFO STREAM FULL and DEBUG DIGEST-VALUE on both sides.
 */
import { ValidationError } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compareFunctions } from '../src/functions.js';
import { RedisDataMover, type RedisCopyStrategy } from '../src/index.js';
import { copyInPieces, copyStreamInPieces } from '../src/pieces.js';

const clients: Redis[] = [];
const client = (server: RedisServer) => {
  const made = new Redis({ host: server.host, port: server.port });
  clients.push(made);
  return made;
};
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });
afterEach(async () => {
  for (const made of clients.splice(0)) made.disconnect();
});

// Ids far in the future: XADD * on the target then derives its id from the stream's last id, not
// the clock, so a last-generated-id that went back would let it reissue an id the source gave out.
const BASE = 9_000_000_000_000;
const id = (index: number) => `${BASE + Math.floor(index / 3)}-${index % 3}`;
const LIBRARY = "#!lua name=mylib\nredis.register_function('echo_first', function(keys, args) return args[1] end)";
const OTHER_CODE = "#!lua name=mylib\nredis.register_function('echo_first', function(keys, args) return 'not the source' end)";

/** A stream with several thousand entries, deletions, two groups, acked, re-delivered and idle pending entries. */
async function populateStreams(redis: Redis): Promise<void> {
  const write = redis.pipeline();
  for (let index = 0; index < 6000; index++) write.xadd('events', id(index), 'n', String(index), 'payload', 'p'.repeat(40 + (index % 7)));
  await write.exec();
  await redis.xgroup('CREATE', 'events', 'billing', '0');
  await redis.xgroup('CREATE', 'events', 'audit', id(2999));
  await redis.xreadgroup('GROUP', 'billing', 'alice', 'COUNT', 300, 'STREAMS', 'events', '>');
  await redis.xreadgroup('GROUP', 'billing', 'bob', 'COUNT', 200, 'STREAMS', 'events', '>');
  await redis.xreadgroup('GROUP', 'audit', 'dave', 'COUNT', 50, 'STREAMS', 'events', '>');
  // Delivered again (delivery counts 2 and 3), and idle for a minute and an hour.
  await redis.xclaim('events', 'billing', 'bob', 0, id(10), id(11), id(12));
  await redis.xclaim('events', 'billing', 'bob', 0, id(10));
  await redis.xclaim('events', 'billing', 'alice', 0, id(20), id(21), 'IDLE', 60_000);
  await redis.xclaim('events', 'audit', 'dave', 0, id(3005), 'IDLE', 3_600_000, 'RETRYCOUNT', 7);
  await redis.xack('events', 'billing', id(0), id(1), id(400));
  await redis.xgroup('CREATECONSUMER', 'events', 'billing', 'carol'); // a consumer with nothing pending
  // Deleted messages that stay pending: trimmed from the head (ids 0..99) and deleted in the middle.
  await redis.xtrim('events', 'MINID', '=', id(100));
  await redis.xdel('events', id(150), id(151), id(350), id(3010), id(4000));
  // The last entries deleted: last-generated-id stays above the top entry.
  await redis.xdel('events', id(5999), id(5998));
  // An empty stream with a group; a stream whose entries were all deleted, with its pending entries.
  await redis.xgroup('CREATE', 'empty:grouped', 'idle', '$', 'MKSTREAM');
  for (let index = 0; index < 3; index++) await redis.xadd('gone', id(index), 'f', 'v');
  await redis.xgroup('CREATE', 'gone', 'readers', '0');
  await redis.xreadgroup('GROUP', 'readers', 'erin', 'COUNT', 2, 'STREAMS', 'gone', '>');
  await redis.xdel('gone', id(0), id(1), id(2));
}

type Info = Record<string, unknown>;
/** XINFO STREAM key FULL as nested objects (COUNT 0: everything). */
async function streamInfo(redis: Redis, key: string): Promise<Info> {
  const toObject = (flat: unknown[]): Info => {
    const object: Info = {};
    for (let index = 0; index + 1 < flat.length; index += 2) object[String(flat[index])] = flat[index + 1];
    return object;
  };
  const info = toObject((await redis.call('XINFO', 'STREAM', key, 'FULL', 'COUNT', '0')) as unknown[]);
  // Layout, not content: the source's listpack nodes keep the slots of deleted entries (Redis's AOF rewrite differs there too).
  delete info['radix-tree-keys'];
  delete info['radix-tree-nodes'];
  info.groups = (info.groups as unknown[][]).map((raw) => {
    const group = toObject(raw);
    group.consumers = (group.consumers as unknown[][]).map(toObject);
    return group;
  });
  return info;
}

/**
 * The two streams' XINFO FULL equal. Delivery times are the source's exactly when `deliveryTolerance`
 * is 0; seen-time cannot be set by any command (XCLAIM and CREATECONSUMER set it to now): it lies
 * between the source's and now.
 */
function expectSameStream(source: Info, target: Info, deliveryTolerance = 0): void {
  const seen = (info: Info) => (info.groups as Info[]).flatMap((group) => (group.consumers as Info[]).map((consumer) => Number(consumer['seen-time'])));
  const deliveries = (info: Info) =>
    (info.groups as Info[]).flatMap((group) => [...(group.pending as unknown[][]).map((entry) => Number(entry[2])), ...(group.consumers as Info[]).flatMap((consumer) => (consumer.pending as unknown[][]).map((entry) => Number(entry[1])))]);
  const withoutTimes = (info: Info) => ({
    ...info,
    groups: (info.groups as Info[]).map((group) => ({
      ...group,
      pending: (group.pending as unknown[][]).map(([entryId, consumer, , count]) => [entryId, consumer, count]),
      consumers: (group.consumers as Info[]).map((consumer) => ({ ...consumer, 'seen-time': 'set on copy', pending: (consumer.pending as unknown[][]).map(([entryId, , count]) => [entryId, count]) })),
    })),
  });
  expect(withoutTimes(target)).toEqual(withoutTimes(source));
  const [sourceDeliveries, targetDeliveries] = [deliveries(source), deliveries(target)];
  expect(targetDeliveries).toHaveLength(sourceDeliveries.length);
  for (const [index, time] of targetDeliveries.entries()) expect(Math.abs(time - (sourceDeliveries[index] as number))).toBeLessThanOrEqual(deliveryTolerance);
  seen(target).forEach((time, index) => {
    expect(time).toBeGreaterThanOrEqual(seen(source)[index] as number);
    expect(time).toBeLessThanOrEqual(Date.now() + 1000);
  });
}

describe.each(['rdb', 'scan'] as RedisCopyStrategy[])('streams, big-key expiry and functions copied, strategy %s', (strategy) => {
  let source: RedisServer;
  let target: RedisServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    const redis = new Redis({ host: source.host, port: source.port });
    try {
      await redis.config('SET', 'repl-diskless-sync-delay', '0');
      await populateStreams(redis);
      await redis.set('big:string', Buffer.alloc(20 * 1024 * 1024, 'z'), 'PX', 600_000);
      await redis.call('FUNCTION', 'LOAD', LIBRARY);
    } finally {
      redis.disconnect();
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('copies every stream in pieces with its groups, PEL, consumers and counters; the big key with its exact expiry; the functions', async () => {
    // bigKeyBytes 1: every key is copied in pieces, whichever size either strategy measures.
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy, bigKeyBytes: 1 });
    expect(report).toMatchObject({ strategy, items: 4, bigKeys: 4 });
    const [from, to] = [client(source), client(target)];
    for (const key of ['events', 'empty:grouped', 'gone']) {
      const [sourceInfo, targetInfo] = [await streamInfo(from, key), await streamInfo(to, key)];
      expectSameStream(sourceInfo, targetInfo);
      expect(await to.call('DEBUG', 'DIGEST-VALUE', key), key).toEqual(await from.call('DEBUG', 'DIGEST-VALUE', key));
    }
    const events = await streamInfo(to, 'events');
    expect(events).toMatchObject({ length: 5893, 'entries-added': 6000, 'last-generated-id': id(5999), 'max-deleted-entry-id': id(5999), 'recorded-first-entry-id': id(100) });
    const billing = (events.groups as Info[])[1] as Info;
    expect(billing).toMatchObject({ name: 'billing', 'pel-count': 497 });
    // Delivery counts kept: id(10) delivered three times, id(3005) given RETRYCOUNT 7.
    expect((billing.pending as unknown[][]).find(([entryId]) => entryId === id(10))?.[3]).toBe(3);
    expect((billing.consumers as Info[]).map((consumer) => [consumer.name, consumer['pel-count']])).toEqual([['alice', 295], ['bob', 202], ['carol', 0]]);
    expect(await streamInfo(to, 'gone')).toMatchObject({ length: 0, 'last-generated-id': id(2), 'max-deleted-entry-id': id(2), 'entries-added': 3 });
    // New entries on the target come after every id the source gave out.
    // (The last id lies ahead of the clock, so Redis goes on from it: the next one after id(5999) = BASE+1999-2.)
    expect(await to.xadd('events', '*', 'after', 'copy')).toBe(`${BASE + 1999}-3`);
    // The absolute expiry of the big string, to the millisecond (a relative TTL set afterwards is later by the copy's duration).
    expect(await to.call('PEXPIRETIME', 'big:string')).toBe(await from.call('PEXPIRETIME', 'big:string'));
    expect(await to.strlen('big:string')).toBe(20 * 1024 * 1024);
    // The function library, and it runs.
    expect(await to.call('FUNCTION', 'LIST', 'WITHCODE')).toEqual(await from.call('FUNCTION', 'LIST', 'WITHCODE'));
    expect(await to.call('FCALL', 'echo_first', '0', 'hello')).toBe('hello');
    expect(await compareFunctions(from, to)).toEqual([]);
  });

  it('refuses a target whose library of the same name has other code before writing any key, and replaces it when told', async () => {
    const fresh = await startRedisServer();
    const redis = new Redis({ host: fresh.host, port: fresh.port });
    try {
      await redis.call('FUNCTION', 'LOAD', OTHER_CODE);
      const refused = await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { strategy, bigKeyBytes: 1 }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(refused)).toBe(true);
      expect((refused as ValidationError).message).toContain("'mylib'");
      expect((refused as ValidationError).issues.map((issue) => issue.path)).toEqual(['function library mylib']);
      expect(await redis.dbsize()).toBe(0);
      expect(await redis.call('FCALL', 'echo_first', '0', 'hello')).toBe('not the source');
      await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { strategy, bigKeyBytes: 1, replaceExisting: true });
      expect(await redis.call('FCALL', 'echo_first', '0', 'hello')).toBe('hello');
      expect(await redis.dbsize()).toBe(4);
      // An identical library already there is fine (FLUSHALL empties the keyspace, not the functions).
      await redis.flushall();
      await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { strategy, bigKeyBytes: 1 });
      expect(await redis.dbsize()).toBe(4);
      expect(await compareFunctions(client(source), redis)).toEqual([]);
    } finally {
      redis.disconnect(); // before the server goes, so that it does not try to reconnect
      await fresh.stop();
    }
  });
});

describe('streams and expiries in pieces, piece by piece', () => {
  let source: RedisServer;
  let target: RedisServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    const redis = new Redis({ host: source.host, port: source.port });
    try {
      await populateStreams(redis);
    } finally {
      redis.disconnect();
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('pages a large PEL with XPENDING, delivery times to within a few milliseconds', async () => {
    const [from, to] = [client(source), client(target)];
    // exactPendingBytes 0: the PEL may not be read from XINFO STREAM FULL, so XPENDING pages it.
    const bytes = await copyStreamInPieces(from, to, Buffer.from('events'), { exactPendingBytes: 0 });
    expect(bytes).toBeGreaterThan(5893 * 40);
    // TIME and XPENDING read the clock a moment apart, and idle times are whole milliseconds.
    expectSameStream(await streamInfo(from, 'events'), await streamInfo(to, 'events'), 5);
    expect(await to.call('DEBUG', 'DIGEST-VALUE', 'events')).toEqual(await from.call('DEBUG', 'DIGEST-VALUE', 'events'));
  });

  it('leaves no key without expiry on the target when its expiry passes during the copy', async () => {
    const [from, to] = [client(source), client(target)];
    const fields: string[] = [];
    for (let index = 0; index < 3000; index++) fields.push(`f${index}`, `v${index}`);
    await from.hset('expiring', ...fields);
    await from.pexpire('expiring', 1500);
    // The second HSCAN page is read, then held until the key has expired, then written: as when the
    // source's clock is behind the target's, a piece lands after the target dropped the key, and
    // recreates it without expiry. The copy must not leave that.
    let pages = 0;
    const slow = new Proxy(from, {
      get(object, property, receiver) {
        if (property !== 'hscanBuffer') return Reflect.get(object, property, receiver);
        return async (...args: Parameters<Redis['hscanBuffer']>) => {
          const page = await object.hscanBuffer(...args);
          if (++pages === 2) await new Promise((resolve) => setTimeout(resolve, 1700));
          return page;
        };
      },
    });
    expect(await copyInPieces(slow, to, Buffer.from('expiring'))).toBe(-1);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(await to.exists('expiring')).toBe(0);
  });
});

describe('compareFunctions', () => {
  let source: RedisServer;
  let target: RedisServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('names each library missing on the target, different, or only on the target', async () => {
    const [from, to] = [client(source), client(target)];
    expect(await compareFunctions(from, to)).toEqual([]);
    await from.call('FUNCTION', 'LOAD', "#!lua name=only_source\nredis.register_function('a', function() return 1 end)");
    await from.call('FUNCTION', 'LOAD', "#!lua name=both\nredis.register_function('b', function() return 1 end)");
    await to.call('FUNCTION', 'LOAD', "#!lua name=both\nredis.register_function('b', function() return 2 end)");
    await to.call('FUNCTION', 'LOAD', "#!lua name=only_target\nredis.register_function('c', function() return 1 end)");
    const differences = await compareFunctions(from, to);
    expect(differences.map(({ object, kind }) => ({ object, kind }))).toEqual([
      { object: 'function library both', kind: 'different' },
      { object: 'function library only_source', kind: 'missing' },
      { object: 'function library only_target', kind: 'extra' },
    ]);
    expect(differences[0]?.detail).toMatch(/^code differs/);
  });
});

describe('functions on a source whose user may not run FUNCTION (ACL)', () => {
  let source: RedisServer;
  let target: RedisServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    const redis = new Redis({ host: source.host, port: source.port });
    try {
      await redis.call('ACL', 'SETUSER', 'limited', 'on', '>secret', '~*', '&*', '+@all', '-function');
      await redis.set('plain', 'value');
    } finally {
      redis.disconnect();
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });
  const limited = () => ({ ...endpoint(source), user: 'limited', password: 'secret' });

  it('copies the keys when the source has no library, and refuses when it has one it will not show', async () => {
    await new RedisDataMover().copy(limited(), endpoint(target), { strategy: 'scan' });
    expect(await client(target).get('plain')).toBe('value');
    await client(source).call('FUNCTION', 'LOAD', LIBRARY);
    await client(target).flushall();
    const refused = await new RedisDataMover().copy(limited(), endpoint(target), { strategy: 'scan' }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/refused FUNCTION LIST, and holds 1 function library/);
    expect(await client(target).dbsize()).toBe(0);
  });
});
