/**
 * The CRC-64 and the streaming RDB parser against a real server: checksums of real DUMP payloads,
 * and for every key of a real RDB file (every type and encoding) fed in small uneven chunks, the
 * RESTORE payload built from the parsed bytes is byte for byte what DUMP returns.
 */
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Crc64, crc64 } from '../src/crc64.js';
import { RdbParser, RdbUnsupportedError, lzfDecompress, type RdbRecord } from '../src/rdb.js';
import { noise, payloadOf, populateEveryEncoding } from './fixtures.js';

let server: RedisServer;
let client: Redis;
let rdb: Buffer;

/** Parses `file` in chunks of the given sizes (cycled); returns each key's DUMP-style payload. */
function parse(file: Buffer, sizes: number[], maxValueBytes?: number) {
  const payloads = new Map<string, Buffer>();
  const big: string[] = [];
  const parser = new RdbParser(
    {
      wants: () => true,
      onKey(record: RdbRecord) {
        const payload = payloadOf(record, parser.version);
        expect(payload.length).toBe(record.length + 1 + 10);
        payloads.set(record.keyBuffer.subarray(record.keyStart, record.keyEnd).toString('latin1'), payload);
      },
      onBigKey(_db, key) {
        big.push(key.toString('latin1'));
      },
    },
    maxValueBytes,
  );
  let offset = 0;
  for (let step = 0; offset < file.length; step++) {
    const size = sizes[step % sizes.length] as number;
    parser.push(file.subarray(offset, offset + size));
    offset += size;
  }
  expect(parser.done).toBe(true);
  return { payloads, big, parser };
}

describe('CRC-64 and the RDB stream parser', () => {
  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis({ host: server.host, port: server.port });
    await populateEveryEncoding(client);
    await client.select(2);
    await client.set('in:db2', 'two');
    await client.select(0);
    await client.save();
    const [, dir] = (await client.config('GET', 'dir')) as [string, string];
    const [, name] = (await client.config('GET', 'dbfilename')) as [string, string];
    rdb = await readFile(join(dir, name));
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  it('computes Redis CRC-64 (Jones): the check value, and the checksum of real DUMP payloads', async () => {
    expect(crc64(Buffer.from('123456789'))).toBe(0xe9c6d914c4b8d9can);
    for (const key of ['string:int', 'string:lzf', 'string:binary', 'list:large', 'set:hashtable', 'zset:skiplist', 'hash:hashtable', 'stream', 'big:hash']) {
      const payload = (await client.dumpBuffer(key)) as Buffer;
      const body = payload.subarray(0, payload.length - 8);
      expect(crc64(body), key).toBe(payload.readBigUInt64LE(payload.length - 8));
      // In pieces of every alignment, the same.
      const pieces = new Crc64();
      for (let offset = 0; offset < body.length; offset += 13) pieces.update(body, offset, Math.min(body.length, offset + 13));
      expect(pieces.toBigInt()).toBe(crc64(body));
    }
  });

  it('rebuilds, for every key, exactly the DUMP payload, however the stream is cut', async () => {
    const keys = (await client.keysBuffer('*')).map((key) => key.toString('latin1'));
    for (const sizes of [[rdb.length], [1], [7, 1, 3, 64, 2, 1000, 5], [65_536]]) {
      const { payloads, big, parser } = parse(rdb, sizes);
      expect(parser.version).toBe(Number(rdb.toString('latin1', 5, 9)));
      expect(parser.checksumOk).toBe(true);
      expect(big).toEqual([]);
      expect([...payloads.keys()].filter((key) => key !== 'in:db2').sort()).toEqual([...keys].sort());
      for (const key of keys) expect(payloads.get(key)?.equals((await client.dumpBuffer(Buffer.from(key, 'latin1'))) as Buffer), key).toBe(true);
    }
  });

  it('decodes int-encoded and LZF-compressed key names', () => {
    const { payloads } = parse(rdb, [3, 5]);
    expect(payloads.has('987654')).toBe(true);
    expect(payloads.has(`key:${'k'.repeat(300)}`)).toBe(true);
    expect(payloads.has(Buffer.from([0xff, 0x00, 0x10]).toString('latin1'))).toBe(true);
  });

  it('skips values above the bound without keeping them, and reports their keys', () => {
    const { payloads, big } = parse(rdb, [4096], 64 * 1024);
    expect(big.sort()).toEqual(['big:hash', 'big:string']);
    expect(payloads.has('big:hash')).toBe(false);
    expect(payloads.has('stream')).toBe(true);
  });

  it('refuses module values and unknown types clearly', () => {
    const header = Buffer.from('REDIS0010', 'latin1');
    for (const type of [6, 7, 99]) {
      const parser = new RdbParser({ wants: () => true, onKey: () => undefined, onBigKey: () => undefined });
      expect(() => parser.push(Buffer.concat([header, Buffer.from([0xfe, 0x00, type, 0x01, 0x6b, 0x00])]))).toThrow(RdbUnsupportedError);
    }
    expect(() => new RdbParser({ wants: () => true, onKey: () => undefined, onBigKey: () => undefined }).push(Buffer.from('HELLO0010'))).toThrow(/Not an RDB/);
  });

  it('decompresses LZF as Redis compresses it', async () => {
    const text = Buffer.from(`${'abcabcabc'.repeat(50)}${noise(40).toString('hex')}${'z'.repeat(300)}`);
    await client.set('lzf:probe', text);
    const payload = (await client.dumpBuffer('lzf:probe')) as Buffer;
    // type 0, then 0xC3 (LZF), compressed length, length, bytes.
    expect(payload[1]).toBe(0xc3);
    let at = 2;
    const readLength = () => {
      const first = payload[at] as number;
      if (first >> 6 === 0) {
        at++;
        return first & 0x3f;
      }
      const value = ((first & 0x3f) << 8) | (payload[at + 1] as number);
      at += 2;
      return value;
    };
    const compressed = readLength();
    const length = readLength();
    expect(lzfDecompress(payload.subarray(at, at + compressed), length).equals(text)).toBe(true);
  });
});
