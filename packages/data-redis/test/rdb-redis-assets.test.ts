/**
 * The streaming RDB parser against Redis's own RDB test files (`fixtures/redis-assets/`, from
 * `tests/assets/` of redis/redis): old and current encodings (zipmap, ziplist, intset, quicklist,
 * listpack...) written by the Redis servers of their time, not by the 7.0 server these tests run.
 *
 * For each file:
 * 1. the parser reads it to `done` whole, byte by byte and in uneven chunks, with the same keys
 *    and the same value bytes each way (the file's own CRC-64 checked where it has one);
 * 2. independently of the parser, a real redis-server loads the file (started with `--dir` and
 *    `--dbfilename` pointing at a copy of it). Every parsed key becomes a DUMP-style payload
 *    (type byte, value bytes, the file's RDB version, CRC-64: as restore-writer builds it), RESTOREd
 *    on a second, empty server (with ABSTTL and the file's expire-at when the record has one). The
 *    two servers must then hold the same keys with the same DEBUG DIGEST-VALUE, type and expiry,
 *    and the same DEBUG DIGEST overall.
 *
 *    RESTORE of an old encoding (a zipmap, a ziplist, a quicklist of ziplists...) is converted by
 *    the server to a current one, exactly as loading the file is: the bytes a DUMP would give now
 *    are not the bytes of the file, so what must match is the digests (computed over the values,
 *    whatever their encoding), never the payload bytes;
 * 3. the number of parsed keys of each database equals the loading server's DBSIZE there.
 */
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payloadOf } from './fixtures.js';
import { RdbParser, type RdbRecord } from '../src/rdb.js';

const ASSETS = fileURLToPath(new URL('./fixtures/redis-assets/', import.meta.url));
const DATABASES = 16; // testkit starts servers with --databases 16

interface Parsed {
  db: number;
  key: Buffer;
  expireAt: number;
  type: number;
  /** The DUMP-style payload: type byte, value bytes, RDB version (2 bytes LE), CRC-64 (8 bytes LE). */
  payload: Buffer;
}

/** Parses `file` in chunks of the given sizes (cycled); returns every key, in file order. */
function parse(file: Buffer, sizes: number[]) {
  const keys: Parsed[] = [];
  const big: string[] = [];
  const parser = new RdbParser({
    wants: () => true,
    onKey(record: RdbRecord) {
      const payload = payloadOf(record, parser.version);
      expect(payload.length).toBe(record.length + 1 + 10);
      keys.push({
        db: record.db,
        key: Buffer.from(record.keyBuffer.subarray(record.keyStart, record.keyEnd)),
        expireAt: record.expireAt,
        type: record.type,
        payload,
      });
    },
    onBigKey(_db, key) {
      big.push(key.toString('latin1'));
    },
  });
  let offset = 0;
  for (let step = 0; offset < file.length; step++) {
    const size = sizes[step % sizes.length] as number;
    parser.push(file.subarray(offset, offset + size));
    offset += size;
  }
  return { keys, big, parser };
}

const id = (db: number, key: Buffer) => `${db}:${key.toString('hex')}`;

/** Per database with keys: every key (hex) with its type, DEBUG DIGEST-VALUE and PEXPIRETIME. */
async function snapshot(client: Redis) {
  const perDb = new Map<number, Map<string, { type: string; digest: string; expireAt: number }>>();
  const sizes = new Map<number, number>();
  for (let db = 0; db < DATABASES; db++) {
    await client.select(db);
    const size = await client.dbsize();
    if (size === 0) continue;
    sizes.set(db, size);
    const keys = new Map<string, { type: string; digest: string; expireAt: number }>();
    for (const key of await client.keysBuffer('*')) {
      const [digest] = (await client.call('DEBUG', 'DIGEST-VALUE', key)) as [string];
      keys.set(key.toString('hex'), {
        type: await client.type(key),
        digest,
        expireAt: Number(await client.call('PEXPIRETIME', key)),
      });
    }
    perDb.set(db, keys);
  }
  await client.select(0);
  return { perDb, sizes, digest: String(await client.call('DEBUG', 'DIGEST')) };
}

