/**
 * The MySQL / MariaDB data mover, on mysql2.
 *
 * Copy: every worker reads from one consistent snapshot of the source (the mydumper way: a global
 * read lock for the instant it takes each worker to start its snapshot transaction, and the binary
 * log position recorded under it). Tables are created first (foreign key checks off on the target),
 * then data is copied in chunks: ranges of an integer primary key, spread over the workers; tables
 * with another key, or none, are read whole by one worker. Rows go into multi-row INSERTs sized by
 * bytes. Views, triggers and routines come last, so triggers do not fire during the load.
 * Values travel as the server's own text or bytes (dates, decimals, big integers and JSON as text),
 * so nothing is rounded or shifted by a time zone on the way.
 *
 * Safety: the source is only read; a target database that holds data is refused unless the caller
 * says to replace it; a wrong address or password fails before anything is written.
 */
import {
  ArmadaError,
  CancelledError,
  ValidationError,
  serialJsonWriter,
  type CopyOptions,
  type CopyReport,
  type DataEndpoint,
  type DataMoverV1,
  type VerifyReport,
} from '@armada/core';
import { readFile, } from 'node:fs/promises';
import { createConnection, type Connection, type FieldPacket, type RowDataPacket } from 'mysql2/promise';

export const MYSQL_DATA_MOVER_ID = 'mysql';
const SYSTEM_DATABASES = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

export interface MysqlCopyOptions extends CopyOptions {
  /** Rows per chunk of an integer primary key range (default 20,000). */
  chunkRows?: number;
  /** Bytes of values per INSERT statement (default 1 MiB). */
  insertBytes?: number;
  /**
   * Write the load to the target's binary log (default false, as myloader does): a new primary's
   * replicas are seeded from it afterwards, and logging every loaded row doubles the writes.
   */
  targetBinlog?: boolean;
}

export interface MysqlCopyReport extends CopyReport {
  /** Where the source's binary log stood at the snapshot: where replication starts from. */
  binlog?: { file: string; position: number; gtid?: string };
}

const quoteName = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}`;

/** Exact values: dates, decimals, big integers and JSON as the server's text; binary as bytes. */
const EXACT = {
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  decimalNumbers: false,
  // JSON as its stored text (MySQL's JSON type, or MariaDB's LONGTEXT flagged json), not parsed:
  // re-serialising would change its spacing.
  typeCast(field: { type: string; extendedFormat?: string; string(): string | null }, next: () => unknown) {
    return field.type === 'JSON' || field.extendedFormat === 'json' ? field.string() : next();
  },
} as const;

async function connectTo(endpoint: DataEndpoint, role: 'source' | 'target'): Promise<Connection> {
  try {
    return await createConnection({ host: endpoint.host, port: endpoint.port, user: endpoint.user ?? 'root', password: endpoint.password ?? '', multipleStatements: false, ...EXACT });
  } catch (error) {
    const failure = error as { code?: string; message: string };
    const auth = failure.code === 'ER_ACCESS_DENIED_ERROR' || failure.code === 'ER_DBACCESS_DENIED_ERROR';
    throw new ValidationError(`Cannot reach the ${role} MySQL at ${where(endpoint)}: ${auth ? 'access denied for that user and password' : (failure.code ?? failure.message)}.`, {
      issues: [{ path: role, message: auth ? 'the user or password was refused' : failure.message.replace(endpoint.password ?? '\u0000', '***'), fix: auth ? 'check the user and password of the endpoint' : 'check host and port, and that the server is running' }],
    });
  }
}

const rows = async <T = RowDataPacket>(connection: Connection, sql: string, values: unknown[] = []) => (await connection.query<RowDataPacket[]>(sql, values))[0] as unknown as T[];

interface TablePlan {
  database: string;
  table: string;
  columns: string[];
  /** The single integer primary key column, when there is one: chunks are ranges of it. */
  intKey?: string;
  /** Any primary key columns (for ordering whole-table reads). */
  key: string[];
}

interface Chunk {
  plan: TablePlan;
  /** [from, to) of the integer key; absent: the whole table. */
  range?: [string, string];
}

async function tablePlans(source: Connection, database: string): Promise<{ tables: TablePlan[]; views: string[] }> {
  const listed = await rows<{ name: string; kind: string }>(source, 'SELECT TABLE_NAME AS name, TABLE_TYPE AS kind FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [database]);
  const columns = await rows<{ tableName: string; name: string; key: string; type: string }>(
    source,
    'SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, COLUMN_KEY AS `key`, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION',
    [database],
  );
  const tables = listed
    .filter((entry) => entry.kind === 'BASE TABLE')
    .map((entry): TablePlan => {
      const own = columns.filter((column) => column.tableName === entry.name);
      const key = own.filter((column) => column.key === 'PRI');
      const intKey = key.length === 1 && /int$/.test(key[0]?.type ?? '') ? key[0]?.name : undefined;
      return { database, table: entry.name, columns: own.map((column) => column.name), key: key.map((column) => column.name), ...(intKey ? { intKey } : {}) };
    });
  return { tables, views: listed.filter((entry) => entry.kind === 'VIEW').map((entry) => entry.name) };
}

/** Which chunks are copied: no secrets, only names and key ranges. */
interface Checkpoint {
  version: 1;
  source: string;
  target: string;
  done: string[];
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


const chunkId = (chunk: Chunk) => `${chunk.plan.database}.${chunk.plan.table}:${chunk.range ? chunk.range[0] : 'all'}`;

/** DEFINER clauses name accounts that may not exist on the target: leave them out. */
const withoutDefiner = (sql: string) => sql.replace(/\sDEFINER\s*=\s*(`[^`]*`|'[^']*'|\S+)@(`[^`]*`|'[^']*'|\S+)/i, '');

