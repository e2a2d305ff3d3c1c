/**
 * The mover's preflight check (DataMoverV1.check) on real Redis servers: it finds what a copy would
 * refuse, by reading only (the target's keyspace and the source's write counter do not move).
 */
import type { DataEndpoint } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover } from '../src/index.js';

let source: RedisServer;
let target: RedisServer;
const mover = new RedisDataMover();
const endpoint = (server: RedisServer, extra: Partial<DataEndpoint> = {}): DataEndpoint => ({ host: server.host, port: server.port, ...extra });
const paths = (issues: Array<{ path: string; message: string }>) => issues.map((issue) => `${issue.path}: ${issue.message}`);
const client = (server: RedisServer) => new Redis({ host: server.host, port: server.port, lazyConnect: true });

async function on<T>(server: RedisServer, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = client(server);
  try {
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

beforeAll(async () => {
  [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
  await on(source, async (redis) => {
    await redis.mset('a', '1', 'b', '2');
    await redis.call('ACL', 'SETUSER', 'blind', 'on', '>pw', '~*', '+@all', '-dump');
    await redis.call('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+@read', '+@keyspace', '+ping', '+info', '+scan', '+dump', '+memory', '-restore');
    // May ask ACL DRYRUN (it has +@all), but not sync nor pause writes.
    await redis.call('ACL', 'SETUSER', 'syncless', 'on', '>pw', '~*', '+@all', '-psync', '-sync', '-client');
  });
  await on(target, async (redis) => {
    await redis.call('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+@read', '+ping', '+info', '-restore');
    await redis.call('ACL', 'SETUSER', 'unfollowing', 'on', '>pw', '~*', '+@all', '-replicaof', '-slaveof', '-config');
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('Redis check', () => {
  it('passes a copy that would work, and writes nothing on either side', async () => {
    const changes = (server: RedisServer) => on(server, async (redis) => (await redis.info('persistence')).match(/rdb_changes_since_last_save:(\d+)/)?.[1]);
    const before = [await changes(source), await changes(target)];
    expect(await mover.check(endpoint(source), endpoint(target))).toEqual([]);
    expect([await changes(source), await changes(target)]).toEqual(before);
    expect(await on(target, (redis) => redis.dbsize())).toBe(0);
  });

  it('names an unreachable server and refused credentials', async () => {
    expect(paths(await mover.check({ host: '127.0.0.1', port: 1 }, undefined))).toEqual([expect.stringMatching(/^source: .*ECONNREFUSED/)]);
    expect(paths(await mover.check(endpoint(source, { user: 'reader', password: 'wrong' }), undefined))).toEqual(['source: the password (or user) was refused']);
  });

  it('finds, for replication, a source login that may not sync or pause writes and a target login that may not follow', async () => {
    expect(await mover.check(endpoint(source), endpoint(target), { mode: 'replicate' })).toEqual([]);
    const found = paths(await mover.check(endpoint(source, { user: 'syncless', password: 'pw' }), endpoint(target, { user: 'unfollowing', password: 'pw' }), { mode: 'replicate' }));
    expect(found).toContainEqual(expect.stringMatching(/^source\.user: the source login syncless may not run PSYNC, CLIENT, which replication needs/));
    expect(found).toContainEqual(expect.stringMatching(/^target\.user: the target login unfollowing may not run REPLICAOF, CONFIG, which replication needs/));
    // A login that may not even ask (no ACL rights) is not judged: its commands are tried when needed.
    expect(paths(await mover.check(endpoint(source, { user: 'reader', password: 'pw' }), undefined, { mode: 'replicate' }))).toEqual([]);
  });

  it('finds a login that may not read or write keys, a copy onto itself, and a target holding data', async () => {
    expect(paths(await mover.check(endpoint(source, { user: 'blind', password: 'pw' }), undefined))).toEqual([expect.stringMatching(/^source\.user: .*may not read keys/)]);
    expect(paths(await mover.check(endpoint(source), endpoint(target, { user: 'reader', password: 'pw' })))).toEqual([expect.stringMatching(/^target\.user: .*may not write keys/)]);
    expect(paths(await mover.check(endpoint(source), endpoint(source, { host: 'localhost' })))).toEqual([expect.stringMatching(/^target: .*is the source server itself/)]);
    await on(target, (redis) => redis.set('left', 'over'));
    try {
      expect(paths(await mover.check(endpoint(source), endpoint(target)))).toEqual([expect.stringMatching(/^target\.db0: .*holds 1 keys/)]);
      expect(await mover.check(endpoint(source), endpoint(target), { replaceExisting: true })).toEqual([]);
    } finally {
      await on(target, (redis) => redis.flushall());
    }
  });
});
