/**
 * Verify between real Redis servers, on data made identical without the mover (REPLICAOF, then
 * REPLICAOF NO ONE: the target is a full-sync copy of the source, TTLs, consumer groups and
 * function libraries included). Identical data of every type and encoding verifies ok; each
 * difference made by hand on the target is then reported by object and kind. Keys expired on the
 * source but not yet reclaimed are no difference; DEBUG (and scripts) refused still verifies.
 */
import { CancelledError, ValidationError, type VerifyDifference, type VerifyReport } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover } from '../src/index.js';
import { populateEveryEncoding } from './fixtures.js';

const clients: Redis[] = [];
const client = (server: RedisServer, db = 0) => {
  const made = new Redis({ host: server.host, port: server.port, db });
  clients.push(made);
  return made;
};
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });
const verify = (source: RedisServer, target: RedisServer, options: Parameters<RedisDataMover['verify']>[2] = {}) => new RedisDataMover().verify(endpoint(source), endpoint(target), options);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The target made a full copy of the source by Redis itself: a replica's full sync, then promoted. */
async function syncFrom(source: RedisServer, target: RedisServer): Promise<void> {
  const replica = client(target);
  await replica.call('REPLICAOF', source.host, String(source.port));
  for (let attempt = 0; ; attempt++) {
    const info = await replica.info('replication');
    if (/master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) break;
    if (attempt > 500) throw new Error(`the target did not sync: ${info}`);
    await sleep(20);
  }
  await replica.call('REPLICAOF', 'NO', 'ONE');
}

/** Streams with consumer groups, one per stream difference the tests make. */
async function populateStreams(db: Redis): Promise<void> {
  for (const name of ['stream:acked', 'stream:setid', 'stream:delconsumer', 'stream:destroyed', 'stream:entries']) {
    for (let index = 1; index <= 20; index++) await db.xadd(name, `${index}-0`, 'n', String(index));
    await db.xgroup('CREATE', name, 'g', '0');
    await db.xreadgroup('GROUP', 'g', 'alice', 'COUNT', 5, 'STREAMS', name, '>');
    await db.xreadgroup('GROUP', 'g', 'bob', 'COUNT', 5, 'STREAMS', name, '>');
  }
  // A PEL longer than XINFO STREAM FULL shows (100): its tail is only seen through XPENDING pages.
  for (let index = 1; index <= 250; index++) await db.xadd('stream:pel', `${index}-0`, 'n', String(index));
  await db.xgroup('CREATE', 'stream:pel', 'g', '0');
  await db.xreadgroup('GROUP', 'g', 'alice', 'STREAMS', 'stream:pel', '>');
}

const LIBRARY = "#!lua name=mylib\nredis.register_function('answer', function() return 42 end)";

afterEach(() => {
  for (const made of clients.splice(0)) made.disconnect();
});

/** The note a verify that read the source from its snapshot carries. */
const SNAPSHOT_NOTE = /^the source was read from its RDB snapshot \(PSYNC, \d{4}-\d\d-\d\dT[\d:.]+Z\) and each key compared with it on the target/;

