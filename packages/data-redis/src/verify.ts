/** Verify: every key of the source compared with the target, by type, value and TTL. */
import { createHash } from 'node:crypto';
import { CancelledError, type DataEndpoint, type VerifyReport } from '@armada/core';
import type { Redis } from 'ioredis';
import { keyspace, open } from './connection.js';

export interface RedisVerifyOptions {
  sample?: number;
  signal?: AbortSignal;
  databaseMap?: Record<number, number>;
}

export async function verifyRedis(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: RedisVerifyOptions = {}): Promise<VerifyReport> {
  const source = await open(sourceEndpoint, 'source');
  const target = await open(targetEndpoint, 'target');
  try {
    const present = await keyspace(source);
    const targetKeys = await keyspace(target);
    const databases = sourceEndpoint.databases?.map(Number) ?? [...present.keys()];
    let compared = 0;
    for (const db of databases.sort((a, b) => a - b)) {
      const mapped = options.databaseMap?.[db] ?? db;
      if ((present.get(db) ?? 0) !== (targetKeys.get(mapped) ?? 0)) {
        return { ok: false, compared, firstDifference: `db ${db}: ${present.get(db) ?? 0} keys on the source, ${targetKeys.get(mapped) ?? 0} on the target (db ${mapped})` };
      }
      await source.select(db);
      await target.select(mapped);
      const keys: Buffer[] = [];
      if (options.sample !== undefined) {
        for (let index = 0; index < options.sample; index++) {
          const key = await source.randomkeyBuffer();
          if (key) keys.push(key);
        }
      }
      let cursor = '0';
      do {
        if (options.sample === undefined) {
          const [next, batch] = await source.scanBuffer(cursor, 'COUNT', 1000);
          cursor = String(next);
          keys.push(...batch);
        } else cursor = '0';
        const batch = keys.splice(0);
        if (options.signal?.aborted) throw new CancelledError('Redis verify cancelled.');
        // Strings, the common case, are read in one pipeline per side; other types key by key.
        const [sourceQuick, targetQuick] = await Promise.all([quickDigests(source, batch), quickDigests(target, batch)]);
        for (const [index, key] of batch.entries()) {
          const [sourceDigest, targetDigest] =
            sourceQuick[index] && targetQuick[index] ? [sourceQuick[index], targetQuick[index]] : await Promise.all([digestOf(source, key), digestOf(target, key)]);
          if (sourceDigest.type === 'none') continue; // expired meanwhile
          compared++;
          const name = `db ${db} key ${JSON.stringify(key.toString())}`;
          if (sourceDigest.type !== targetDigest.type) return { ok: false, compared, firstDifference: `${name}: ${sourceDigest.type} on the source, ${targetDigest.type} on the target` };
          if (sourceDigest.value !== targetDigest.value) return { ok: false, compared, firstDifference: `${name}: values differ` };
          // TTLs tick on both sides: allow what two reads a few milliseconds apart can see.
          if ((sourceDigest.ttl < 0) !== (targetDigest.ttl < 0) || Math.abs(sourceDigest.ttl - targetDigest.ttl) > 2000) {
            return { ok: false, compared, firstDifference: `${name}: TTL ${sourceDigest.ttl} ms on the source, ${targetDigest.ttl} ms on the target` };
          }
        }
      } while (cursor !== '0');
    }
    return { ok: true, compared };
  } finally {
    source.disconnect();
    target.disconnect();
  }
}

/** TYPE, PTTL and (for strings) the value of a batch of keys in one pipeline; undefined for other types. */
async function quickDigests(client: Redis, keys: Buffer[]): Promise<Array<{ type: string; value: string; ttl: number } | undefined>> {
  if (keys.length === 0) return [];
  const pipeline = client.pipeline();
  for (const key of keys) {
    pipeline.type(key);
    pipeline.pttl(key);
    pipeline.getBuffer(key);
  }
  const replies = (await pipeline.exec()) ?? [];
  return keys.map((_, index) => {
    const type = replies[index * 3]?.[1] as string | undefined;
    if (type !== 'string' && type !== 'none') return undefined;
    const value = replies[index * 3 + 2]?.[1] as Buffer | null | undefined;
    return { type, ttl: Number(replies[index * 3 + 1]?.[1] ?? -2), value: createHash('sha256').update(value ?? Buffer.alloc(0)).digest('hex') };
  });
}

/**
 * A value's digest, read in pieces so memory stays bounded: ordered types are hashed in order,
 * unordered ones (hash, set, sorted set) as the XOR of their elements' hashes, since SCAN order
 * differs between two servers holding the same data.
 */
async function digestOf(client: Redis, key: Buffer): Promise<{ type: string; value: string; ttl: number }> {
  const [type, ttl] = await Promise.all([client.type(key), client.pttl(key)]);
  const ordered = createHash('sha256');
  const unordered = Buffer.alloc(32);
  const mix = (...parts: Buffer[]) => {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part).update('\u0000');
    const digest = hash.digest();
    for (let index = 0; index < 32; index++) unordered[index] = (unordered[index] as number) ^ (digest[index] as number);
  };
  if (type === 'string') ordered.update(await client.getBuffer(key) ?? Buffer.alloc(0));
  else if (type === 'list') {
    const length = await client.llen(key);
    for (let start = 0; start < length; start += 1000) for (const item of await client.lrangeBuffer(key, start, start + 999)) ordered.update(item).update('\u0000');
  } else if (type === 'stream') {
    let start = '-';
    for (;;) {
      const entries = (await client.xrangeBuffer(key, start, '+', 'COUNT', 1000)) as Array<[Buffer, Buffer[]]>;
      for (const [id, fields] of entries) for (const part of [id, ...fields]) ordered.update(part).update('\u0000');
      if (entries.length < 1000) break;
      start = `(${(entries.at(-1) as [Buffer, Buffer[]])[0].toString()}`;
    }
  } else if (type === 'hash' || type === 'set' || type === 'zset') {
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, items] =
        type === 'hash' ? await client.hscanBuffer(key, cursor, 'COUNT', 1000) : type === 'set' ? await client.sscanBuffer(key, cursor, 'COUNT', 1000) : await client.zscanBuffer(key, cursor, 'COUNT', 1000);
      cursor = String(next);
      const step = type === 'set' ? 1 : 2;
      for (let index = 0; index < items.length; index += step) {
        const element = items[index] as Buffer;
        // *SCAN may return an element twice: count each once.
        const id = element.toString('base64');
        if (seen.has(id)) continue;
        seen.add(id);
        mix(element, ...(step === 2 ? [items[index + 1] as Buffer] : []));
      }
    } while (cursor !== '0');
  }
  return { type, ttl, value: type === 'hash' || type === 'set' || type === 'zset' ? unordered.toString('hex') : ordered.digest('hex') };
}

