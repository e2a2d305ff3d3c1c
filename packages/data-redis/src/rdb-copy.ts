/** The `rdb` strategy: the source's own snapshot over PSYNC, parsed as a stream and RESTOREd. */
import { ArmadaError, CancelledError } from '@armada/core';
import type { Checkpoint } from './checkpoint.js';
import { copyInPieces } from './pieces.js';
import { PsyncRefusedError, RdbSnapshot } from './psync.js';
import { RdbParser, RdbUnsupportedError } from './rdb.js';
import { RestoreWriter } from './restore-writer.js';
import { type Run, progress, recount } from './run.js';

/** Falls back from rdb to scan (auto only): the source serves no snapshot, or one we cannot copy. */
export class FallbackToScan extends Error {}

/**
 * Copies from an RDB snapshot taken over PSYNC. Databases the checkpoint records as finished are
 * skipped in the stream; the others are emptied on the target first (they hold at most a part of
 * this copy from an earlier, killed run) and copied whole, so a resumed copy ends exact.
 *
 * One point in time: the finished databases came from the earlier run's snapshot, and the rest
 * comes from a new one. They are kept only if the new snapshot starts at the same replication id
 * and offset as the recorded one (`+FULLRESYNC <replid> <offset>`), that is, nothing was written to
 * the source in between. Otherwise every target database the copy wrote is emptied and all are
 * copied from the new snapshot (the report's `restarted` says why). The comparison is strict, so
 * it errs towards copying again, never towards mixing two states. Checked on Redis 7.0: with no
 * replica connected an idle source's offset does not move; it moves on writes, on the DELs of keys
 * that expire (real changes too), and by 14 bytes per `repl-ping-replica-period` (10 s) PING while
 * any replica is connected, our own snapshot connection included while its transfer lasts. And the
 * id changes when the source frees its backlog (`repl-backlog-ttl`, 1 h without replicas) or after
 * a restart or failover. Each of these makes a resumed copy start over: safe, only slower.
 */
export async function copyByRdb(run: Run, fallback: boolean): Promise<{ restarted?: string }> {
  const { source, target, options, checkpoint } = run;
  const bigKeyBytes = options.bigKeyBytes ?? 8 * 1024 * 1024;
  const progressEvery = options.batchSize ?? 1000;
  const maxInFlight = options.maxInFlightBytes ?? 32 * 1024 * 1024;
  const snapshot = new RdbSnapshot(run.sourceEndpoint);
  let start: { replid: string; offset: number };
  try {
    start = await snapshot.start();
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
  let restarted: string | undefined;
  try {
    checkpoint.strategy = 'rdb';
    const finished = run.databases.filter((db) => checkpoint.databases[db]?.done);
    const recorded = checkpoint.snapshot;
    if (finished.length > 0 && (recorded?.replid !== start.replid || recorded.offset !== start.offset)) {
      restarted = recorded
        ? `the source changed after the snapshot the earlier run copied from (replication ${recorded.replid.slice(0, 8)}… offset ${recorded.offset} then, ${start.replid.slice(0, 8)}… offset ${start.offset} now)`
        : 'the checkpoint does not record which snapshot the earlier run copied from';
      restarted += `: database${finished.length === 1 ? '' : 's'} ${finished.join(', ')}, finished then, would hold an older state than the others, so every target database this copy wrote was emptied and all were copied again from a new snapshot`;
      // Every database this copy wrote, done or not (the checkpoint's), not only today's list.
      for (const db of Object.keys(checkpoint.databases).map(Number)) {
        await target.select(run.mapped(db));
        await target.flushdb('ASYNC');
        delete checkpoint.databases[db];
      }
    }
    checkpoint.snapshot = { replid: start.replid, offset: start.offset };
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
    if (wanted.size === 0) return restarted ? { restarted } : {};

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
    // At each progress point: has the target evicted keys? (One check at a time; a failure ends the stream.)
    let checking = false;
    const checkEvictions = () => {
      if (!run.evictions || checking) return;
      checking = true;
      run.evictions.check().then(
        () => {
          checking = false;
        },
        (error: unknown) => snapshot.fail(error as Error),
      );
    };
    out.onReplies = (restored) => {
      if (out.inFlightBytes < maxInFlight / 2) snapshot.resume();
      if (restored - reported >= progressEvery) {
        reported = restored;
        run.items = restoredBefore + restored;
        progress(run, 'rdb snapshot');
        checkEvictions();
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
    // A check still running when the stream ended may have failed after the snapshot could take it.
    await run.evictions?.check();

    // Keys too large to hold: from the live source, in pieces (their value and TTL as they are now).
    for (const { db, key } of bigKeys) {
      if (options.signal?.aborted) throw new CancelledError('Redis copy cancelled while copying big keys; resume with the same checkpoint.');
      await source.select(db);
      await target.select(run.mapped(db));
      const ttl = Number(await source.pttl(key));
      if (ttl === -2) continue; // gone since the snapshot
      const copied = await copyInPieces(source, target, key);
      if (copied < 0) continue;
      await run.throttle?.take(copied, options.signal);
      const state = checkpoint.databases[db] as Checkpoint['databases'][string];
      state.keys++;
      state.bytes += copied;
      run.items++;
      run.bigKeys++;
      run.bytes += copied;
      progress(run, `db ${db} big keys`);
      await run.evictions?.check();
    }
    for (const db of wanted) (checkpoint.databases[db] as Checkpoint['databases'][string]).done = true;
    await run.saveCheckpoint(checkpoint);
    return restarted ? { restarted } : {};
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
      delete checkpoint.snapshot;
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
