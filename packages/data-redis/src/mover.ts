/**
 * The Redis data mover. Two ways to copy:
 *
 * - `rdb` (RedisShake's way): connect to the source as a replica would (PSYNC), take its RDB
 *   snapshot as a stream, parse it chunk by chunk, and RESTORE each key on the target from the
 *   value bytes in the snapshot (plus the version and CRC-64 that make them a DUMP payload), in
 *   one long pipeline over a plain socket with a bound on the bytes in flight. A key whose
 *   serialized value is larger than `bigKeyBytes` is skipped in the stream and copied afterwards
 *   from the live source in pieces.
 * - `scan`: per database, SCAN the source in batches, read each key's PTTL and DUMP in one
 *   pipeline, RESTORE them with their TTL in another. Big keys are copied in pieces.
 *
 * `auto` (the default) takes `rdb`, and falls back to `scan` when the source will not serve a
 * snapshot (no permission for PSYNC, a managed Redis that refuses it) or the snapshot holds what
 * the stream parser cannot copy (module types).
 *
 * Safety: the source is only read; a target database that holds data is refused unless the caller
 * says to replace it; a wrong address or password fails before anything is written. A checkpoint
 * (no secrets) lets a killed copy resume: `scan` from its SCAN cursors, `rdb` by skipping the
 * databases it finished and copying the others again from a new snapshot.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  ArmadaError,
  CancelledError,
  ValidationError,
  serialJsonWriter,
  throttleFor,
  type CopyOptions,
  type CopyReport,
  type DataEndpoint,
  type DataMoverV1,
  type DataReplication,
  type Throttle,
  type ReplicateOptions,
  type VerifyReport,
} from '@armada/core';
import { Redis } from 'ioredis';
import { PsyncRefusedError, RdbSnapshot } from './psync.js';
import { RdbParser, RdbUnsupportedError } from './rdb.js';
import { replicateRedis } from './replication.js';
import { RestoreWriter } from './restore-writer.js';

export const REDIS_DATA_MOVER_ID = 'redis';

/** `rdb`: from a PSYNC snapshot; `scan`: SCAN + DUMP/RESTORE; `auto`: `rdb`, else `scan`. */
export type RedisCopyStrategy = 'auto' | 'rdb' | 'scan';

export interface RedisCopyOptions extends CopyOptions {
  /** How to copy (default `auto`: the RDB snapshot when the source serves one, else SCAN). */
  strategy?: RedisCopyStrategy;
  /** Keys per SCAN batch, and (rdb) keys between two progress events (default 1000). */
  batchSize?: number;
  /**
   * Keys larger than this are copied in pieces from the live source (default 8 MiB). `scan`
   * measures MEMORY USAGE, `rdb` the serialized size in the snapshot.
   */
  bigKeyBytes?: number;
  /** Source database -> target database (default: the same index). */
  databaseMap?: Record<number, number>;
  /** rdb: at most this many bytes of RESTOREs written and not yet answered (default 32 MiB). */
  maxInFlightBytes?: number;
}

export interface RedisCopyReport extends CopyReport {
  /** The strategy that did the copy. */
  strategy: 'rdb' | 'scan';
  /** Why `auto` fell back to `scan`, when it did. */
  fallbackReason?: string;
  /** Keys copied in pieces (larger than `bigKeyBytes`). */
  bigKeys: number;
}

interface Checkpoint {
  version: 1;
  /** Absent in checkpoints written before the rdb strategy: those are scan checkpoints. */
  strategy?: 'rdb' | 'scan';
  source: string;
  target: string;
  databases: Record<string, { cursor: string; done: boolean; keys: number; bytes: number }>;
}

