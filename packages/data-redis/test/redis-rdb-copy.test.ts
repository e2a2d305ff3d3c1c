/**
 * The rdb strategy (PSYNC snapshot, streamed RESTOREs) between real Redis servers, from a diskless
 * and from a disk-based source: every type and encoding, TTLs, several databases, a databaseMap,
 * big keys copied in pieces; DEBUG DIGEST agrees and verify passes. Then passwords, the fallback
 * to scan when PSYNC is not allowed, expired keys, and a killed copy resumed.
 */
import { CancelledError, ValidationError } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover } from '../src/index.js';
import { populateEveryEncoding } from './fixtures.js';

const clients: Redis[] = [];
const client = (server: RedisServer, db = 0, password?: string) => {
  const made = new Redis({ host: server.host, port: server.port, db, ...(password ? { password } : {}) });
  clients.push(made);
  return made;
};
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });
const digest = async (server: RedisServer, password?: string) => String(await client(server, 0, password).call('DEBUG', 'DIGEST'));
const bigKeyBytes = 64 * 1024;

async function populate(server: RedisServer, diskless: 'yes' | 'no'): Promise<number> {
  const admin = client(server);
  await admin.config('SET', 'repl-diskless-sync', diskless);
  await admin.config('SET', 'repl-diskless-sync-delay', '0');
  await populateEveryEncoding(admin);
  const db3 = client(server, 3);
  await db3.set('in:db3', 'three');
  await db3.sadd('set:db3', 'p', 'q');
  await db3.set('ttl:db3', 'soon', 'PX', 600_000);
  return Number(await admin.dbsize()) + Number(await db3.dbsize());
}

afterEach(async () => {
  for (const made of clients.splice(0)) made.disconnect();
});

