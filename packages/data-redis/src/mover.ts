/**
 * The Redis data mover: the order of a copy. Two ways to copy (rdb-copy.ts, scan-copy.ts):
 *
 * - `rdb` (RedisShake's way): connect to the source as a replica would (PSYNC), take its RDB
 *   snapshot as a stream, parse it chunk by chunk, and RESTORE each key on the target from the
 *   value bytes in the snapshot, in one long pipeline over a plain socket with a bound on the bytes
 *   in flight. A key whose serialized value is larger than `bigKeyBytes` is skipped in the stream
 *   and copied afterwards from the live source in pieces (pieces.ts).
 * - `scan`: SCAN + DUMP/RESTORE over raw sockets, every step pipelined and overlapped, with the
 *   source's absolute expiry and LRU/LFU data.
 *
 * `auto` (the default) takes `rdb`, and falls back to `scan` when the source will not serve a
 * snapshot (no permission for PSYNC, a managed Redis that refuses it) or the snapshot holds what
 * the stream parser cannot copy (module types).
 *
 * Before anything is written: a target database that holds data is refused unless the caller says
 * to replace it; a wrong address or password fails; so does a target whose maxmemory cannot hold
 * the data set or would evict keys to (capacity.ts). FUNCTION libraries go first (functions.ts).
 * While it runs, a target that evicts keys fails the copy. A checkpoint (no secrets) lets a killed
 * copy resume to one point-in-time state: `rdb` keeps the databases it finished only if the source
 * is unchanged since their snapshot, `scan` continues from its cursors only if the source is
 * unchanged since the first run began (consistency.ts); otherwise everything again, said in the
 * report. The source is only read.
 */
import {
  ValidationError,
  serialJsonWriter,
  throttleFor,
  type CheckOptions,
  type DataEndpoint,
  type DataMoverV1,
  type DataReplication,
  type ReplicateOptions,
  type ValidationIssue,
  type VerifyReport,
} from '@armada/core';
import type { Redis } from 'ioredis';
import { checkCapacity, watchEvictions } from './capacity.js';
import { checkRedis } from './check.js';
import { type Checkpoint, readCheckpoint } from './checkpoint.js';
import { keyspace, open, where } from './connection.js';
import { describePosition, samePosition, sourcePosition } from './consistency.js';
import { type FunctionsCheckpoint, copyFunctions } from './functions.js';
import type { RedisCopyOptions, RedisCopyReport } from './options.js';
import { FallbackToScan, copyByRdb } from './rdb-copy.js';
import { replicateRedis } from './replication.js';
import { type Run, recount } from './run.js';
import { copyByScan } from './scan-copy.js';
import { type RedisVerifyOptions, verifyRedis } from './verify.js';

export const REDIS_DATA_MOVER_ID = 'redis';
export type { RedisCopyOptions, RedisCopyReport, RedisCopyStrategy } from './options.js';

/**
 * A resumed scan copy continues from its cursors only when the source has provably not changed
 * since the first run began (consistency.ts); otherwise it empties what the earlier runs wrote
 * and starts over, and says why. A fresh copy records where the source stands.
 */
async function scanFromConsistentStart(run: Run, resumed: boolean): Promise<string | undefined> {
  const { checkpoint, source, target } = run;
  const now = await sourcePosition(source);
  const written = Object.keys(checkpoint.databases);
  let restarted: string | undefined;
  if (resumed && written.length > 0 && !samePosition(checkpoint.scanFrom, now)) {
    restarted = `the source's write counters moved from ${describePosition(checkpoint.scanFrom)} to ${describePosition(now)} since the first run began: keeping what it copied would mix two points in time`;
    for (const db of written) {
      await target.select(run.mapped(Number(db)));
      await target.flushdb();
      delete checkpoint.databases[db];
    }
    recount(run);
  }
  if (!resumed || restarted !== undefined || checkpoint.scanFrom === undefined) checkpoint.scanFrom = now;
  await run.saveCheckpoint(checkpoint);
  return restarted;
}

/** A scan copy of a source that took writes while it ran is not one point in time: said, not hidden. */
async function scanWarnings(run: Run): Promise<string[]> {
  const end = await sourcePosition(run.source);
  if (samePosition(run.checkpoint.scanFrom, end)) return [];
  return [
    end === undefined || run.checkpoint.scanFrom === undefined
      ? 'the source does not report its write counters (INFO replication and persistence), so whether it took writes during the scan copy is unknown: verify the copy, or copy from a quiet source'
      : `the source took writes during the scan copy (${describePosition(run.checkpoint.scanFrom)} -> ${describePosition(end)}): keys written meanwhile may be copied as of different moments; verify, or use replication for a live source`,
  ];
}

export class RedisDataMover implements DataMoverV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id = REDIS_DATA_MOVER_ID;
  /** REPLICAOF makes its own full sync: no copy comes first (see replication.ts). */
  readonly replicationStartsFrom = 'empty' as const;

  replicate(source: DataEndpoint, target: DataEndpoint, options?: ReplicateOptions): Promise<DataReplication> {
    return replicateRedis(source, target, options);
  }

  check(source: DataEndpoint, target: DataEndpoint | undefined, options?: CheckOptions): Promise<ValidationIssue[]> {
    return checkRedis(source, target, options);
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
      // Refuse a target that cannot hold the data set, or would evict keys to hold it (capacity.ts).
      await checkCapacity(source, target, { databases, replaceExisting: options.replaceExisting ?? false, mapped, resumed });
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
        evictions: await watchEvictions(target),
      };
      // FUNCTION libraries are not keys, so neither strategy carries them: first, before any key
      // (functions.ts). Not skipped on resume: the libraries the checkpoint lists are this copy's own,
      // which a resumed copy may replace, so it ends with the source's code even if that changed.
      const withFunctions = checkpoint as Checkpoint & FunctionsCheckpoint;
      // Saved with the strategy's first checkpoint (saving now would record a checkpoint with no strategy, read back as scan).
      withFunctions.functions = await copyFunctions(source, target, { replaceExisting: options.replaceExisting ?? false, ours: withFunctions.functions ?? [] });
      let fallbackReason: string | undefined;
      if (strategy !== 'scan') {
        try {
          const { restarted } = await copyByRdb(run, strategy === 'auto');
          await run.evictions?.check();
          return { items: run.items, bytes: run.bytes, durationMs: performance.now() - started, resumed, strategy: 'rdb', bigKeys: run.bigKeys, ...(restarted ? { restarted } : {}) };
        } catch (error) {
          if (!(error instanceof FallbackToScan)) throw error;
          fallbackReason = error.message;
        }
      }
      checkpoint.strategy = 'scan';
      const restarted = await scanFromConsistentStart(run, resumed);
      await copyByScan(run);
      // The last word on evictions, whatever the strategy checked on its way.
      await run.evictions?.check();
      const warnings = await scanWarnings(run);
      return {
        items: run.items,
        bytes: run.bytes,
        durationMs: performance.now() - started,
        resumed,
        strategy: 'scan',
        bigKeys: run.bigKeys,
        ...(fallbackReason ? { fallbackReason } : {}),
        ...(restarted ? { restarted } : {}),
        ...(warnings.length > 0 ? { warnings } : {}),
      };
    } finally {
      source.disconnect();
      target?.disconnect();
    }
  }

  verify(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: RedisVerifyOptions = {}): Promise<VerifyReport> {
    return verifyRedis(sourceEndpoint, targetEndpoint, options);
  }
}
