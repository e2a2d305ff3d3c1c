/**
 * The chunked data copy: one chunk (a key range of a table, or a whole table) streamed from a
 * snapshot reader into a target writer, with `LOAD DATA LOCAL INFILE` where the target allows it
 * and multi-row INSERTs otherwise. Columns are named (generated ones left out, invisible ones and a
 * versioned table's period included) and read exact (`TablePlan.selectList`). Every write checks
 * its warnings: the session's lax sql_mode accepts what the source holds, and a value that would
 * be changed on the way (truncated, out of range) fails the chunk, named.
 */
import { ArmadaError } from '@armada/core';
import { Readable } from 'node:stream';
import type { Connection as CallbackConnection } from 'mysql2';
import type { QueryOptions } from 'mysql2/promise';
import { type KeyRange, describeRange, rangeCondition } from './chunks.js';
import { type Connection, quoteName, rows } from './sql.js';
import { type TablePlan, fromClause } from './tables.js';

export interface Chunk {
  plan: TablePlan;
  /** A range of the integer key; absent: the whole table. */
  range?: KeyRange;
}

/** The chunk's name in the checkpoint: `shop.orders:10001` (the range's start), `shop.audit_log:all`. */
export const chunkId = (chunk: Chunk) => `${chunk.plan.database}.${chunk.plan.table}:${chunk.range ? (chunk.range.from ?? '') : 'all'}`;
/** For people: `shop.orders chunk id 10001..20000`, `shop.audit_log`. */
export const describeChunk = (chunk: Chunk) => {
  const range = describeRange(chunk.plan.intKey, chunk.range);
  return `${chunk.plan.database}.${chunk.plan.table}${range ? ` chunk ${range}` : ''}`;
};

export type Counted = (rows: number, bytes: number) => void;

/** The chunk's rows from the snapshot, ordered by key, as a stream (the promise API has none). */
function selectChunk(reader: Connection, chunk: Chunk, raw: boolean): AsyncIterable<unknown[]> {
  const { plan } = chunk;
  const order = plan.key.length > 0 ? ` ORDER BY ${plan.key.map(quoteName).join(', ')}` : '';
  const condition = rangeCondition(plan.intKey, chunk.range);
  // The callback connection under the promise one: same session, same snapshot.
  const core = (reader as unknown as { connection: CallbackConnection }).connection;
  const sql = `SELECT ${plan.selectList.join(', ')} FROM ${fromClause(plan)}${condition.sql}${order}`;
  // raw: every value as the bytes the server sent, nothing decoded. Otherwise geometry stays bytes
  // too (the driver would parse it into points an INSERT cannot take back).
  const typeCast = raw ? false : (field: { type: string; buffer(): Buffer | null }, next: () => unknown) => (field.type === 'GEOMETRY' ? field.buffer() : next());
  return core.query({ sql, rowsAsArray: true, values: condition.values, typeCast }).stream({ highWaterMark: 2000 }) as AsyncIterable<unknown[]>;
}

/** A write that changed a value says so in a warning: fail with the first one, named. */
async function failOnWarnings(writer: Connection, warnings: number, chunk: Chunk, how: string): Promise<void> {
  if (warnings === 0) return;
  const [first] = await rows<{ Message: string }>(writer, 'SHOW WARNINGS LIMIT 1');
  throw new ArmadaError('Unknown', `${how} into ${describeChunk(chunk)} gave ${warnings} warning(s), first: ${first?.Message ?? 'unknown'}.`);
}

const valueBytes = (row: unknown[]) => row.reduce<number>((sum, value) => sum + (value === null ? 4 : Buffer.isBuffer(value) ? value.length : String(value).length), 0);

/**
 * Streams one chunk from the snapshot into multi-row INSERTs, with one INSERT in flight while the
 * next one fills: the source's read and the target's write overlap. At most two batches and the
 * stream's buffer are in memory; the stream pauses the source connection while the writer is behind.
 */
export async function insertChunk(reader: Connection, writer: Connection, chunk: Chunk, insertBytes: number, counted: Counted): Promise<void> {
  const { plan } = chunk;
  const insert = `INSERT INTO ${quoteName(plan.database)}.${quoteName(plan.table)} (${plan.columns.map(quoteName).join(', ')}) VALUES ?`;
  let inFlight: Promise<void> = Promise.resolve();
  let batch: unknown[][] = [];
  let batchBytes = 0;
  const send = async () => {
    await inFlight;
    if (batch.length === 0) return;
    const [values, size] = [batch, batchBytes];
    batch = [];
    batchBytes = 0;
    inFlight = writer.query(insert, [values]).then(async ([result]) => {
      await failOnWarnings(writer, (result as { warningStatus?: number }).warningStatus ?? 0, chunk, 'INSERT');
      counted(values.length, size);
    });
    // Awaited before the next send or at the end; until then a failure must not count as unhandled.
    inFlight.catch(() => undefined);
  };
  for await (const row of selectChunk(reader, chunk, false)) {
    batch.push(row);
    batchBytes += valueBytes(row);
    if (batchBytes >= insertBytes) await send();
  }
  await send();
  await inFlight;
}