// Both ways of reading the source: key by key (live), and from its RDB snapshot, where every key
// that does not match the snapshot is compared live again (so each must find the same differences).
describe.each(['never', 'always'] as const)('Redis verify between real servers (sourceSnapshot: %s)', (sourceSnapshot) => {
  const verify = (source: RedisServer, target: RedisServer, options: Parameters<RedisDataMover['verify']>[2] = {}) =>
    new RedisDataMover().verify(endpoint(source), endpoint(target), { sourceSnapshot, ...options });
  const notes = (report: VerifyReport) => expect(report.notes ?? []).toEqual(sourceSnapshot === 'always' ? [expect.stringMatching(SNAPSHOT_NOTE)] : []);
  let source: RedisServer;
  let target: RedisServer;
  let keys: number;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    const db0 = client(source);
    await db0.config('SET', 'repl-diskless-sync-delay', '0');
    await populateEveryEncoding(db0);
    await populateStreams(db0);
    await db0.call('FUNCTION', 'LOAD', LIBRARY);
    const db3 = client(source, 3);
    await db3.set('in:db3', 'three');
    await db3.sadd('set:db3', 'p', 'q');
    await db3.set('ttl:db3', 'soon', 'PX', 600_000);
    keys = Number(await db0.dbsize()) + Number(await db3.dbsize());
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('is ok on identical data of every type and encoding, having compared every key and library', async () => {
    await syncFrom(source, target);
    const report = await verify(source, target);
    expect(report).toMatchObject({ ok: true, compared: keys + 1, differences: [] });
    notes(report);
    // The copy is really identical: Redis's own digest of both agrees.
    expect(await client(target).call('DEBUG', 'DIGEST')).toBe(await client(source).call('DEBUG', 'DIGEST'));
  });

  it('reports each difference made by hand on the target, by object and kind', async () => {
    await syncFrom(source, target);
    const db0 = client(target);
    // A changed value of each type.
    await db0.set('string:short', 'changed');
    await db0.hset('hash:hashtable', 'field:5', 'changed');
    await db0.lset('list:large', 3, 'changed');
    await db0.sadd('set:small', 'w');
    await db0.zincrby('zset:skiplist', 1, 'z3');
    await db0.xdel('stream:entries', '20-0');
    // Another type under the same name.
    await db0.del('string:int');
    await db0.sadd('string:int', '12345');
    // Missing, extra, and a database only the target has keys in.
    await db0.del('bulk:7');
    await db0.set('only:target', 'stray');
    await client(target, 5).set('stray:db5', 'stray');
    // TTLs: removed, and changed far beyond the tolerance.
    await db0.persist('ttl:string');
    await db0.pexpire('big:hash', 100_000);
    // Streams: a destroyed group, an acknowledged entry, a moved last id, a deleted consumer, a
    // delivery count changed deep in a long PEL.
    await db0.xgroup('DESTROY', 'stream:destroyed', 'g');
    await db0.xack('stream:acked', 'g', '2-0');
    await db0.call('XSETID', 'stream:setid', '999-0');
    await db0.xgroup('DELCONSUMER', 'stream:delconsumer', 'g', 'bob');
    await db0.xclaim('stream:pel', 'g', 'alice', 0, '200-0', 'RETRYCOUNT', 7);
    // A library gone.
    await db0.call('FUNCTION', 'DELETE', 'mylib');

    const report = await verify(source, target);
    expect(report.ok).toBe(false);
    const key = (name: string) => `db 0 key ${JSON.stringify(name)}`;
    const expected: Array<[string, VerifyDifference['kind'], RegExp]> = [
      [key('big:hash'), 'different', /^TTL \d+ ms on the source, TTL \d+ ms on the target/],
      [key('bulk:7'), 'missing', /^string not on the target$/],
      [key('hash:hashtable'), 'different', /^values differ$/],
      [key('list:large'), 'different', /^values differ$/],
      [key('only:target'), 'extra', /^string on the target only/],
      [key('set:small'), 'different', /^values differ$/],
      [key('stream:acked'), 'different', /consumer group "g": pending entries differ \(10 on the source, 9 on the target.*consumer "alice": 5 pending on the source, 4 on the target/],
      [key('stream:delconsumer'), 'different', /consumer group "g": consumer "bob" missing on the target/],
      [key('stream:destroyed'), 'different', /^consumer group "g" missing on the target$/],
      [key('stream:entries'), 'different', /^values differ$/],
      [key('stream:pel'), 'different', /^consumer group "g": pending entries differ \(250 on the source, 250 on the target; first at "200-0 alice 1" on the source, "200-0 alice 7"/],
      [key('stream:setid'), 'different', /^last-generated-id 20-0 on the source, 999-0 on the target/],
      [key('string:int'), 'different', /^string on the source, set on the target$/],
      [key('string:short'), 'different', /^values differ$/],
      [key('ttl:string'), 'different', /^TTL \d+ ms on the source, no TTL on the target/],
      [key('zset:skiplist'), 'different', /^values differ$/],
      ['db 5', 'extra', /^1 key on the target only \("stray:db5"\)/],
      ['function library mylib', 'missing', /absent on the target/],
    ];
    expect(report.differences?.map((difference) => [difference.object, difference.kind])).toEqual(expected.map(([object, kind]) => [object, kind]));
    for (const [index, [, , detail]] of expected.entries()) expect(report.differences?.[index]?.detail).toMatch(detail);
    const first = report.differences?.[0] as VerifyDifference;
    expect(report.firstDifference).toBe(`${first.object}: ${first.detail}`);
    // Every source key (bulk:7 missing too), the extra key, the stray database's key, the library.
    expect(report.compared).toBe(keys + 3);
  });

  it('compares a sample only when asked, and says so', async () => {
    await syncFrom(source, target);
    if (sourceSnapshot === 'always') {
      // A sample reads a few keys live: asking for the snapshot too is a contradiction, said so.
      const error = await verify(source, target, { sample: 20 }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error) && error.message).toMatch(/sourceSnapshot 'always' needs .* no sample/);
      return;
    }
    const report = await verify(source, target, { sample: 20 });
    expect(report.ok).toBe(true);
    expect(report.compared).toBeGreaterThan(1);
    expect(report.compared).toBeLessThanOrEqual(20 + 3 + 1);
    expect(report.notes?.join('\n')).toMatch(/db 0: a sample of \d+ random keys compared \(sample: 20\), not every key/);
  });

  it('honours databaseMap and source.databases; a database no source database maps to must be empty', async () => {
    await syncFrom(source, target);
    await client(target).call('SWAPDB', '3', '5');
    expect(await verify(source, target, { databaseMap: { 3: 5 } })).toMatchObject({ ok: true, compared: keys + 1, differences: [] });
    const listed = await new RedisDataMover().verify({ ...endpoint(source), databases: [3] }, endpoint(target), { databaseMap: { 3: 5 }, sourceSnapshot });
    expect(listed).toMatchObject({ ok: true, compared: 3 + 1, differences: [] });
    // Without the map, source db 3 is compared with the (now empty) target db 3, and db 5 is a stray.
    const unmapped = await verify(source, target);
    expect(unmapped.differences?.filter((difference) => difference.kind === 'missing').length).toBe(3);
    expect(unmapped.differences?.at(-1)).toMatchObject({ object: 'db 5', kind: 'extra', detail: expect.stringMatching(/^3 keys on the target only/) });
    // A key in target db 3, which the map leaves to no source database.
    await client(target, 3).set('stray', 'here');
    const stray = await verify(source, target, { databaseMap: { 3: 5 } });
    expect(stray.differences).toEqual([{ object: 'db 3', kind: 'extra', detail: expect.stringMatching(/^1 key on the target only \("stray"\)/) }]);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await verify(source, target, { signal: controller.signal }).catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(error)).toBe(true);
  });
});