/** What one copy run works with, whichever the strategy. */
interface Run {
  source: Redis;
  target: Redis;
  sourceEndpoint: DataEndpoint;
  targetEndpoint: DataEndpoint;
  options: RedisCopyOptions;
  databases: number[];
  mapped: (db: number) => number;
  occupied: number[];
  checkpoint: Checkpoint;
  saveCheckpoint: (value: unknown) => Promise<void>;
  totalKeys: number;
  started: number;
  items: number;
  bytes: number;
  bigKeys: number;
  /** `maxBytesPerSecond`, shared by both strategies and the big keys. */
  throttle: Throttle | undefined;
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

function progress(run: Run, phase: string): void {
  const seconds = (performance.now() - run.started) / 1000;
  const { items, bytes, totalKeys } = run;
  run.options.onProgress?.({
    phase,
    items,
    bytes,
    totalItems: totalKeys,
    bytesPerSecond: seconds > 0 ? bytes / seconds : 0,
    ...(items > 0 && totalKeys > items ? { etaSeconds: ((totalKeys - items) * seconds) / items } : {}),
  });
}

/** Items and bytes copied so far, from the checkpoint's databases. */
function recount(run: Run): void {
  const states = Object.values(run.checkpoint.databases);
  run.items = states.reduce((sum, state) => sum + state.keys, 0);
  run.bytes = states.reduce((sum, state) => sum + state.bytes, 0);
}

/** Falls back from rdb to scan (auto only): the source serves no snapshot, or one we cannot copy. */
class FallbackToScan extends Error {}

/**
 * Copies with SCAN, DUMP and RESTORE, database by database, saving the SCAN cursor after every
 * batch so a killed copy resumes where it stopped.
 */
async function copyByScan(run: Run): Promise<void> {
  const { source, target, options, checkpoint } = run;
  const batchSize = options.batchSize ?? 1000;
  const bigKeyBytes = options.bigKeyBytes ?? 8 * 1024 * 1024;
  for (const db of run.databases) {
    const state = (checkpoint.databases[db] ??= { cursor: '0', done: false, keys: 0, bytes: 0 });
    if (state.done) continue;
    await source.select(db);
    await target.select(run.mapped(db));
    if (run.occupied.includes(db) && options.replaceExisting && state.cursor === '0') await target.flushdb();
    let cursor = state.cursor;
    do {
      if (options.signal?.aborted) throw new CancelledError(`Redis copy cancelled at db ${db}, cursor ${cursor}; resume with the same checkpoint.`);
      const bytesBefore = run.bytes;
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
          const copied = await copyInPieces(source, target, key, ttl);
          if (copied < 0) continue;
          run.bytes += copied;
          run.items++;
          run.bigKeys++;
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
        run.bytes += payload.length;
      });
      if (writes > 0) {
        const results = (await write.exec()) ?? [];
        const failed = results.find(([error]) => error);
        if (failed?.[0]) throw new ArmadaError('Unknown', `RESTORE failed on the target: ${failed[0].message}`, { cause: failed[0] });
      }
      await run.throttle?.take(run.bytes - bytesBefore, options.signal);
      run.items += writes;
      state.keys += writes;
      state.bytes = run.bytes;
      cursor = String(next);
      state.cursor = cursor;
      await run.saveCheckpoint(checkpoint);
      progress(run, `db ${db}`);
    } while (cursor !== '0');
    state.done = true;
    await run.saveCheckpoint(checkpoint);
  }
}

/**
 * Copies from an RDB snapshot taken over PSYNC. Databases the checkpoint records as finished are
 * skipped in the stream; the others are emptied on the target first (they hold at most a part of
 * this copy from an earlier, killed run) and copied whole, so a resumed copy ends exact.
 */
