/**
 * The Redis data mover, on ioredis. Copy: per database, SCAN the source in batches, read each
 * key's PTTL and DUMP in one pipeline, RESTORE them with their TTL in another. A key larger than
 * `bigKeyBytes` is copied in pieces with its type's own commands (so memory stays bounded however
 * large a key is), then given its TTL. A key that expires during the copy is skipped.
 *
 * Safety: the source is only read; a target database that holds data is refused unless the caller
 * says to replace it; a wrong address or password fails before anything is written. A checkpoint
 * (SCAN cursors and counts, no secrets) lets a killed copy resume where it stopped.
 */
import { createHash } from 'node:crypto';
import { readFile, } from 'node:fs/promises';
import {
  ArmadaError,
  CancelledError,
  ValidationError,
  serialJsonWriter,
  type CopyOptions,
  type CopyReport,
  type DataEndpoint,
  type DataMoverV1,
  type DataReplication,
  type ReplicateOptions,
  type VerifyReport,
} from '@armada/core';
import { Redis } from 'ioredis';
import { replicateRedis } from './replication.js';

export const REDIS_DATA_MOVER_ID = 'redis';

export interface RedisCopyOptions extends CopyOptions {
  /** Keys per SCAN batch (default 1000). */
  batchSize?: number;
  /** Keys whose memory usage is above this are copied in pieces (default 8 MiB). */
  bigKeyBytes?: number;
  /** Source database -> target database (default: the same index). */
  databaseMap?: Record<number, number>;
}

interface Checkpoint {
  version: 1;
  source: string;
  target: string;
  databases: Record<string, { cursor: string; done: boolean; keys: number; bytes: number }>;
}