describe.each(['yes', 'no'] as const)('rdb strategy, repl-diskless-sync %s', (diskless) => {
  let source: RedisServer;
  let target: RedisServer;
  let total: number;
  beforeAll(async () => {
    [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
    total = await populate(source, diskless);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('copies every type, encoding, TTL and database; big keys in pieces; DEBUG DIGEST agrees', async () => {
    const progress: number[] = [];
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'rdb', bigKeyBytes, batchSize: 500, onProgress: (event) => progress.push(event.items) });
    expect(report).toMatchObject({ strategy: 'rdb', items: total, bigKeys: 2, resumed: false });
    expect(report.fallbackReason).toBeUndefined();
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(total);
    expect(await digest(target)).toBe(await digest(source));
    expect(await new RedisDataMover().verify(endpoint(source), endpoint(target))).toMatchObject({ ok: true, compared: total });
    const copied = client(target);
    expect(await copied.pttl('ttl:string')).toBeGreaterThan(590_000);
    expect(await copied.pttl('big:hash')).toBeGreaterThan(590_000);
    expect(await copied.pttl('string:short')).toBe(-1);
    expect(await copied.xinfo('GROUPS', 'stream')).toEqual(await client(source).xinfo('GROUPS', 'stream'));
    expect(await copied.xpending('stream', 'billing')).toEqual(await client(source).xpending('stream', 'billing'));
    // Each encoding the fixtures aim at is there, and the copy keeps it.
    const encodings = { 'string:int': 'int', 'string:lzf': 'raw', 'list:large': 'quicklist', 'set:intset': 'intset', 'set:hashtable': 'hashtable', 'zset:small': 'listpack', 'zset:skiplist': 'skiplist', 'hash:small': 'listpack', 'hash:hashtable': 'hashtable', 'hash:long-value': 'hashtable' };
    for (const [key, encoding] of Object.entries(encodings)) {
      expect(await client(source).object('ENCODING', key), key).toBe(encoding);
      expect(await copied.object('ENCODING', key), key).toBe(encoding);
    }
    expect(await client(target, 3).pttl('ttl:db3')).toBeGreaterThan(590_000);
  });

  it('maps databases, and copies only the listed ones', async () => {
    const fresh = await startRedisServer();
    try {
      const report = await new RedisDataMover().copy({ ...endpoint(source), databases: [3] }, endpoint(fresh), { strategy: 'rdb', databaseMap: { 3: 5 } });
      expect(report).toMatchObject({ strategy: 'rdb', items: 3 });
      expect(await client(fresh, 5).dbsize()).toBe(3);
      expect(await client(fresh, 3).dbsize()).toBe(0);
      expect(await client(fresh, 0).dbsize()).toBe(0);
      expect(await new RedisDataMover().verify({ ...endpoint(source), databases: [3] }, endpoint(fresh), { databaseMap: { 3: 5 } })).toMatchObject({ ok: true, compared: 3 });
      expect(await client(fresh, 5).call('DEBUG', 'DIGEST-VALUE', 'set:db3')).toEqual(await client(source, 3).call('DEBUG', 'DIGEST-VALUE', 'set:db3'));
    } finally {
      await fresh.stop();
    }
  });
});

describe('rdb strategy: safety, fallback, expiry and resume', () => {
  let source: RedisServer;
  let total: number;
  beforeAll(async () => {
    source = await startRedisServer();
    total = await populate(source, 'yes');
  }, 60_000);
  afterAll(async () => {
    await source?.stop();
  });

  it('refuses a target that holds data, and replaces it when told', async () => {
    const fresh = await startRedisServer();
    try {
      await client(fresh, 3).set('already', 'here');
      const error = await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { strategy: 'rdb' }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual(['target.db3']);
      expect(await client(fresh, 3).dbsize()).toBe(1);
      const report = await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { strategy: 'rdb', replaceExisting: true, bigKeyBytes });
      expect(report.items).toBe(total);
      expect(await digest(fresh)).toBe(await digest(source));
    } finally {
      await fresh.stop();
    }
  });

  it('authenticates on both sides, and gives one clear error for a wrong password', async () => {
    const [guardedSource, guardedTarget] = await Promise.all([startRedisServer({ password: 'source-secret' }), startRedisServer({ password: 'target-secret' })]);
    try {
      const admin = client(guardedSource, 0, 'source-secret');
      await admin.config('SET', 'repl-diskless-sync-delay', '0');
      await admin.set('guarded', 'value', 'PX', 600_000);
      await admin.hset('guarded:hash', { a: '1' });
      const refused = await new RedisDataMover()
        .copy({ ...endpoint(guardedSource), password: 'wrong-secret' }, { ...endpoint(guardedTarget), password: 'target-secret' }, { strategy: 'rdb' })
        .catch((caught: unknown) => caught);
      expect((refused as Error).message).toMatch(/^Cannot reach the source Redis at .*: authentication failed/);
      expect((refused as Error).message).not.toContain('wrong-secret');
      const report = await new RedisDataMover().copy({ ...endpoint(guardedSource), password: 'source-secret' }, { ...endpoint(guardedTarget), password: 'target-secret' }, { strategy: 'rdb' });
      expect(report).toMatchObject({ strategy: 'rdb', items: 2 });
      expect(await digest(guardedTarget, 'target-secret')).toBe(await digest(guardedSource, 'source-secret'));
    } finally {
      await Promise.all([guardedSource.stop(), guardedTarget.stop()]);
    }
  });

  it('falls back to scan when the user may not PSYNC (auto), and says why (rdb)', async () => {
    const fresh = await startRedisServer();
    try {
      await client(source).call('ACL', 'SETUSER', 'copier', 'on', '>copier-secret', '~*', '&*', '+@all', '-psync', '-sync');
      const copier = { ...endpoint(source), user: 'copier', password: 'copier-secret' };
      const refused = await new RedisDataMover().copy(copier, endpoint(fresh), { strategy: 'rdb' }).catch((caught: unknown) => caught);
      expect((refused as Error).message).toMatch(/refused PSYNC: NOPERM.*strategy 'scan'/s);
      expect((refused as Error).message).not.toContain('copier-secret');
      expect(await client(fresh).dbsize()).toBe(0);
      const report = await new RedisDataMover().copy(copier, endpoint(fresh), { bigKeyBytes });
      expect(report.strategy).toBe('scan');
      expect(report.fallbackReason).toMatch(/NOPERM/);
      expect(report.items).toBe(total);
      expect(await digest(fresh)).toBe(await digest(source));
    } finally {
      await client(source).call('ACL', 'DELUSER', 'copier');
      await fresh.stop();
    }
  });

  it('falls back to scan mid-stream when the snapshot holds a module type, undoing what it wrote', async () => {
    // A proxy to the source that answers PSYNC itself, with an RDB holding a string, then a module value.
    const rdb = Buffer.concat([
      Buffer.from('REDIS0010', 'latin1'),
      Buffer.from([0xfe, 0x00, 0x00, 6, ...Buffer.from('fake:a'), 3, ...Buffer.from('one')]),
      Buffer.from([0x07, 3, ...Buffer.from('mod'), 0x01, 0x00]),
    ]);
    const mark = 'm'.repeat(40);
    const proxy: Server = createServer((client) => {
      let upstream: ReturnType<typeof connect> | undefined;
      client.on('data', (chunk: Buffer) => {
        if (!upstream && /REPLCONF|PSYNC/.test(chunk.toString('latin1'))) {
          client.write(chunk.includes('PSYNC') ? Buffer.concat([Buffer.from(`+FULLRESYNC ${'f'.repeat(40)} 0\r\n$EOF:${mark}\r\n`), rdb]) : '+OK\r\n');
          return;
        }
        upstream ??= connect(source.port, source.host).on('data', (reply) => client.write(reply)).on('error', () => client.destroy());
        upstream.write(chunk);
      });
      client.on('error', () => upstream?.destroy());
      client.on('close', () => upstream?.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const fresh = await startRedisServer();
    try {
      const viaProxy = { host: '127.0.0.1', port: (proxy.address() as { port: number }).port };
      const refused = await new RedisDataMover().copy(viaProxy, endpoint(fresh), { strategy: 'rdb' }).catch((caught: unknown) => caught);
      expect((refused as Error).message).toMatch(/holds a module value.*strategy 'scan'/);
      const report = await new RedisDataMover().copy(viaProxy, endpoint(fresh), { bigKeyBytes, replaceExisting: true });
      expect(report).toMatchObject({ strategy: 'scan', items: total });
      expect(report.fallbackReason).toMatch(/module/);
      expect(await client(fresh).exists('fake:a')).toBe(0);
      expect(await digest(fresh)).toBe(await digest(source));
    } finally {
      proxy.close();
      await fresh.stop();
    }
  });

  it('leaves out keys already expired in the snapshot', async () => {
    const [expiring, fresh] = await Promise.all([startRedisServer(), startRedisServer()]);
    try {
      const admin = client(expiring);
      await admin.config('SET', 'repl-diskless-sync-delay', '0');
      // With active expiry off, expired keys stay in memory and in the snapshot until touched.
      await admin.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
      await admin.set('stays', 'yes');
      await admin.set('later', 'yes', 'PX', 600_000);
      for (let index = 0; index < 5; index++) await admin.set(`gone:${index}`, 'no', 'PX', 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const report = await new RedisDataMover().copy(endpoint(expiring), endpoint(fresh), { strategy: 'rdb' });
      expect(report.items).toBe(2);
      expect((await client(fresh).keys('*')).sort()).toEqual(['later', 'stays']);
    } finally {
      await Promise.all([expiring.stop(), fresh.stop()]);
    }
  });

  it('resumes a killed copy: finished databases stay, the others are copied again, identical at the end', async () => {
    const fresh = await startRedisServer();
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-redis-rdb-ckpt-')), 'copy.json');
    try {
      const controller = new AbortController();
      const first = await new RedisDataMover()
        .copy(endpoint(source), endpoint(fresh), { strategy: 'rdb', bigKeyBytes, batchSize: 100, maxInFlightBytes: 4096, checkpointPath, signal: controller.signal, onProgress: () => controller.abort() })
        .catch((caught: unknown) => caught);
      expect(CancelledError.isInstance(first)).toBe(true);
      const saved = JSON.parse(readFileSync(checkpointPath, 'utf8'));
      expect(saved.strategy).toBe('rdb');
      expect(saved.databases['0'].done).toBe(false);
      expect(Number(await client(fresh).dbsize())).toBeGreaterThan(0);
      // A stray key in an unfinished database is cleared by the resumed copy.
      await client(fresh).set('stray', 'left by someone');
      // Resuming with another strategy is refused; auto goes on with rdb.
      const mismatch = await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { strategy: 'scan', checkpointPath }).catch((caught: unknown) => caught);
      expect((mismatch as Error).message).toMatch(/strategy 'rdb'/);
      const resumed = await new RedisDataMover().copy(endpoint(source), endpoint(fresh), { bigKeyBytes, checkpointPath });
      expect(resumed).toMatchObject({ resumed: true, strategy: 'rdb', items: total });
      expect(await digest(fresh)).toBe(await digest(source));
      expect(await new RedisDataMover().verify(endpoint(source), endpoint(fresh))).toMatchObject({ ok: true, compared: total });
      const done = JSON.parse(readFileSync(checkpointPath, 'utf8'));
      expect(Object.values(done.databases).every((state) => (state as { done: boolean }).done)).toBe(true);
    } finally {
      await fresh.stop();
    }
  });
});