// Chunkings: whole, byte by byte, uneven sizes (including 8, 9 and 10, across headers and the
// checksum), and chunks of two and three bytes.
const CHUNKINGS = [[Number.MAX_SAFE_INTEGER], [1], [7, 1, 3, 64, 2, 1000, 5], [9, 8, 10, 1], [2, 3]];

const FILES: Array<{ file: string; version: number; note: string }> = [
  { file: 'encodings.rdb', version: 4, note: 'RDB 4 (2012): zipmap hash, ziplist list/zset, intset sets, LZF strings, int-encoded values' },
  { file: 'hash-ziplist.rdb', version: 9, note: 'RDB 9: a hash as a ziplist' },
  { file: 'hash-zipmap.rdb', version: 3, note: 'RDB 3 (no checksum): a hash as a zipmap' },
  { file: 'list-quicklist.rdb', version: 8, note: 'RDB 8 (Redis 4.0): a quicklist of ziplists, and a string' },
  { file: 'zset-ziplist.rdb', version: 10, note: 'RDB 10: a sorted set as a ziplist' },
  {
    file: 'scriptbackup.rdb',
    version: 10,
    // Its only content besides aux metadata is a "lua" aux field (the script backup older
    // servers wrote). The parser skips aux fields like any other metadata: it does not refuse the
    // file, and finds no key. Redis 7 does the same: it no longer loads scripts from an RDB.
    note: 'RDB 10: a Lua script in a "lua" aux field, no keys',
  },
];