const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}`;

async function open(endpoint: DataEndpoint, role: 'source' | 'target'): Promise<Redis> {
  const client = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    ...(endpoint.password ? { password: endpoint.password } : {}),
    ...(endpoint.user ? { username: endpoint.user } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // The real cause (WRONGPASS, ECONNREFUSED) comes on the error event; connect() may only say "closed".
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    client.disconnect();
    const message = (cause ?? (error as Error)).message;
    const auth = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(message);
    throw new ValidationError(`Cannot reach the ${role} Redis at ${where(endpoint)}: ${auth ? 'authentication failed' : message}.`, {
      issues: [{ path: role, message: auth ? 'the password (or user) was refused' : message, fix: auth ? 'check the password of the endpoint' : 'check host and port, and that the server is running' }],
    });
  }
}

/** Databases that hold keys, from INFO keyspace (`db3:keys=10,...`), with their key counts. */
async function keyspace(client: Redis): Promise<Map<number, number>> {
  const info = await client.info('keyspace');
  return new Map([...info.matchAll(/^db(\d+):keys=(\d+)/gm)].map((match) => [Number(match[1]), Number(match[2])]));
}

async function readCheckpoint(path: string | undefined): Promise<Checkpoint | undefined> {
  if (!path) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Checkpoint;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}


/** Copies one key with its type's commands, piece by piece: for keys too large to DUMP at once. */
async function copyInPieces(source: Redis, target: Redis, key: Buffer, ttl: number): Promise<number> {
  const type = await source.type(key);
  const pieces = 1000;
  let bytes = 0;
  await target.del(key);
  if (type === 'string') {
    const length = await source.strlen(key);
    for (let offset = 0; offset < length; offset += 1 << 20) {
      const chunk = await source.getrangeBuffer(key, offset, Math.min(length, offset + (1 << 20)) - 1);
      await target.setrange(key, offset, chunk);
      bytes += chunk.length;
    }
  } else if (type === 'hash' || type === 'set' || type === 'zset') {
    let cursor = '0';
    do {
      const [next, items] =
        type === 'hash' ? await source.hscanBuffer(key, cursor, 'COUNT', pieces) : type === 'set' ? await source.sscanBuffer(key, cursor, 'COUNT', pieces) : await source.zscanBuffer(key, cursor, 'COUNT', pieces);
      cursor = String(next);
      if (items.length === 0) continue;
      bytes += items.reduce((sum, item) => sum + item.length, 0);
      if (type === 'hash') await target.hset(key, ...items);
      else if (type === 'set') await target.sadd(key, ...items);
      else {
        // ZSCAN gives member, score pairs; ZADD takes score, member.
        const pairs: Buffer[] = [];
        for (let index = 0; index < items.length; index += 2) pairs.push(items[index + 1] as Buffer, items[index] as Buffer);
        await target.zadd(key, ...(pairs as unknown as [number, Buffer]));
      }
    } while (cursor !== '0');
  } else if (type === 'list') {
    const length = await source.llen(key);
    for (let start = 0; start < length; start += pieces) {
      const items = await source.lrangeBuffer(key, start, start + pieces - 1);
      bytes += items.reduce((sum, item) => sum + item.length, 0);
      if (items.length > 0) await target.rpush(key, ...items);
    }
  } else if (type === 'stream') {
    let start = '-';
    for (;;) {
      const entries = (await source.xrangeBuffer(key, start, '+', 'COUNT', pieces)) as Array<[Buffer, Buffer[]]>;
      for (const [id, fields] of entries) {
        await target.xadd(key, id, ...fields);
        bytes += fields.reduce((sum, field) => sum + field.length, 0);
      }
      if (entries.length < pieces) break;
      start = `(${(entries.at(-1) as [Buffer, Buffer[]])[0].toString()}`;
    }
  } else if (type === 'none') {
    return 0; // expired or deleted meanwhile
  } else {
    throw new ArmadaError('Unsupported', `Key ${key.toString()} has type ${type}, which the piecewise copy does not handle.`);
  }
  if (ttl > 0) await target.pexpire(key, ttl);
  return bytes;
}

export class RedisDataMover implements DataMoverV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id = REDIS_DATA_MOVER_ID;
  /** REPLICAOF makes its own full sync: no copy comes first (see replication.ts). */
  readonly replicationStartsFrom = 'empty' as const;

  replicate(source: DataEndpoint, target: DataEndpoint, options?: ReplicateOptions): Promise<DataReplication> {
    return replicateRedis(source, target, options);
  }

  async copy(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: RedisCopyOptions = {}): Promise<CopyReport> {
    const started = performance.now();
    const batchSize = options.batchSize ?? 1000;
    const bigKeyBytes = options.bigKeyBytes ?? 8 * 1024 * 1024;
    const source = await open(sourceEndpoint, 'source');
    let target: Redis | undefined;
    try {
      target = await open(targetEndpoint, 'target');
      const present = await keyspace(source);
      const databases = (sourceEndpoint.databases?.map(Number) ?? [...present.keys()]).sort((a, b) => a - b);
      const mapped = (db: number) => options.databaseMap?.[db] ?? db;
      const previous = await readCheckpoint(options.checkpointPath);
      const resumed = previous !== undefined && previous.source === where(sourceEndpoint) && previous.target === where(targetEndpoint);
      const checkpoint: Checkpoint = resumed ? previous : { version: 1, source: where(sourceEndpoint), target: where(targetEndpoint), databases: {} };
      const saveCheckpoint = serialJsonWriter(options.checkpointPath);

      // Refuse a target that holds data before writing anything (a resumed copy's own data aside).
      const targetKeys = await keyspace(target);
      const occupied = databases.filter((db) => (targetKeys.get(mapped(db)) ?? 0) > 0 && !checkpoint.databases[db]);
      if (occupied.length > 0 && !options.replaceExisting) {
        throw new ValidationError(`The target Redis at ${where(targetEndpoint)} already holds data.`, {
          issues: occupied.map((db) => ({ path: `target.db${mapped(db)}`, message: `database ${mapped(db)} holds ${targetKeys.get(mapped(db))} keys`, fix: 'empty it, choose another database, or pass replaceExisting: true' })),
        });
      }
      const totalKeys = databases.reduce((sum, db) => sum + (present.get(db) ?? 0), 0);
      let items = Object.values(checkpoint.databases).reduce((sum, entry) => sum + entry.keys, 0);
      let bytes = Object.values(checkpoint.databases).reduce((sum, entry) => sum + entry.bytes, 0);
      for (const db of databases) {
        const state = (checkpoint.databases[db] ??= { cursor: '0', done: false, keys: 0, bytes: 0 });
        if (state.done) continue;
        await source.select(db);
        await target.select(mapped(db));
        if (occupied.includes(db) && options.replaceExisting && state.cursor === '0') await target.flushdb();
        let cursor = state.cursor;
        do {
          if (options.signal?.aborted) throw new CancelledError(`Redis copy cancelled at db ${db}, cursor ${cursor}; resume with the same checkpoint.`);
          const [next, keys] = await source.scanBuffer(cursor, 'COUNT', batchSize);
          const read = source.pipeline();
          for (const key of keys) {
            read.pttl(key);
            read.call('MEMORY', 'USAGE', key, 'SAMPLES', '5');
          }
          const meta = (await read.exec()) ?? [];
          const small: Array<{ key: Buffer; ttl: number }> = [];
          for (const [index, key] of keys.entries()) {
            const ttl = Number(meta[index * 2]?.[1] ?? -2);
            const size = Number(meta[index * 2 + 1]?.[1] ?? 0);
            if (ttl === -2) continue; // expired since SCAN saw it
            if (size > bigKeyBytes) {
              bytes += await copyInPieces(source, target, key, ttl);
              items++;
              state.keys++;
            } else small.push({ key, ttl: Math.max(ttl, 0) });
          }
          const dumps = source.pipeline();
          for (const { key } of small) dumps.dumpBuffer(key);
          const payloads = small.length > 0 ? ((await dumps.exec()) ?? []) : [];
          const write = target.pipeline();
          let writes = 0;
          small.forEach(({ key, ttl }, index) => {
            const payload = payloads[index]?.[1] as Buffer | null | undefined;
            if (!payload) return; // expired between PTTL and DUMP
            // REPLACE: the target was checked empty, so an existing key is one this copy wrote (SCAN may repeat keys).
            write.restore(key, ttl, payload, 'REPLACE');
            writes++;
            bytes += payload.length;
          });
          if (writes > 0) {
            const results = (await write.exec()) ?? [];
            const failed = results.find(([error]) => error);
            if (failed?.[0]) throw new ArmadaError('Unknown', `RESTORE failed on the target: ${failed[0].message}`, { cause: failed[0] });
          }
          items += writes;
          state.keys += writes;
          state.bytes = bytes;
          cursor = String(next);
          state.cursor = cursor;
          await saveCheckpoint(checkpoint);
          const seconds = (performance.now() - started) / 1000;
          options.onProgress?.({
            phase: `db ${db}`,
            items,
            bytes,
            totalItems: totalKeys,
            bytesPerSecond: seconds > 0 ? bytes / seconds : 0,
            ...(items > 0 && totalKeys > items ? { etaSeconds: ((totalKeys - items) * seconds) / items } : {}),
          });
        } while (cursor !== '0');
        state.done = true;
        await saveCheckpoint(checkpoint);
      }
      return { items, bytes, durationMs: performance.now() - started, resumed };
    } finally {
      source.disconnect();
      target?.disconnect();
    }
  }

  async verify(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: { sample?: number; signal?: AbortSignal; databaseMap?: Record<number, number> } = {}): Promise<VerifyReport> {
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