describe('Redis verify: expiry, nothing to compare, DEBUG refused', () => {
  it('does not count keys that expired on the source but are not reclaimed yet', async () => {
    const [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    try {
      const db0 = client(source);
      // Active expiry off: expired keys stay in memory (and in INFO keyspace) until touched.
      await db0.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
      const live = client(target);
      for (const side of [db0, live]) {
        const pipeline = side.pipeline();
        for (let index = 0; index < 100; index++) pipeline.set(`stays:${index}`, String(index));
        await pipeline.exec();
      }
      const expiring = db0.pipeline();
      for (let index = 0; index < 2000; index++) expiring.set(`gone:${index}`, 'x', 'PX', 1);
      await expiring.exec();
      await sleep(50);
      expect(await db0.info('keyspace')).toMatch(/db0:keys=2100/);
      expect(await verify(source, target)).toEqual({ ok: true, compared: 100, differences: [] });
      // From the snapshot too: it holds the expired keys, which are not the source's any more.
      await db0.config('SET', 'repl-diskless-sync-delay', '0');
      expect(await verify(source, target, { sourceSnapshot: 'always' })).toMatchObject({ ok: true, compared: 100, differences: [] });
    } finally {
      await Promise.all([source.stop(), target.stop()]);
    }
  });

  it('refuses to call two empty servers verified, but reports keys on an otherwise empty target', async () => {
    const [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    try {
      const error = await verify(source, target).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(/^Nothing to verify/);
      await client(target, 2).set('lonely', '1');
      const report = await verify(source, target);
      expect(report).toMatchObject({ ok: false, compared: 1, differences: [{ object: 'db 2', kind: 'extra' }] });
    } finally {
      await Promise.all([source.stop(), target.stop()]);
    }
  });

  it('verifies without DEBUG (and without scripts), and still finds a changed value of each type', async () => {
    const [source, target] = await Promise.all([startRedisServer(), startRedisServer({ extraArguments: ['--enable-debug-command', 'no'] })]);
    try {
      const db0 = client(source);
      await db0.config('SET', 'repl-diskless-sync-delay', '0');
      await populateEveryEncoding(db0);
      await populateStreams(db0);
      const keys = Number(await db0.dbsize());
      await syncFrom(source, target);
      const withoutDebug = await verify(source, target);
      expect(withoutDebug).toMatchObject({ ok: true, compared: keys, differences: [] });
      expect(withoutDebug.notes).toEqual([expect.stringMatching(/^DEBUG DIGEST-VALUE is not allowed on the target: .*strings hashed on the servers by Lua/)]);

      // A user who may not run scripts either: metadata by TYPE/PEXPIRETIME pipelines, strings by GET.
      await client(target).call('ACL', 'SETUSER', 'verifier', 'on', '>secret', '~*', '&*', '+@all', '-@scripting');
      const noScripts = (): Promise<VerifyReport> => new RedisDataMover().verify(endpoint(source), { ...endpoint(target), user: 'verifier', password: 'secret' });
      const plain = await noScripts();
      expect(plain).toMatchObject({ ok: true, compared: keys, differences: [] });
      // FUNCTION is a scripting command too: the report says the libraries could not be compared.
      expect(plain.notes).toEqual([
        expect.stringMatching(/^DEBUG DIGEST-VALUE is not allowed on the target: values were read and digested by the verify$/),
        expect.stringMatching(/^function libraries not compared: The target Redis refused FUNCTION LIST/),
      ]);

      const tampered = client(target);
      await tampered.set('string:binary', 'changed');
      await tampered.setrange('big:string', 150_000, 'x');
      await tampered.hset('big:hash', 'field:4999', 'changed');
      await tampered.hset('hash:small', 'name', 'changed');
      await tampered.lset('list:large', 1499, 'changed');
      await tampered.srem('set:hashtable', 'member:599');
      await tampered.zadd('zset:small', 9, 'one');
      await tampered.xdel('stream:entries', '1-0');
      const changed = ['big:hash', 'big:string', 'hash:small', 'list:large', 'set:hashtable', 'stream:entries', 'string:binary', 'zset:small'].map((name) => ({
        object: `db 0 key ${JSON.stringify(name)}`,
        kind: 'different',
        detail: 'values differ',
      }));
      for (const report of [await verify(source, target), await noScripts(), await verify(source, target, { sourceSnapshot: 'always' })]) {
        expect(report.ok).toBe(false);
        expect(report.differences).toEqual(changed);
      }
    } finally {
      await Promise.all([source.stop(), target.stop()]);
    }
  });
});