async function copyByRdb(run: Run, fallback: boolean): Promise<void> {
  const { source, target, options, checkpoint } = run;
  const bigKeyBytes = options.bigKeyBytes ?? 8 * 1024 * 1024;
  const progressEvery = options.batchSize ?? 1000;
  const maxInFlight = options.maxInFlightBytes ?? 32 * 1024 * 1024;
  const snapshot = new RdbSnapshot(run.sourceEndpoint);
  try {
    await snapshot.start();
  } catch (error) {
    snapshot.close();
    if (fallback && error instanceof PsyncRefusedError) throw new FallbackToScan(error.message);
    if (error instanceof PsyncRefusedError) {
      throw new ArmadaError('Unsupported', `${error.message}. The rdb strategy needs a source that serves PSYNC; use strategy 'scan' (or 'auto').`, { cause: error });
    }
    throw error;
  }

  // The source has agreed: now (and only now) touch the target.
  const wanted = new Set<number>();
  let writer: RestoreWriter | undefined;
  const cancel = () => snapshot.fail(new CancelledError('Redis copy cancelled during the snapshot stream; resume with the same checkpoint.'));
  try {
    checkpoint.strategy = 'rdb';
    for (const db of run.databases) {
      const state = checkpoint.databases[db];
      if (state?.done) continue;
      wanted.add(db);
      const partial = state !== undefined; // started by an earlier run, which was killed
      if (partial || (run.occupied.includes(db) && options.replaceExisting)) {
        // ASYNC: freed in the background, so the snapshot waiting at the source is not held up.
        await target.select(run.mapped(db));
        await target.flushdb('ASYNC');
      }
      checkpoint.databases[db] = { cursor: '0', done: false, keys: 0, bytes: 0 };
    }
    recount(run);
    await run.saveCheckpoint(checkpoint);
    if (wanted.size === 0) return;

    const out = await RestoreWriter.open(run.targetEndpoint);
    writer = out;
    const bigKeys: Array<{ db: number; key: Buffer }> = [];
    let currentDb = -1;
    let currentState = { keys: 0, bytes: 0 };
    // Keys expired by this time are not copied (refreshed every chunk).
    let now = Date.now();
    const parser = new RdbParser(
      {
        wants: (db) => wanted.has(db),
        onKey(record) {
          if (record.expireAt > 0 && record.expireAt <= now) return; // expired: RESTORE would drop it anyway
          if (record.db !== currentDb) {
            currentDb = record.db;
            out.select(run.mapped(currentDb));
            currentState = checkpoint.databases[currentDb] as Checkpoint['databases'][string];
          }
          out.restore(record);
          currentState.keys++;
          currentState.bytes += record.length + 11;
          run.bytes += record.length + 11;
        },
        onBigKey(db, key) {
          bigKeys.push({ db, key });
        },
        onDatabaseEnd(db) {
          if (!wanted.has(db)) return;
          // Finished once every RESTORE of it is answered, unless big keys of it are still to copy.
          out.mark(() => {
            if (bigKeys.some((big) => big.db === db)) return;
            (checkpoint.databases[db] as Checkpoint['databases'][string]).done = true;
            run.saveCheckpoint(checkpoint).catch(() => undefined); // the final save, awaited, reports a failure
          });
        },
      },
      bigKeyBytes,
    );
    let restoredBefore = run.items;
    let reported = 0;
    out.onReplies = (restored) => {
      if (out.inFlightBytes < maxInFlight / 2) snapshot.resume();
      if (restored - reported >= progressEvery) {
        reported = restored;
        run.items = restoredBefore + restored;
        progress(run, 'rdb snapshot');
      }
    };
    out.onError = (error) => snapshot.fail(error);
    options.signal?.addEventListener('abort', cancel, { once: true });
    if (options.signal?.aborted) cancel();
    let versionSet = false;
    await snapshot.read({
      push(chunk) {
        now = Date.now();
        parser.push(chunk);
        // Throttled: hold the snapshot back until the average rate allows more.
        const wait = run.throttle?.delayFor(chunk.length) ?? 0;
        if (wait > 0) {
          snapshot.pause();
          setTimeout(() => snapshot.resume(), wait);
        }
        if (!versionSet && parser.version > 0) {
          out.rdbVersion = parser.version;
          versionSet = true;
        }
        out.flushSoon();
        if (out.inFlightBytes > maxInFlight) snapshot.pause();
      },
      get done() {
        return parser.done;
      },
      get trailing() {
        return parser.trailing;
      },
    });
    await out.drain();
    // What socket buffers took in at once still counts: the copy ends when the rate says so.
    await run.throttle?.take(0, options.signal);
    run.items = restoredBefore + out.restored;
    restoredBefore = run.items;
    progress(run, 'rdb snapshot');

    // Keys too large to hold: from the live source, in pieces (their value and TTL as they are now).
    for (const { db, key } of bigKeys) {
      if (options.signal?.aborted) throw new CancelledError('Redis copy cancelled while copying big keys; resume with the same checkpoint.');
      await source.select(db);
      await target.select(run.mapped(db));
      const ttl = Number(await source.pttl(key));
      if (ttl === -2) continue; // gone since the snapshot
      const copied = await copyInPieces(source, target, key, ttl);
      if (copied < 0) continue;
      await run.throttle?.take(copied, options.signal);
      const state = checkpoint.databases[db] as Checkpoint['databases'][string];
      state.keys++;
      state.bytes += copied;
      run.items++;
      run.bigKeys++;
      run.bytes += copied;
      progress(run, `db ${db} big keys`);
    }
    for (const db of wanted) (checkpoint.databases[db] as Checkpoint['databases'][string]).done = true;
    await run.saveCheckpoint(checkpoint);
  } catch (error) {
    if (fallback && error instanceof RdbUnsupportedError) {
      // Part of the snapshot may be on the target already: empty what this run wrote, then SCAN.
      writer?.close();
      for (const db of wanted) {
        await target.select(run.mapped(db));
        await target.flushdb('ASYNC');
        checkpoint.databases[db] = { cursor: '0', done: false, keys: 0, bytes: 0 };
      }
      recount(run);
      checkpoint.strategy = 'scan';
      await run.saveCheckpoint(checkpoint);
      throw new FallbackToScan(error.message);
    }
    if (error instanceof RdbUnsupportedError) throw new ArmadaError('Unsupported', `${error.message} Use strategy 'scan' (or 'auto') for this source.`, { cause: error });
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', cancel);
    snapshot.close();
    writer?.close();
  }
}

