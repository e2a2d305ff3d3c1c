/**
 * A data set with every Redis type in each of its encodings, for the RDB parser and copy tests.
 * `populateEveryEncoding` returns the names of the keys above 64 KiB serialized (the big keys).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Crc64 } from '../src/crc64.js';
import type { RdbRecord } from '../src/rdb.js';

/** Deterministic pseudo-random bytes (incompressible, so LZF leaves them alone). */
export function noise(length: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

/** Writes every type and encoding to database `db` (which should be selected on `client`). */
export async function populateEveryEncoding(client: Redis): Promise<{ bigKeys: string[] }> {
  // Compressed quicklist nodes in the large lists (their nodes are then LZF blobs in the RDB).
  await client.config('SET', 'list-compress-depth', '1');
  // Strings: int-encoded, short, long and compressible (LZF in the RDB), binary.
  await client.set('string:int', '12345');
  await client.set('string:negative', '-70000');
  await client.set('string:short', 'héllo 🙂');
  await client.set('string:lzf', 'abc'.repeat(3000));
  await client.set('string:binary', noise(3000, 7));
  await client.set(Buffer.from([0xff, 0x00, 0x10]), Buffer.from([0x00, 0x01, 0xfe]));
  // Key names: int-encoded and LZF-compressed in the RDB.
  await client.set('987654', 'an int-encoded key name');
  await client.set(`key:${'k'.repeat(300)}`, 'an LZF-compressed key name');
  await client.set('ttl:string', 'expires later', 'PX', 600_000);
  // Lists: one listpack node, and many (compressed) nodes.
  await client.rpush('list:small', 'a', 'b', 'c', '1', '2');
  const long: string[] = [];
  for (let index = 0; index < 1500; index++) long.push(`item ${index} ${'y'.repeat(index % 20)}`);
  await client.rpush('list:large', ...long);
  await client.pexpire('list:large', 600_000);
  // Sets: intset, small (listpack on 7.2, hashtable before), hashtable.
  await client.sadd('set:intset', 1, 2, 3, 1_000_000_000);
  await client.sadd('set:small', 'x', 'y', 'z');
  const members: string[] = [];
  for (let index = 0; index < 600; index++) members.push(`member:${index}`);
  await client.sadd('set:hashtable', ...members);
  // Sorted sets: listpack and skiplist.
  await client.zadd('zset:small', 1, 'one', 2.5, 'two and a half', -3, 'minus three');
  const scored: Array<string | number> = [];
  for (let index = 0; index < 500; index++) scored.push(index / 7, `z${index}`);
  await client.zadd('zset:skiplist', ...scored);
  await client.zadd('zset:inf', '+inf', 'top', '-inf', 'bottom');
  // Hashes: listpack and hashtable.
  await client.hset('hash:small', { name: 'armada', version: '1' });
  const fields: Record<string, string> = {};
  for (let index = 0; index < 700; index++) fields[`field:${index}`] = `value ${index}`;
  await client.hset('hash:hashtable', fields);
  await client.hset('hash:long-value', { long: 'v'.repeat(200) });
  // Streams: several listpack nodes, deleted entries, consumer groups with pending entries.
  for (let index = 1; index <= 400; index++) await client.xadd('stream', `${index}-1`, 'event', `e${index}`, 'n', String(index));
  await client.xdel('stream', '5-1', '6-1');
  await client.xgroup('CREATE', 'stream', 'billing', '0');
  await client.xgroup('CREATE', 'stream', 'audit', '$');
  await client.xreadgroup('GROUP', 'billing', 'alice', 'COUNT', 10, 'STREAMS', 'stream', '>');
  await client.xreadgroup('GROUP', 'billing', 'bob', 'COUNT', 5, 'STREAMS', 'stream', '>');
  await client.xack('stream', 'billing', '1-1', '2-1');
  await client.xadd('stream:empty-group', '1-1', 'a', '1');
  await client.xgroup('CREATE', 'stream:empty-group', 'idle', '$');
  // Big keys: above 64 KiB serialized.
  const big: string[] = [];
  for (let index = 0; index < 5000; index++) big.push(`field:${index}`, `value ${index} ${'x'.repeat(20)}`);
  await client.hset('big:hash', ...big);
  await client.pexpire('big:hash', 600_000);
  await client.set('big:string', randomBytes(200_000));
  // Many small keys.
  const pipeline = client.pipeline();
  for (let index = 0; index < 2000; index++) pipeline.set(`bulk:${index}`, `${index}`);
  await pipeline.exec();
  return { bigKeys: ['big:hash', 'big:string'] };
}

/**
 * The DUMP-style payload of a parsed record, built as restore-writer.ts builds it on its hot path:
 * type byte, value bytes, the RDB version (2 bytes LE) and the CRC-64 of all that (8 bytes LE).
 */
export function payloadOf(record: RdbRecord, rdbVersion: number): Buffer {
  const value = Buffer.concat([Buffer.from([record.type]), ...record.parts, record.valueBuffer.subarray(record.valueStart, record.valueEnd)]);
  const footer = Buffer.alloc(10);
  footer.writeUInt16LE(rdbVersion, 0);
  new Crc64().update(value).update(footer, 0, 2).writeLE(footer, 2);
  return Buffer.concat([value, footer]);
}
