/** The `scan` strategy: SCAN + DUMP/RESTORE, database by database, resumable from its cursors. */
import { ArmadaError, CancelledError } from '@armada/core';
import { copyInPieces } from './pieces.js';
import { type Run, progress } from './run.js';

/**
 * Copies with SCAN, DUMP and RESTORE, database by database, saving the SCAN cursor after every
 * batch so a killed copy resumes where it stopped.
 */
export async function copyByScan(run: Run): Promise<void> {
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
