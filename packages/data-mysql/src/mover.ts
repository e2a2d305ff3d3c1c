/**
 * The MySQL / MariaDB data mover, on mysql2.
 *
 * Copy: every worker reads from one consistent snapshot of the source (the mydumper way: a global
 * read lock for the instant it takes each worker to start its snapshot transaction, and the binary
 * log position recorded under it). Tables are created first (foreign key checks off on the target;
 * secondary keys and foreign keys of large tables left out, added after their load), then data is
 * copied in chunks: ranges of an integer primary key, spread over the workers; tables with another
 * key, or none, are read whole by one worker. Each chunk streams from the source into one
 * `LOAD DATA LOCAL INFILE` (multi-row INSERTs sized by bytes where that cannot be used). Views,
 * triggers and routines come last, so triggers do not fire during the load; then, if asked, users
 * and their grants. Values travel as the server's own text or bytes (dates, decimals, big integers
 * and JSON as text), so nothing is rounded or shifted by a time zone on the way.
 *
 * Safety: the source is only read; a target database that holds data is refused unless the caller
 * says to replace it; a wrong address or password fails before anything is written.
 */
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
  type ReplicateOptions,
  type VerifyReport,
} from '@armada/core';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Connection as CallbackConnection } from 'mysql2';
import { createConnection, type Connection, type QueryOptions, type RowDataPacket } from 'mysql2/promise';
import { type Account, type AccountsReport, type MysqlUsersOptions, accountName, copyAccounts, existingAccounts, listAccounts, selectAccounts } from './accounts.js';
import { type DeferredPart, buildDeferred, keyFacts, splitCreateTable } from './indexes.js';
import { replicateMysql } from './replication.js';

export const MYSQL_DATA_MOVER_ID = 'mysql';
const SYSTEM_DATABASES = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

export interface MysqlCopyOptions extends CopyOptions {
  /** Rows per chunk of an integer primary key range (default 20,000). */
  chunkRows?: number;
  /** Bytes of values per INSERT statement (default 1 MiB), where INSERTs are used (see `loadData`). */
  insertBytes?: number;
  /**
   * Write each chunk with one streamed `LOAD DATA LOCAL INFILE` (default true): the server parses
   * tab-separated bytes instead of SQL, and values pass through as the source sent them, never
   * decoded. Falls back to multi-row INSERTs when the target's `local_infile` is off, and for tables
   * with BIT or spatial columns (their text form is not what LOAD DATA reads back).
   */
  loadData?: boolean;
  /**
   * Write the load to the target's binary log (default false, as myloader does): a new primary's
   * replicas are seeded from it afterwards, and logging every loaded row doubles the writes.
   */
  targetBinlog?: boolean;
  /**
   * Copy users and roles (not system accounts, nor the target endpoint's own user) with their
   * password hashes and grants, after the data (default false). An account the target already has
   * is refused unless `replaceExisting`.
   */
  users?: boolean | MysqlUsersOptions;
  /**
   * Create tables without their secondary keys (and foreign keys), and add them in one ALTER TABLE
   * per table after its load, so InnoDB builds each index by sorting. `'auto'` (the default) does
   * so for tables of at least AUTO_DEFER_ROWS rows (the source's estimate); `true` for every table.
   */
  deferIndexes?: boolean | 'auto';
}

export interface MysqlCopyReport extends CopyReport {
  /** Where the source's binary log stood at the snapshot: where replication starts from. */
  binlog?: { file: string; position: number; gtid?: string };
  /** With `users`: the accounts copied and the grants left out (names only, never hashes). */
  accounts?: AccountsReport;
}

/**
 * Below this many rows a table keeps its keys during the load: maintaining them costs next to
 * nothing there, while each deferred table costs an ALTER TABLE (about 10 ms) and two lookups,
 * which adds up over a schema of many small tables.
 */
export const AUTO_DEFER_ROWS = 10_000;