const TAB = 9;
const NEWLINE = 10;
const BACKSLASH = 92;
/** Bytes LOAD DATA's default format escapes with a backslash → the byte after it (0: as is). A table: this runs for every byte. */
const ESCAPED = new Uint8Array(256);
ESCAPED[BACKSLASH] = BACKSLASH;
ESCAPED[TAB] = 116; // t
ESCAPED[NEWLINE] = 110; // n
ESCAPED[0] = 48; // 0

/**
 * Rows, as the raw bytes of the text protocol, in LOAD DATA's default format: tab-separated, one
 * line each, `\N` for NULL, tab, newline, NUL and backslash escaped. Blocks of about 256 KiB, made
 * only as fast as the target reads them.
 */
async function* tabSeparated(source: AsyncIterable<Array<Buffer | null>>, counted: Counted): AsyncGenerator<Buffer> {
  const size = 256 * 1024;
  let block = Buffer.allocUnsafe(size);
  let at = 0;
  let rowsInBlock = 0;
  for await (const row of source) {
    let need = row.length + 1;
    for (const value of row) need += value === null ? 2 : value.length * 2;
    if (at + need > block.length) {
      if (at > 0) {
        counted(rowsInBlock, at);
        yield block.subarray(0, at);
      }
      block = Buffer.allocUnsafe(Math.max(size, need));
      at = 0;
      rowsInBlock = 0;
    }
    for (let index = 0; index < row.length; index++) {
      if (index > 0) block[at++] = TAB;
      const value = row[index] as Buffer | null;
      if (value === null) {
        block[at++] = BACKSLASH;
        block[at++] = 78; // \N
        continue;
      }
      for (let byte = 0; byte < value.length; byte++) {
        const code = value[byte] as number;
        const escaped = ESCAPED[code] as number;
        if (escaped === 0) block[at++] = code;
        else {
          block[at++] = BACKSLASH;
          block[at++] = escaped;
        }
      }
    }
    block[at++] = NEWLINE;
    rowsInBlock++;
  }
  if (at > 0) {
    counted(rowsInBlock, at);
    yield block.subarray(0, at);
  }
}

/**
 * Streams one chunk from the snapshot into one `LOAD DATA LOCAL INFILE`: the target loads while the
 * source is still sending. The source's text is utf8mb4 (the connection's character set), binary
 * columns excepted, which LOAD DATA takes byte for byte. LOCAL turns data errors into warnings, so
 * any warning fails the chunk.
 */
export async function loadChunk(reader: Connection, writer: Connection, chunk: Chunk, counted: Counted): Promise<void> {
  const { plan } = chunk;
  const body = Readable.from(tabSeparated(selectChunk(reader, chunk, true) as AsyncIterable<Array<Buffer | null>>, counted), { objectMode: false });
  // A streamed SELECT whose connection drops while paused (the writer behind) neither ends nor
  // fails: watch the reader's connection itself, and fail the chunk's body when it goes.
  const readerConnection = (reader as unknown as { connection: CallbackConnection }).connection;
  const readerLost = (error?: Error) => body.destroy(error instanceof Error ? error : new Error('Connection lost: the source closed the connection.'));
  readerConnection.once('error', readerLost);
  readerConnection.once('end', readerLost);
  const sql = `LOAD DATA LOCAL INFILE 'chunk' INTO TABLE ${quoteName(plan.database)}.${quoteName(plan.table)} CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${plan.columns.map(quoteName).join(', ')})`;
  // A source that fails mid-chunk (its connection lost) must end the load at once: otherwise the
  // target waits for the rest of the file until its net_read_timeout, and the copy stalls a minute.
  let sourceFailure: Error | undefined;
  const sourceFailed = new Promise<never>((_, reject) =>
    body.once('error', (error) => {
      sourceFailure = error;
      reject(error);
    }),
  );
  sourceFailed.catch(() => undefined);
  try {
    const [result] = (await Promise.race([writer.query({ sql, infileStreamFactory: () => body } as QueryOptions), sourceFailed])) as unknown as [{ warningStatus: number }];
    await failOnWarnings(writer, result.warningStatus, chunk, 'LOAD DATA');
  } catch (error) {
    if (sourceFailure) writer.destroy();
    throw error;
  } finally {
    readerConnection.off('error', readerLost);
    readerConnection.off('end', readerLost);
  }
}

/** Clears what an earlier run wrote of a chunk, so copying it again duplicates nothing. */
export async function clearChunk(writer: Connection, chunk: Chunk): Promise<void> {
  const { plan } = chunk;
  const table = `${quoteName(plan.database)}.${quoteName(plan.table)}`;
  const condition = rangeCondition(plan.intKey, chunk.range);
  await writer.query(`DELETE FROM ${table}${condition.sql}`, condition.values);
  // A versioned table keeps deleted rows as history; those go too (versioned tables are one chunk).
  if (plan.kind === 'versioned') await writer.query(`DELETE HISTORY FROM ${table}`);
}