for (const { file, version, note } of FILES) {
  describe(`Redis's ${file} (${note})`, () => {
    let rdb: Buffer;
    let directory: string;
    let loaded: RedisServer;
    let target: RedisServer;
    let loadedClient: Redis;
    let targetClient: Redis;
    let parsed: Parsed[];

    beforeAll(async () => {
      rdb = await readFile(join(ASSETS, file));
      parsed = parse(rdb, [rdb.length]).keys;
      directory = await mkdtemp(join(tmpdir(), 'armada-rdb-asset-'));
      await copyFile(join(ASSETS, file), join(directory, file));
      // testkit passes its own --dir first; a later --dir overrides it (checked below).
      loaded = await startRedisServer({ extraArguments: ['--dir', directory, '--dbfilename', file] });
      target = await startRedisServer();
      loadedClient = new Redis({ host: loaded.host, port: loaded.port });
      targetClient = new Redis({ host: target.host, port: target.port });
    }, 60_000);
    afterAll(async () => {
      loadedClient?.disconnect();
      targetClient?.disconnect();
      await loaded?.stop();
      await target?.stop();
      if (directory) await rm(directory, { recursive: true, force: true });
    });

    it('is read to the end whole, byte by byte and in uneven chunks, with the same keys and bytes each way', () => {
      let first: Parsed[] | undefined;
      for (const sizes of CHUNKINGS) {
        const { keys, big, parser } = parse(rdb, sizes);
        expect(parser.done, `chunks ${sizes}`).toBe(true);
        expect(parser.version).toBe(version);
        // Files from RDB 5 on end with a CRC-64, which the parser checks; older ones have none.
        expect(parser.checksumOk).toBe(version >= 5 ? true : undefined);
        expect(parser.trailing.length).toBe(0);
        expect(big).toEqual([]);
        if (!first) first = keys;
        else {
          expect(keys.map((entry) => id(entry.db, entry.key)), `chunks ${sizes}`).toEqual(first.map((entry) => id(entry.db, entry.key)));
          keys.forEach((entry, index) => {
            const other = first?.[index] as Parsed;
            expect(entry.payload.equals(other.payload), `${entry.key.toString('latin1')} in chunks ${sizes}`).toBe(true);
            expect([entry.expireAt, entry.type]).toEqual([other.expireAt, other.type]);
          });
        }
      }
      // No key twice.
      expect(new Set(parsed.map((entry) => id(entry.db, entry.key))).size).toBe(parsed.length);
    });

    it('has, per database, the keys (and as many) as a redis-server that loaded the file', async () => {
      // The server really loaded this file: its dir and dbfilename are the copy's (a later --dir
      // overrides testkit's), and Redis loads an existing dbfilename at startup or refuses to start.
      expect(await loadedClient.config('GET', 'dir')).toEqual(['dir', directory]);
      expect(await loadedClient.config('GET', 'dbfilename')).toEqual(['dbfilename', file]);
      const source = await snapshot(loadedClient);
      const info = await loadedClient.info('persistence');
      const total = [...source.sizes.values()].reduce((sum, size) => sum + size, 0);
      expect(info).toMatch(new RegExp(`rdb_last_load_keys_loaded:${total}\\r?\\n`));
      // Keys per database: the parser's count is the server's DBSIZE, and the names agree.
      const parsedPerDb = new Map<number, string[]>();
      for (const entry of parsed) parsedPerDb.set(entry.db, [...(parsedPerDb.get(entry.db) ?? []), entry.key.toString('hex')]);
      expect([...parsedPerDb.entries()].map(([db, keys]) => [db, keys.length]).sort()).toEqual([...source.sizes.entries()].sort());
      for (const [db, keys] of parsedPerDb) expect(keys.sort(), `db ${db}`).toEqual([...(source.perDb.get(db)?.keys() ?? [])].sort());
      // The file's expiries are the server's (-1: none).
      for (const entry of parsed) {
        expect(source.perDb.get(entry.db)?.get(entry.key.toString('hex'))?.expireAt, entry.key.toString('latin1')).toBe(entry.expireAt > 0 ? entry.expireAt : -1);
      }
      if (file === 'scriptbackup.rdb') {
        // Neither the parser nor Redis 7 takes anything from the "lua" aux field.
        expect(parsed).toEqual([]);
        const sha = createHash('sha1').update("return redis.call('set', 'foo', 'bar')").digest('hex');
        expect(rdb.includes("return redis.call('set', 'foo', 'bar')")).toBe(true);
        expect(await loadedClient.call('SCRIPT', 'EXISTS', sha)).toEqual([0]);
      } else expect(parsed.length).toBeGreaterThan(0);
    });

    it('RESTOREd from the parsed bytes on an empty server, gives the same keys, digests and expiries', async () => {
      for (const entry of parsed) {
        await targetClient.select(entry.db);
        // As restore-writer does: the absolute expire-at with ABSTTL, 0 for none.
        const restore = entry.expireAt > 0 ? [String(entry.expireAt), entry.payload, 'ABSTTL'] : ['0', entry.payload];
        expect(await targetClient.call('RESTORE', entry.key, ...restore), entry.key.toString('latin1')).toBe('OK');
      }
      await targetClient.select(0);
      const source = await snapshot(loadedClient);
      const copy = await snapshot(targetClient);
      expect([...copy.sizes.entries()].sort()).toEqual([...source.sizes.entries()].sort());
      for (const [db, keys] of source.perDb) {
        const copied = copy.perDb.get(db);
        expect([...(copied?.keys() ?? [])].sort(), `db ${db}`).toEqual([...keys.keys()].sort());
        for (const [key, value] of keys) {
          const name = Buffer.from(key, 'hex').toString('latin1');
          // DEBUG DIGEST-VALUE of a missing key is all zeros: a real value's is not.
          expect(value.digest, name).not.toMatch(/^0+$/);
          expect(copied?.get(key), name).toEqual(value);
        }
      }
      expect(copy.digest).toBe(source.digest);
    });
  });
}