const quoteName = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}`;

/** Exact values: dates, decimals, big integers and JSON as the server's text; binary as bytes. */
const EXACT = {
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  decimalNumbers: false,
  // JSON as its stored text (MySQL's JSON type, or MariaDB's LONGTEXT flagged json), not parsed:
  // re-serialising would change its spacing. A flag, not a typeCast function: that would wrap every
  // field of every row in a call, and the row parser is the mover's hottest code.
  jsonStrings: true,
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
  /** The source's estimate of its rows (information_schema), for `deferIndexes: 'auto'`. */
  rowsEstimate: number;
  /** No column whose text form LOAD DATA would misread (BIT, spatial, vector). */
  loadable: boolean;
}

const NOT_LOADABLE = new Set(['bit', 'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'vector']);

interface Chunk {
  plan: TablePlan;
  /** [from, to) of the integer key; absent: the whole table. */
  range?: [string, string];
}

async function tablePlans(source: Connection, database: string): Promise<{ tables: TablePlan[]; views: string[] }> {
  const listed = await rows<{ name: string; kind: string; rowsEstimate: string | null }>(
    source,
    'SELECT TABLE_NAME AS name, TABLE_TYPE AS kind, TABLE_ROWS AS rowsEstimate FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME',
    [database],
  );
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
      return { database, table: entry.name, columns: own.map((column) => column.name), key: key.map((column) => column.name), rowsEstimate: Number(entry.rowsEstimate ?? 0),
        loadable: own.every((column) => !NOT_LOADABLE.has(column.type.toLowerCase())),
        ...(intKey ? { intKey } : {}) };
    });
  return { tables, views: listed.filter((entry) => entry.kind === 'VIEW').map((entry) => entry.name) };
}

/** Which chunks are copied: no secrets, only names and key ranges. */
interface Checkpoint {
  version: 1;
  source: string;
  target: string;
  done: string[];
  /** With `users`: the accounts this copy creates (names only), so a resume does not refuse them. */
  accounts?: string[];
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

const valueBytes = (row: unknown[]) => row.reduce<number>((sum, value) => sum + (value === null ? 4 : Buffer.isBuffer(value) ? value.length : String(value).length), 0);

/**
 * Streams one chunk from the snapshot into multi-row INSERTs, with one INSERT in flight while the
 * next one fills: the source's read and the target's write overlap. At most two batches and the
 * stream's buffer are in memory; the stream pauses the source connection while the writer is behind.
 */
async function streamChunk(reader: Connection, writer: Connection, chunk: Chunk, insertBytes: number, counted: (rows: number, bytes: number) => void): Promise<void> {
  const { plan } = chunk;
  const from = `${quoteName(plan.database)}.${quoteName(plan.table)}`;
  const insert = `INSERT INTO ${from} (${plan.columns.map(quoteName).join(', ')}) VALUES ?`;
  let inFlight: Promise<void> = Promise.resolve();
  let batch: unknown[][] = [];
  let batchBytes = 0;
  const send = async () => {
    await inFlight;
    if (batch.length === 0) return;
    const [values, size] = [batch, batchBytes];
    batch = [];
    batchBytes = 0;
    inFlight = writer.query(insert, [values]).then(() => counted(values.length, size));
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
async function* tabSeparated(rows: AsyncIterable<Array<Buffer | null>>, counted: (rows: number, bytes: number) => void): AsyncGenerator<Buffer> {
  const size = 256 * 1024;
  let block = Buffer.allocUnsafe(size);
  let at = 0;
  let rowsInBlock = 0;
  for await (const row of rows) {
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

/** The chunk's rows from the snapshot, ordered by key, as a stream (the promise API has none). */
function selectChunk(reader: Connection, chunk: Chunk, raw: boolean): AsyncIterable<unknown[]> {
  const { plan } = chunk;
  const order = plan.key.length > 0 ? ` ORDER BY ${plan.key.map(quoteName).join(', ')}` : '';
  const condition = chunk.range && plan.intKey ? ` WHERE ${quoteName(plan.intKey)} >= ? AND ${quoteName(plan.intKey)} < ?` : '';
  // The callback connection under the promise one: same session, same snapshot.
  const core = (reader as unknown as { connection: CallbackConnection }).connection;
  const sql = `SELECT * FROM ${quoteName(plan.database)}.${quoteName(plan.table)}${condition}${order}`;
  // raw: every value as the bytes the server sent, nothing decoded. Otherwise geometry stays bytes
  // too (the driver would parse it into points an INSERT cannot take back).
  const typeCast = raw ? false : (field: { type: string; buffer(): Buffer | null }, next: () => unknown) => (field.type === 'GEOMETRY' ? field.buffer() : next());
  return core.query({ sql, rowsAsArray: true, values: chunk.range ?? [], typeCast }).stream({ highWaterMark: 2000 }) as AsyncIterable<unknown[]>;
}

/**
 * Streams one chunk from the snapshot into one `LOAD DATA LOCAL INFILE`: the target loads while the
 * source is still sending. The source's text is utf8mb4 (the connection's character set), binary
 * columns excepted, which LOAD DATA takes byte for byte. LOCAL turns data errors into warnings, so
 * any warning fails the chunk.
 */
async function loadChunk(reader: Connection, writer: Connection, chunk: Chunk, counted: (rows: number, bytes: number) => void): Promise<void> {
  const { plan } = chunk;
  const body = Readable.from(tabSeparated(selectChunk(reader, chunk, true) as AsyncIterable<Array<Buffer | null>>, counted), { objectMode: false });
  const sql = `LOAD DATA LOCAL INFILE 'chunk' INTO TABLE ${quoteName(plan.database)}.${quoteName(plan.table)} CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${plan.columns.map(quoteName).join(', ')})`;
  const [result] = (await writer.query({ sql, infileStreamFactory: () => body } as QueryOptions)) as unknown as [{ warningStatus: number }];
  if (result.warningStatus > 0) {
    const warnings = await rows<{ Message: string }>(writer, 'SHOW WARNINGS LIMIT 1');
    throw new ArmadaError('Unknown', `LOAD DATA into ${plan.database}.${plan.table} gave ${result.warningStatus} warning(s), first: ${warnings[0]?.Message ?? 'unknown'}.`);
  }
}

/**
 * The accounts to copy, refused (before anything is written) when the target has one that is not
 * this copy's own from an earlier run, unless replaceExisting.
 */
async function plannedAccounts(control: Connection, target: Connection, targetEndpoint: DataEndpoint, options: MysqlCopyOptions, owned: string[]): Promise<Account[]> {
  if (!options.users) return [];
  const accounts = selectAccounts(await listAccounts(control, 'source'), options.users === true ? {} : options.users, targetEndpoint.user ?? 'root');
  const ours = new Set(owned);
  const clashing = (await existingAccounts(target, accounts)).filter((account) => !ours.has(accountName(account)));
  if (clashing.length > 0 && !options.replaceExisting) {
    throw new ValidationError(`The target MySQL at ${where(targetEndpoint)} already has these accounts.`, {
      issues: clashing.map((account) => ({ path: `target.users.${accountName(account)}`, message: `account ${accountName(account)} exists`, fix: 'drop it, leave it out with users.include, or pass replaceExisting: true' })),
    });
  }
  return accounts;
}

/** Whether this table is created without its secondary keys. */
const defers = (mode: MysqlCopyOptions['deferIndexes'], plan: TablePlan) => (mode === 'auto' || mode === undefined ? plan.rowsEstimate >= AUTO_DEFER_ROWS : mode);

/**
 * Runs a deferred index build. The load itself may be kept out of the target's binary log, but
 * schema is not: a replica seeded from the target's log must get the indexes too.
 */
async function buildIndexes(writer: Connection, plan: TablePlan, deferred: DeferredPart[], logged: boolean): Promise<number> {
  if (!logged) await writer.query('SET SESSION sql_log_bin = 1').catch(() => undefined);
  try {
    return await buildDeferred(writer, plan.database, plan.table, deferred);
  } finally {
    if (!logged) await writer.query('SET SESSION sql_log_bin = 0').catch(() => undefined);
  }
}

export class MysqlDataMover implements DataMoverV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id = MYSQL_DATA_MOVER_ID;
  /** Replication continues from a copy's binlog position (see replication.ts). */
  readonly replicationStartsFrom = 'copy' as const;

  replicate(source: DataEndpoint, target: DataEndpoint, options?: ReplicateOptions): Promise<DataReplication> {
    return replicateMysql(source, target, options);
  }

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
      const accounts = await plannedAccounts(control, target, targetEndpoint, options, resumed ? (checkpoint.accounts ?? []) : []);
      if (accounts.length > 0) {
        // Recorded before they are created: a copy killed while creating them still owns them on resume.
        checkpoint.accounts = accounts.map(accountName);
        await saveCheckpoint(checkpoint);
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
      // Keys left out of CREATE TABLE, per table; a resumed copy checks every table, whatever its first run did.
      const deferredOf = new Map<TablePlan, DeferredPart[]>();
      const snapshotReader = workers[0] as Connection;
      for (const database of databases) {
        const [created] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE DATABASE ${quoteName(database)}`);
        if (options.replaceExisting && !resumed) await target.query(`DROP DATABASE IF EXISTS ${quoteName(database)}`);
        await target.query(String(created?.['Create Database']).replace(/^CREATE DATABASE/, 'CREATE DATABASE IF NOT EXISTS'));
        const found = await tablePlans(snapshotReader, database);
        const facts = options.deferIndexes !== false || resumed ? await keyFacts(snapshotReader, database) : new Map();
        for (const plan of found.tables) {
          const [definition] = await rows<Record<string, string>>(snapshotReader, `SHOW CREATE TABLE ${quoteName(database)}.${quoteName(plan.table)}`);
          const createTable = String(definition?.['Create Table']);
          const tableFacts = facts.get(plan.table);
          const split = tableFacts ? splitCreateTable(createTable, tableFacts) : { create: createTable, deferred: [] };
          const deferring = split.deferred.length > 0 && defers(options.deferIndexes, plan);
          if (deferring || resumed) deferredOf.set(plan, split.deferred);
          await target.query(`USE ${quoteName(database)}`);
          await target.query((deferring ? split.create : createTable).replace(/^CREATE TABLE/, 'CREATE TABLE IF NOT EXISTS'));
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
      // LOAD DATA LOCAL needs the target's consent; without it, INSERTs.
      const [infile] = options.loadData === false ? [] : await rows<{ on: number | string }>(target, 'SELECT @@GLOBAL.local_infile AS `on`');
      const loadData = infile !== undefined && Number(infile.on) === 1;
      let items = 0;
      let bytes = 0;
      let done = 0;
      const throttle = throttleFor(options);
      let next = 0;
      const progress = (phase: string) => {
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.({ phase, items, bytes, totalItems, bytesPerSecond: seconds > 0 ? bytes / seconds : 0, ...(done > 0 ? { etaSeconds: ((totalItems - done) * seconds) / done } : {}) });
      };
      const copyChunk = async (reader: Connection, writer: Connection, chunk: Chunk) => {
        const { plan } = chunk;
        // A chunk an earlier run started but did not finish: clear what it wrote, then copy again.
        if (resumed) {
          const from = `${quoteName(plan.database)}.${quoteName(plan.table)}`;
          if (chunk.range && plan.intKey) await writer.query(`DELETE FROM ${from} WHERE ${quoteName(plan.intKey)} >= ? AND ${quoteName(plan.intKey)} < ?`, chunk.range);
          else await writer.query(`DELETE FROM ${from}`);
        }
        let chunkBytes = 0;
        const counted = (count: number, size: number) => {
          items += count;
          bytes += size;
          chunkBytes += size;
        };
        if (loadData && plan.loadable) await loadChunk(reader, writer, chunk, counted);
        else await streamChunk(reader, writer, chunk, insertBytes, counted);
        // The workers share one throttle: together they keep to its rate.
        await throttle?.take(chunkBytes, options.signal);
      };
      // A table's deferred keys are built by the worker that finishes its last chunk, while the others load on.
      const unfinished = new Map<TablePlan, number>();
      for (const chunk of chunks) unfinished.set(chunk.plan, (unfinished.get(chunk.plan) ?? 0) + 1);
      const built = new Set<TablePlan>();
      const buildIfLoaded = async (writer: Connection, plan: TablePlan) => {
        const deferred = deferredOf.get(plan);
        if ((unfinished.get(plan) ?? 0) > 0 || built.has(plan) || !deferred) return;
        built.add(plan);
        if ((await buildIndexes(writer, plan, deferred, options.targetBinlog === true)) > 0) progress(`indexes ${plan.database}.${plan.table}`);
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
          const writer = writers[index] as Connection;
          for (let chunk = chunks[next++]; chunk !== undefined; chunk = chunks[next++]) {
            if (options.signal?.aborted) throw new CancelledError('MySQL copy cancelled; resume with the same checkpoint.');
            if (!finished.has(chunkId(chunk))) {
              await copyChunk(reader, writer, chunk);
              finished.add(chunkId(chunk));
              checkpoint.done = [...finished];
              await saveCheckpoint(checkpoint);
              done++;
              progress(`${chunk.plan.database}.${chunk.plan.table}`);
            } else done++;
            unfinished.set(chunk.plan, (unfinished.get(chunk.plan) ?? 1) - 1);
            await buildIfLoaded(writer, chunk.plan);
          }
        }),
      );
      // Every worker has stopped by now; report the first failure.
      const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failure) throw failure.reason;
      // Tables without chunks (empty ones) still get their keys.
      for (const plan of deferredOf.keys()) await buildIfLoaded(writers[0] as Connection, plan);

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
      // Accounts last: table and routine grants need their objects.
      const copiedAccounts = options.users ? await copyAccounts(control, target, accounts, (name) => progress(`users ${name}`)) : undefined;
      return { items, bytes, durationMs: performance.now() - started, resumed, ...(binlog ? { binlog } : {}), ...(copiedAccounts ? { accounts: copiedAccounts } : {}) };
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