/** Copies one key with its type's commands, piece by piece (for keys too large to DUMP at once): the bytes copied, or -1 if the key is gone. */
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
    return -1; // expired or deleted meanwhile
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

  async copy(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: RedisCopyOptions = {}): Promise<RedisCopyReport> {
    const started = performance.now();
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

      // A resumed copy goes on with the strategy that started it.
      const requested = options.strategy ?? 'auto';
      const previousStrategy = resumed ? (checkpoint.strategy ?? 'scan') : undefined;
      if (previousStrategy && requested !== 'auto' && requested !== previousStrategy) {
        throw new ValidationError(`The checkpoint at ${options.checkpointPath} is from a copy with strategy '${previousStrategy}', not '${requested}'.`, {
          issues: [{ path: 'strategy', message: `the checkpoint was written by strategy '${previousStrategy}'`, fix: `pass strategy '${previousStrategy}' (or 'auto'), or delete the checkpoint to start over` }],
        });
      }
      const strategy = previousStrategy ?? requested;

      // Refuse a target that holds data before writing anything (a resumed copy's own data aside).
      const targetKeys = await keyspace(target);
      const occupied = databases.filter((db) => (targetKeys.get(mapped(db)) ?? 0) > 0 && !checkpoint.databases[db]);
      if (occupied.length > 0 && !options.replaceExisting) {
        throw new ValidationError(`The target Redis at ${where(targetEndpoint)} already holds data.`, {
          issues: occupied.map((db) => ({ path: `target.db${mapped(db)}`, message: `database ${mapped(db)} holds ${targetKeys.get(mapped(db))} keys`, fix: 'empty it, choose another database, or pass replaceExisting: true' })),
        });
      }
      const run: Run = {
        source,
        target,
        sourceEndpoint,
        targetEndpoint,
        options,
        databases,
        mapped,
        occupied,
        checkpoint,
        saveCheckpoint: serialJsonWriter(options.checkpointPath),
        totalKeys: databases.reduce((sum, db) => sum + (present.get(db) ?? 0), 0),
        started,
        items: Object.values(checkpoint.databases).reduce((sum, entry) => sum + entry.keys, 0),
        bytes: Object.values(checkpoint.databases).reduce((sum, entry) => sum + entry.bytes, 0),
        bigKeys: 0,
        throttle: throttleFor(options),
      };
      let fallbackReason: string | undefined;
      if (strategy !== 'scan') {
        try {
          await copyByRdb(run, strategy === 'auto');
          return { items: run.items, bytes: run.bytes, durationMs: performance.now() - started, resumed, strategy: 'rdb', bigKeys: run.bigKeys };
        } catch (error) {
          if (!(error instanceof FallbackToScan)) throw error;
          fallbackReason = error.message;
        }
      }
      checkpoint.strategy = 'scan';
      await copyByScan(run);
      return { items: run.items, bytes: run.bytes, durationMs: performance.now() - started, resumed, strategy: 'scan', bigKeys: run.bigKeys, ...(fallbackReason ? { fallbackReason } : {}) };
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