export class MysqlDataMover implements DataMoverV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id = MYSQL_DATA_MOVER_ID;

  async copy(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: MysqlCopyOptions = {}): Promise<MysqlCopyReport> {
    const started = performance.now();
    const concurrency = Math.max(1, options.concurrency ?? 4);
    const chunkRows = options.chunkRows ?? 20_000;
    const insertBytes = options.insertBytes ?? 1 << 20;
    const control = await connectTo(sourceEndpoint, 'source');
    const connections: Connection[] = [control];
    try {
      const target = await connectTo(targetEndpoint, 'target');
      connections.push(target);
      const databases = (sourceEndpoint.databases?.map(String) ?? (await rows<{ name: string }>(control, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((row) => row.name)).filter(
        (name) => !SYSTEM_DATABASES.has(name),
      );
      const previous = await readCheckpoint(options.checkpointPath);
      const resumed = previous !== undefined && previous.source === where(sourceEndpoint) && previous.target === where(targetEndpoint);
      const checkpoint: Checkpoint = resumed ? previous : { version: 1, source: where(sourceEndpoint), target: where(targetEndpoint), done: [] };
      const finished = new Set(checkpoint.done);
      // Workers finish chunks concurrently: one writer, in order, so a later list is never overwritten by an earlier one.
      const saveCheckpoint = serialJsonWriter(options.checkpointPath);
      // Refuse a target that holds data before anything is written (a resumed copy's own aside).
      const occupied = await rows<{ name: string; rowsEstimate: number }>(
        target,
        `SELECT TABLE_SCHEMA AS name, SUM(TABLE_ROWS) AS rowsEstimate FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN (${databases.map(() => '?').join(',') || "''"}) GROUP BY TABLE_SCHEMA`,
        databases,
      );
      if (occupied.length > 0 && !options.replaceExisting && !resumed) {
        throw new ValidationError(`The target MySQL at ${where(targetEndpoint)} already has these databases.`, {
          issues: occupied.map((entry) => ({ path: `target.${entry.name}`, message: `database ${entry.name} exists with tables`, fix: 'drop it, choose another target, or pass replaceExisting: true' })),
        });
      }

      // One consistent snapshot for every worker, and the binlog position that goes with it.
      const workers: Connection[] = [];
      for (let index = 0; index < concurrency; index++) workers.push(await connectTo(sourceEndpoint, 'source'));
      connections.push(...workers);
      let binlog: MysqlCopyReport['binlog'];
      await control.query('FLUSH TABLES WITH READ LOCK');
      try {
        for (const worker of workers) {
          await worker.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
          await worker.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
        }
        const [status] = await rows<{ File: string; Position: number }>(control, 'SHOW MASTER STATUS');
        const [gtid] = await rows<{ gtid: string | null }>(control, 'SELECT @@GLOBAL.gtid_binlog_pos AS gtid').catch(() => [{ gtid: null }]);
        if (status) binlog = { file: status.File, position: Number(status.Position), ...(gtid?.gtid ? { gtid: gtid.gtid } : {}) };
      } finally {
        await control.query('UNLOCK TABLES');
      }

      // Schema: databases and tables first, with foreign key checks off so the order does not matter.
      await target.query('SET SESSION FOREIGN_KEY_CHECKS = 0');
      const plans: TablePlan[] = [];
      const views: Array<{ database: string; name: string }> = [];
      const snapshotReader = workers[0] as Connection;
      for (const database of databases) {
        const [created] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE DATABASE ${quoteName(database)}`);
        if (options.replaceExisting && !resumed) await target.query(`DROP DATABASE IF EXISTS ${quoteName(database)}`);
        await target.query(String(created?.['Create Database']).replace(/^CREATE DATABASE/, 'CREATE DATABASE IF NOT EXISTS'));
        const found = await tablePlans(snapshotReader, database);
        for (const plan of found.tables) {
          const [definition] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE TABLE ${quoteName(database)}.${quoteName(plan.table)}`);
          await target.query(`USE ${quoteName(database)}`);
          await target.query(String(definition?.['Create Table']).replace(/^CREATE TABLE/, 'CREATE TABLE IF NOT EXISTS'));
          plans.push(plan);
        }
        views.push(...found.views.map((name) => ({ database, name })));
      }

      // Chunks: ranges of integer keys; whole tables otherwise.
      const chunks: Chunk[] = [];
      for (const plan of plans) {
        if (!plan.intKey) {
          chunks.push({ plan });
          continue;
        }
        const [bounds] = await rows<{ low: string | null; high: string | null }>(snapshotReader, `SELECT MIN(${quoteName(plan.intKey)}) AS low, MAX(${quoteName(plan.intKey)}) AS high FROM ${quoteName(plan.database)}.${quoteName(plan.table)}`);
        if (bounds?.low === null || bounds?.low === undefined || bounds.high === null) continue;
        for (let from = BigInt(bounds.low); from <= BigInt(bounds.high); from += BigInt(chunkRows)) chunks.push({ plan, range: [String(from), String(from + BigInt(chunkRows))] });
      }
      const totalItems = chunks.length;
      let items = 0;
      let bytes = 0;
      let done = 0;
      let next = 0;
      const copyChunk = async (reader: Connection, writer: Connection, chunk: Chunk) => {
        const { plan } = chunk;
        const from = `${quoteName(plan.database)}.${quoteName(plan.table)}`;
        // A chunk an earlier run started but did not finish: clear what it wrote, then copy again.
        if (resumed) {
          if (chunk.range && plan.intKey) await writer.query(`DELETE FROM ${from} WHERE ${quoteName(plan.intKey)} >= ? AND ${quoteName(plan.intKey)} < ?`, chunk.range);
          else await writer.query(`DELETE FROM ${from}`);
        }
        const order = plan.key.length > 0 ? ` ORDER BY ${plan.key.map(quoteName).join(', ')}` : '';
        const condition = chunk.range && plan.intKey ? ` WHERE ${quoteName(plan.intKey)} >= ? AND ${quoteName(plan.intKey)} < ?` : '';
        const [data] = (await reader.query({ sql: `SELECT * FROM ${from}${condition}${order}`, rowsAsArray: true }, chunk.range ?? [])) as unknown as [unknown[][], FieldPacket[]];
        const columns = plan.columns.map(quoteName).join(', ');
        let batch: unknown[][] = [];
        let batchBytes = 0;
        const flush = async () => {
          if (batch.length === 0) return;
          await writer.query(`INSERT INTO ${from} (${columns}) VALUES ?`, [batch]);
          items += batch.length;
          bytes += batchBytes;
          batch = [];
          batchBytes = 0;
        };
        for (const row of data) {
          batch.push(row);
          batchBytes += row.reduce<number>((sum, value) => sum + (value === null ? 4 : Buffer.isBuffer(value) ? value.length : String(value).length), 0);
          if (batchBytes >= insertBytes) await flush();
        }
        await flush();
      };
      // Each worker has its snapshot reader and its own target writer, with checks off for the load.
      const writers: Connection[] = [];
      for (let index = 0; index < workers.length; index++) {
        const writer = await connectTo(targetEndpoint, 'target');
        await writer.query('SET SESSION FOREIGN_KEY_CHECKS = 0, UNIQUE_CHECKS = 0');
        // Needs SUPER (or BINLOG ADMIN): without it the load is logged, which is only slower.
        if (!options.targetBinlog) await writer.query('SET SESSION sql_log_bin = 0').catch(() => undefined);
        writers.push(writer);
      }
      connections.push(...writers);
      const outcomes = await Promise.allSettled(
        workers.map(async (reader, index) => {
          for (let chunk = chunks[next++]; chunk !== undefined; chunk = chunks[next++]) {
            if (options.signal?.aborted) throw new CancelledError('MySQL copy cancelled; resume with the same checkpoint.');
            if (finished.has(chunkId(chunk))) {
              done++;
              continue;
            }
            await copyChunk(reader, writers[index] as Connection, chunk);
            finished.add(chunkId(chunk));
            checkpoint.done = [...finished];
            await saveCheckpoint(checkpoint);
            done++;
            const seconds = (performance.now() - started) / 1000;
            options.onProgress?.({ phase: `${chunk.plan.database}.${chunk.plan.table}`, items, bytes, totalItems, bytesPerSecond: seconds > 0 ? bytes / seconds : 0, ...(done > 0 ? { etaSeconds: ((totalItems - done) * seconds) / done } : {}) });
          }
        }),
      );
      // Every worker has stopped by now; report the first failure.
      const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failure) throw failure.reason;

      // Views, triggers and routines, after the data.
      for (const database of databases) {
        await target.query(`USE ${quoteName(database)}`);
        for (const view of views.filter((entry) => entry.database === database)) {
          const [definition] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE VIEW ${quoteName(database)}.${quoteName(view.name)}`);
          await target.query(withoutDefiner(String(definition?.['Create View'])).replace(/^CREATE /, 'CREATE OR REPLACE '));
        }
        for (const trigger of await rows<{ Trigger: string }>(snapshotReader, `SHOW TRIGGERS FROM ${quoteName(database)}`)) {
          const [definition] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE TRIGGER ${quoteName(database)}.${quoteName(trigger.Trigger)}`);
          await target.query(`DROP TRIGGER IF EXISTS ${quoteName(database)}.${quoteName(trigger.Trigger)}`);
          await target.query(withoutDefiner(String(definition?.['SQL Original Statement'])));
        }
        for (const routine of await rows<{ name: string; type: string }>(snapshotReader, 'SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?', [database])) {
          const [definition] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE ${routine.type} ${quoteName(database)}.${quoteName(routine.name)}`);
          const statement = definition?.[`Create ${routine.type === 'PROCEDURE' ? 'Procedure' : 'Function'}`];
          if (!statement) continue;
          await target.query(`DROP ${routine.type} IF EXISTS ${quoteName(database)}.${quoteName(routine.name)}`);
          await target.query(withoutDefiner(String(statement)));
        }
      }
      for (const worker of workers) await worker.query('COMMIT');
      return { items, bytes, durationMs: performance.now() - started, resumed, ...(binlog ? { binlog } : {}) };
    } catch (error) {
      if (ValidationError.isInstance(error) || CancelledError.isInstance(error)) throw error;
      throw new ArmadaError('Unknown', `MySQL copy failed: ${(error as Error).message}`, { cause: error });
    } finally {
      await Promise.all(connections.map((connection) => connection.end().catch(() => undefined)));
    }
  }

  /**
   * Row counts, then chunked checksums (pt-table-checksum style: BIT_XOR of CRC32 over each row's
   * columns and NULL flags), compared table by table; the first differing chunk is named.
   */
  async verify(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: { chunkRows?: number; sample?: number; signal?: AbortSignal } = {}): Promise<VerifyReport> {
    const chunkRows = options.chunkRows ?? 20_000;
    const source = await connectTo(sourceEndpoint, 'source');
    const target = await connectTo(targetEndpoint, 'target');
    try {
      const databases = (sourceEndpoint.databases?.map(String) ?? (await rows<{ name: string }>(source, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((row) => row.name)).filter((name) => !SYSTEM_DATABASES.has(name));
      let compared = 0;
      for (const database of databases) {
        for (const plan of (await tablePlans(source, database)).tables) {
          const from = `${quoteName(plan.database)}.${quoteName(plan.table)}`;
          const rowHash = `CRC32(CONCAT_WS('#', ${plan.columns.map((column) => `${quoteName(column)}, ISNULL(${quoteName(column)})`).join(', ')}))`;
          const checksum = (condition: string) => `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(${rowHash}), 0) AS crc FROM ${from}${condition}`;
          const ranges: Array<[string, unknown[]]> = [];
          if (plan.intKey) {
            const [bounds] = await rows<{ low: string | null; high: string | null }>(source, `SELECT MIN(${quoteName(plan.intKey)}) AS low, MAX(${quoteName(plan.intKey)}) AS high FROM ${from}`);
            if (bounds?.low !== null && bounds?.low !== undefined && bounds.high !== null) {
              for (let low = BigInt(bounds.low); low <= BigInt(bounds.high); low += BigInt(chunkRows)) {
                ranges.push([` WHERE ${quoteName(plan.intKey)} >= ? AND ${quoteName(plan.intKey)} < ?`, [String(low), String(low + BigInt(chunkRows))]]);
              }
            }
            // Rows outside the source's key range exist only on the target.
            ranges.push([` WHERE ${quoteName(plan.intKey)} < ? OR ${quoteName(plan.intKey)} > ?`, [String(bounds?.low ?? 0), String(bounds?.high ?? 0)]]);
          } else ranges.push(['', []]);
          for (const [condition, values] of ranges) {
            const [[left], [right]] = await Promise.all([rows<{ n: string; crc: string }>(source, checksum(condition), values), rows<{ n: string; crc: string }>(target, checksum(condition), values)]);
            compared++;
            if (String(left?.n) !== String(right?.n) || String(left?.crc) !== String(right?.crc)) {
              const chunk = values.length > 0 ? ` chunk ${plan.intKey} ${condition.includes('OR') ? `outside ${values[0]}..${values[1]}` : `${values[0]}..${BigInt(String(values[1])) - 1n}`}` : '';
              return { ok: false, compared, firstDifference: `${plan.database}.${plan.table}${chunk}: ${left?.n} rows (checksum ${left?.crc}) on the source, ${right?.n} (checksum ${right?.crc}) on the target` };
            }
          }
        }
      }
      return { ok: true, compared };
    } finally {
      await Promise.all([source.end(), target.end()].map((closing) => closing.catch(() => undefined)));
    }
  }
}
