/**
 * The MySQL / MariaDB data mover, on mysql2: the order of a copy, and the plugin's face.
 *
 * A copy reads every table from one consistent snapshot shared by its workers (the mydumper way:
 * a global read lock for the instant it takes each worker to start its snapshot transaction, and
 * the binary log position recorded under it; held longer only while non-transactional tables are
 * read, as they are not in the snapshot). Then, before anything is written, the preflight checks
 * privileges, limits and names. Written in this order: databases, sequences (a DEFAULT may call
 * one), tables (secondary keys of large tables left out), routines, views (in dependency order,
 * before the data so that a broken view fails before the load); the data in chunks (chunks.ts, copy.ts); the deferred keys;
 * triggers and events (after the data, so that triggers do not fire during the load); then, if
 * asked, users and their grants. Each kind of schema object has its module in schema/, the resume
 * rules are in resume.ts, verify in verify.ts.
 *
 * Safety: the source is only read; a target database that holds data is refused unless the caller
 * says to replace it; every problem the preflight can see fails before the first write.
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
  type CheckOptions,
  type ReplicateOptions,
  type VerifyReport,
  type ValidationIssue,
} from '@armada/core';
import { type Account, type AccountsReport, type MysqlUsersOptions, accountName, copyAccounts, existingAccounts, listAccounts, selectAccounts } from './accounts.js';
import { checkMysql } from './check.js';
import { chunkChecksum, sameChecksum } from './checksum.js';
import { type KeyRange, keyRanges, rangesBetween } from './chunks.js';
import { type Chunk, chunkId, clearChunk, describeChunk, insertChunk, loadChunk } from './copy.js';
import { type DeferredPart, buildDeferred, keyFacts, splitCreateTable } from './indexes.js';
import { preflightMysql } from './preflight.js';
import { replicateMysql } from './replication.js';
import { type CopyCheckpoint, checkTablesUnchanged, definitionDigest, readCheckpoint, resumeFrom } from './resume.js';
import {
  type DefinerPolicy,
  type ObjectCopyContext,
  type StoredEvent,
  type StoredRoutine,
  type StoredSequence,
  type StoredTrigger,
  type StoredView,
  definerPolicy,
  events,
  routines,
  sequences,
  triggers,
  views,
} from './schema/index.js';
import { type Connection, connectTo, databasesOf, quoteName, rows, where } from './sql.js';
import { type TablePlan, listTables, tablePlans } from './tables.js';
import { type MysqlVerifyOptions, verifyMysql } from './verify.js';

export const MYSQL_DATA_MOVER_ID = 'mysql';

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
  /**
   * Tables of engines outside the InnoDB snapshot (MyISAM, Aria, MEMORY...). `'lock'` (default):
   * the global read lock is held until they are read, as mydumper does, so they are consistent
   * with the rest (the source takes no writes meanwhile: keep such tables small). `'warn'`: they
   * are read without the lock and named in the report's warnings, as they may differ.
   */
  nonTransactional?: 'lock' | 'warn';
}

export interface MysqlCopyReport extends CopyReport {
  /** Where the source's binary log stood at the snapshot: where replication starts from. */
  binlog?: { file: string; position: number; gtid?: string };
  /** With `users`: the accounts copied and the grants left out (names only, never hashes). */
  accounts?: AccountsReport;
  /** A resumed copy: chunks an earlier run had copied that still matched the source, and those copied again because the source had changed them. */
  rechecked?: { unchanged: number; copiedAgain: number };
}

/**
 * Below this many rows a table keeps its keys during the load: maintaining them costs next to
 * nothing there, while each deferred table costs an ALTER TABLE (about 10 ms) and two lookups,
 * which adds up over a schema of many small tables.
 */
export const AUTO_DEFER_ROWS = 10_000;

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

/** Whether this table is created without its secondary keys (never a versioned one: altering it would need system_versioning_alter_history). */
const defers = (mode: MysqlCopyOptions['deferIndexes'], plan: TablePlan) => plan.kind === 'table' && (mode === 'auto' || mode === undefined ? plan.rowsEstimate >= AUTO_DEFER_ROWS : mode);

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

interface Snapshot {
  binlog?: MysqlCopyReport['binlog'];
  /** Ends the global read lock (idempotent). */
  release(): Promise<void>;
}

/**
 * One consistent snapshot for every worker, and the binlog position that goes with it. The read
 * lock is released at once unless `hold`: then the caller releases it once the tables outside the
 * snapshot are read.
 */
async function openSnapshot(control: Connection, workers: Connection[], hold: (control: Connection) => Promise<boolean>): Promise<Snapshot> {
  let locked = true;
  const release = async () => {
    if (!locked) return;
    locked = false;
    await control.query('UNLOCK TABLES');
  };
  await control.query('FLUSH TABLES WITH READ LOCK').catch((error: { errno?: number; code?: string }) => {
    // Access denied: one clear error, as the preflight gives for every other privilege.
    if (error.errno === 1227 || error.errno === 1045) {
      throw new ValidationError('The source login cannot take the read lock that starts a consistent snapshot.', {
        issues: [{ path: 'source.privileges', message: 'FLUSH TABLES WITH READ LOCK needs RELOAD', fix: 'GRANT RELOAD, BINLOG MONITOR ON *.* TO the source login' }],
      });
    }
    throw error;
  });
  try {
    for (const worker of workers) {
      await worker.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await worker.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    }
    const [status] = await rows<{ File: string; Position: number }>(control, 'SHOW MASTER STATUS');
    const [gtid] = await rows<{ gtid: string | null }>(control, 'SELECT @@GLOBAL.gtid_binlog_pos AS gtid').catch(() => [{ gtid: null }]);
    const binlog = status ? { file: status.File, position: Number(status.Position), ...(gtid?.gtid ? { gtid: gtid.gtid } : {}) } : undefined;
    if (!(await hold(control))) await release();
    return { ...(binlog ? { binlog } : {}), release };
  } catch (error) {
    await release();
    throw error;
  }
}

/** What the source holds of one database, read from the snapshot before anything is written. */
interface SourceDatabase {
  name: string;
  createDatabase: string;
  tables: Array<{ plan: TablePlan; createTable: string; create: string; deferred: DeferredPart[]; deferring: boolean }>;
  sequences: StoredSequence[];
  routines: StoredRoutine[];
  views: StoredView[];
  triggers: StoredTrigger[];
  events: StoredEvent[];
}

async function readDatabase(reader: Connection, database: string, options: MysqlCopyOptions, resumed: boolean): Promise<SourceDatabase> {
  const [created] = await rows<Record<string, string>>(reader, `SHOW CREATE DATABASE ${quoteName(database)}`).catch((error: { errno?: number }) => {
    if (error.errno === 1049) throw new ValidationError(`The source has no database ${database}.`, { issues: [{ path: `source.databases.${database}`, message: 'no such database on the source', fix: 'name a database the source has' }] });
    throw error;
  });
  const listed = await listTables(reader, database);
  const createTables = new Map<string, string>();
  for (const { name } of listed) {
    const [definition] = await rows<Record<string, string>>(reader, `SHOW CREATE TABLE ${quoteName(database)}.${quoteName(name)}`);
    createTables.set(name, String(definition?.['Create Table']));
  }
  const plans = await tablePlans(reader, database, { tables: listed, createTables });
  const facts = options.deferIndexes !== false || resumed ? await keyFacts(reader, database) : new Map();
  const tables = plans.map((plan) => {
    const createTable = createTables.get(plan.table) ?? '';
    const tableFacts = facts.get(plan.table);
    const split = tableFacts && plan.kind === 'table' ? splitCreateTable(createTable, tableFacts) : { create: createTable, deferred: [] };
    const deferring = split.deferred.length > 0 && defers(options.deferIndexes, plan);
    return { plan, createTable, create: deferring ? split.create : createTable, deferred: split.deferred, deferring };
  });
  return {
    name: database,
    createDatabase: String(created?.['Create Database']),
    tables,
    sequences: await sequences.read(reader, database),
    routines: await routines.read(reader, database),
    views: await views.read(reader, database),
    triggers: await triggers.read(reader, database),
    events: await events.read(reader, database),
  };
}

/** DEFINERs the copy keeps that are not the target login itself: creating objects for them needs SET USER (or SUPER). */
function keptDefiners(databases: SourceDatabase[], keepsDefiner: DefinerPolicy): string[] {
  const definers = databases.flatMap((database) => [...database.routines, ...database.views, ...database.triggers, ...database.events].flatMap((object) => (object.definer ? [object.definer] : [])));
  return [...new Set(definers)].filter((definer) => definer !== keepsDefiner.login && keepsDefiner(definer));
}

/** The databases the copy writes that the target already has with tables in them. */
export async function occupiedIssues(target: Connection, databases: string[]): Promise<ValidationIssue[]> {
  const occupied = await rows<{ name: string }>(
    target,
    `SELECT TABLE_SCHEMA AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${databases.map(() => '?').join(',') || "''"}) GROUP BY TABLE_SCHEMA`,
    databases,
  );
  return occupied.map((entry) => ({ path: `target.${entry.name}`, message: `database ${entry.name} exists with tables`, fix: 'drop it, choose another target, or pass replaceExisting: true' }));
}

/** What the copy will write, read from the source (`reader`: the snapshot, or for a check any session), and what it needs of the target. */
export interface CopyPlan {
  accounts: Account[];
  sourceDatabases: SourceDatabase[];
  allTables: SourceDatabase['tables'];
  loadData: boolean;
  keepsDefiner: DefinerPolicy;
  notes: string[];
}

/**
 * Reads what the copy will write and checks, before its first write, everything it will need
 * (preflight.ts): one ValidationError listing every problem. Only reads, on either server; the
 * copy calls it on its snapshot, the mover's check (check.ts) without one.
 */
export async function planAndCheckCopy(
  reader: Connection,
  control: Connection,
  target: Connection,
  endpoints: { source: DataEndpoint; target: DataEndpoint },
  options: MysqlCopyOptions,
  databases: string[],
  resume: { resumed: boolean; ownedAccounts: string[]; checkpoint?: CopyCheckpoint },
): Promise<CopyPlan> {
  const accounts = await plannedAccounts(control, target, endpoints.target, options, resume.ownedAccounts);
  const sourceDatabases: SourceDatabase[] = [];
  for (const database of databases) sourceDatabases.push(await readDatabase(reader, database, options, resume.resumed));
  const allTables = sourceDatabases.flatMap((database) => database.tables);
  // A resumed copy refuses tables redefined since it began, before anything else is said of them.
  if (resume.resumed && resume.checkpoint) checkTablesUnchanged(resume.checkpoint, new Map(allTables.map((table) => [`${table.plan.database}.${table.plan.table}`, definitionDigest(table.createTable)])));
  const [infile] = options.loadData === false ? [] : await rows<{ on: number | string }>(target, 'SELECT @@GLOBAL.local_infile AS `on`');
  // LOAD DATA LOCAL needs the target's consent; without it, INSERTs.
  const loadData = infile !== undefined && Number(infile.on) === 1;
  const keepsDefiner = await definerPolicy(target, accounts.map(accountName));
  const { notes } = await preflightMysql(control, target, endpoints, {
    databases,
    tables: allTables.map((table) => table.plan),
    has: {
      views: sourceDatabases.some((database) => database.views.length > 0),
      routines: sourceDatabases.some((database) => database.routines.length > 0),
      triggers: sourceDatabases.some((database) => database.triggers.length > 0),
      events: sourceDatabases.some((database) => database.events.length > 0),
      sequences: sourceDatabases.some((database) => database.sequences.length > 0),
      versioned: allTables.some((table) => table.plan.kind === 'versioned'),
    },
    keptDefiners: keptDefiners(sourceDatabases, keepsDefiner),
    replaceExisting: options.replaceExisting === true && !resume.resumed,
    users: accounts.length > 0,
    loadData,
    deferIndexes: allTables.some((table) => table.deferring),
    skipTargetBinlog: options.targetBinlog !== true,
  });
  return { accounts, sourceDatabases, allTables, loadData, keepsDefiner, notes };
}

export class MysqlDataMover implements DataMoverV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id = MYSQL_DATA_MOVER_ID;
  /** Replication continues from a copy's binlog position (see replication.ts). */
  readonly replicationStartsFrom = 'copy' as const;

  replicate(source: DataEndpoint, target: DataEndpoint, options?: ReplicateOptions): Promise<DataReplication> {
    return replicateMysql(source, target, options);
  }

  check(source: DataEndpoint, target: DataEndpoint | undefined, options?: CheckOptions): Promise<ValidationIssue[]> {
    return checkMysql(source, target, options);
  }

  async copy(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: MysqlCopyOptions = {}): Promise<MysqlCopyReport> {
    const started = performance.now();
    const concurrency = Math.max(1, options.concurrency ?? 4);
    const chunkRows = options.chunkRows ?? 20_000;
    const insertBytes = options.insertBytes ?? 1 << 20;
    const control = await connectTo(sourceEndpoint, 'source');
    const connections: Connection[] = [control];
    const warnings: string[] = [];
    let snapshot: Snapshot | undefined;
    try {
      const target = await connectTo(targetEndpoint, 'target');
      connections.push(target);
      const databases = await databasesOf(sourceEndpoint, control);
      const { checkpoint, resumed } = resumeFrom(await readCheckpoint(options.checkpointPath), where(sourceEndpoint), where(targetEndpoint));
      const finished = new Set(checkpoint.done);
      // Workers finish chunks concurrently: one writer, in order, so a later list is never overwritten by an earlier one.
      const saveCheckpoint = serialJsonWriter(options.checkpointPath);
      // Refuse a target that holds data before anything is written (a resumed copy's own aside).
      const occupied = options.replaceExisting || resumed ? [] : await occupiedIssues(target, databases);
      if (occupied.length > 0) throw new ValidationError(`The target MySQL at ${where(targetEndpoint)} already has these databases.`, { issues: occupied });

      const workers: Connection[] = [];
      for (let index = 0; index < concurrency; index++) workers.push(await connectTo(sourceEndpoint, 'source'));
      connections.push(...workers);
      const lockNonTransactional = options.nonTransactional !== 'warn';
      snapshot = await openSnapshot(control, workers, async (locked) => {
        if (!lockNonTransactional) return false;
        const [found] = await rows<{ n: number }>(
          locked,
          `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${databases.map(() => '?').join(',') || "''"}) AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND ENGINE NOT IN ('InnoDB', 'RocksDB', 'TokuDB')`,
          databases,
        );
        return Number(found?.n ?? 0) > 0;
      });
      const snapshotReader = workers[0] as Connection;

      // Everything the copy writes, read from the snapshot first; then checked before the first write.
      const { accounts, sourceDatabases, allTables, loadData, keepsDefiner } = await planAndCheckCopy(
        snapshotReader,
        control,
        target,
        { source: sourceEndpoint, target: targetEndpoint },
        options,
        databases,
        { resumed, ownedAccounts: resumed ? (checkpoint.accounts ?? []) : [], checkpoint },
      );
      if (!lockNonTransactional) {
        const outside = allTables.filter((table) => !table.plan.transactional).map((table) => `${table.plan.database}.${table.plan.table} (${table.plan.engine})`);
        if (outside.length > 0) warnings.push(`read outside the snapshot, so they may differ from the rest: ${outside.join(', ')}`);
      }

      if (accounts.length > 0) {
        // Recorded before they are created: a copy killed while creating them still owns them on resume.
        checkpoint.accounts = accounts.map(accountName);
      }
      // Chunk boundaries: the first run's, kept in the checkpoint, so a resume cuts the tables the same way.
      const chunks: Chunk[] = [];
      for (const { plan, createTable } of allTables) {
        const name = `${plan.database}.${plan.table}`;
        let ranges: KeyRange[] | undefined;
        if (plan.intKey) {
          const recorded = checkpoint.tables[name];
          ranges = recorded ? rangesBetween(recorded.boundaries) : await keyRanges(snapshotReader, plan, chunkRows);
          checkpoint.tables[name] = { definition: definitionDigest(createTable), boundaries: ranges.slice(1).map((range) => range.from as string) };
        } else checkpoint.tables[name] = { definition: definitionDigest(createTable), boundaries: [] };
        for (const range of ranges ?? [undefined]) chunks.push({ plan, ...(range ? { range } : {}) });
      }
      // Tables outside the snapshot first, so the read lock is held no longer than they take.
      chunks.sort((left, right) => Number(left.plan.transactional) - Number(right.plan.transactional));
      await saveCheckpoint(checkpoint);

      // Schema: databases and tables first, with foreign key checks off so their order does not matter.
      await target.query('SET SESSION FOREIGN_KEY_CHECKS = 0');
      const context: ObjectCopyContext = {
        source: snapshotReader,
        target,
        openTarget: (charset) => connectTo(targetEndpoint, 'target', { charset }),
        keepsDefiner,
        warn: (message) => warnings.push(message),
      };
      for (const database of sourceDatabases) {
        if (options.replaceExisting && !resumed) await target.query(`DROP DATABASE IF EXISTS ${quoteName(database.name)}`);
        await target.query(database.createDatabase.replace(/^CREATE DATABASE/, 'CREATE DATABASE IF NOT EXISTS'));
        await target.query(`USE ${quoteName(database.name)}`);
        // Sequences first: a table's DEFAULT may call NEXTVAL of one.
        await sequences.create(database.name, database.sequences, context);
        await target.query(`USE ${quoteName(database.name)}`);
        for (const table of database.tables) await target.query(table.create.replace(/^CREATE TABLE/, 'CREATE TABLE IF NOT EXISTS'));
        await routines.create(database.name, database.routines, context);
        await views.create(database.name, database.views, context);
      }

      // Progress is counted in chunks (their row counts are not known before they are read).
      const totalChunks = chunks.length;
      let items = 0;
      let bytes = 0;
      let done = 0;
      const rechecked = { unchanged: 0, copiedAgain: 0 };
      const throttle = throttleFor(options);
      let next = 0;
      const progress = (phase: string) => {
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.({ phase, items, bytes, parts: { done, total: totalChunks }, ...(totalChunks > 0 ? { fraction: done / totalChunks } : {}), bytesPerSecond: seconds > 0 ? bytes / seconds : 0, ...(done > 0 ? { etaSeconds: ((totalChunks - done) * seconds) / done } : {}) });
      };
      const copyChunk = async (reader: Connection, writer: Connection, chunk: Chunk) => {
        // A chunk an earlier run started: clear what it wrote, then copy again.
        if (resumed) await clearChunk(writer, chunk);
        let chunkBytes = 0;
        const counted = (count: number, size: number) => {
          items += count;
          bytes += size;
          chunkBytes += size;
        };
        if (loadData && chunk.plan.loadable) await loadChunk(reader, writer, chunk, counted);
        else await insertChunk(reader, writer, chunk, insertBytes, counted);
        // The workers share one throttle: together they keep to its rate.
        await throttle?.take(chunkBytes, options.signal);
      };
      // A chunk an earlier run finished: still the source's, as the new snapshot has it?
      const stillCurrent = async (reader: Connection, writer: Connection, chunk: Chunk) => sameChecksum(await chunkChecksum(reader, chunk.plan, chunk.range), await chunkChecksum(writer, chunk.plan, chunk.range));
      // A table's deferred keys are built by the worker that finishes its last chunk, while the others load on.
      const unfinished = new Map<TablePlan, number>();
      for (const chunk of chunks) unfinished.set(chunk.plan, (unfinished.get(chunk.plan) ?? 0) + 1);
      let outsideSnapshot = chunks.filter((chunk) => !chunk.plan.transactional).length;
      const deferredOf = new Map(allTables.filter((table) => table.deferring || (resumed && table.deferred.length > 0)).map((table) => [table.plan, table.deferred]));
      const built = new Set<TablePlan>();
      const buildIfLoaded = async (writer: Connection, plan: TablePlan) => {
        const deferred = deferredOf.get(plan);
        if ((unfinished.get(plan) ?? 0) > 0 || built.has(plan) || !deferred) return;
        built.add(plan);
        if ((await buildIndexes(writer, plan, deferred, options.targetBinlog === true)) > 0) progress(`indexes ${plan.database}.${plan.table}`);
      };
      // Each worker has its snapshot reader and its own target writer, with checks off for the load.
      const writers: Connection[] = [];
      const versioned = allTables.some((table) => table.plan.kind === 'versioned');
      for (let index = 0; index < workers.length; index++) {
        const writer = await connectTo(targetEndpoint, 'target');
        connections.push(writer);
        // UNIQUE_CHECKS = 0 with FOREIGN_KEY_CHECKS = 0 makes MariaDB load an empty table in bulk
        // mode; a range read or DELETE of that table meanwhile (a resumed copy clears and checks
        // chunks while others load) hangs both for good (seen on 10.11). Resumed: no bulk mode.
        await writer.query(`SET SESSION FOREIGN_KEY_CHECKS = 0, UNIQUE_CHECKS = ${resumed ? 1 : 0}`);
        // Needs SUPER (or BINLOG ADMIN): without it the load is logged, which is only slower.
        if (!options.targetBinlog) await writer.query('SET SESSION sql_log_bin = 0').catch(() => undefined);
        // History rows keep their own period (MariaDB 10.11+; the preflight has checked it).
        if (versioned) await writer.query('SET SESSION system_versioning_insert_history = 1');
        writers.push(writer);
      }
      const outcomes = await Promise.allSettled(
        workers.map(async (reader, index) => {
          const writer = writers[index] as Connection;
          for (let chunk = chunks[next++]; chunk !== undefined; chunk = chunks[next++]) {
            if (options.signal?.aborted) throw new CancelledError('MySQL copy cancelled; resume with the same checkpoint.');
            const id = chunkId(chunk);
            try {
              if (!finished.has(id)) {
                await copyChunk(reader, writer, chunk);
                finished.add(id);
                checkpoint.done = [...finished];
                await saveCheckpoint(checkpoint);
              } else if (await stillCurrent(reader, writer, chunk)) rechecked.unchanged++;
              else {
                await copyChunk(reader, writer, chunk);
                rechecked.copiedAgain++;
              }
            } catch (error) {
              if (CancelledError.isInstance(error) || ValidationError.isInstance(error)) throw error;
              throw new ArmadaError('Unknown', `MySQL copy failed at ${describeChunk(chunk)}: ${(error as Error).message}`, { cause: error });
            }
            done++;
            progress(`${chunk.plan.database}.${chunk.plan.table}`);
            if (!chunk.plan.transactional && --outsideSnapshot === 0) await snapshot?.release();
            unfinished.set(chunk.plan, (unfinished.get(chunk.plan) ?? 1) - 1);
            await buildIfLoaded(writer, chunk.plan);
          }
        }),
      );
      // Every worker has stopped by now; report the first failure.
      const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failure) throw failure.reason;
      await snapshot.release();
      // Tables without chunks still get their keys.
      for (const plan of deferredOf.keys()) await buildIfLoaded(writers[0] as Connection, plan);

      // Triggers and events after the data: a trigger must not fire for the copied rows.
      for (const database of sourceDatabases) {
        await target.query(`USE ${quoteName(database.name)}`);
        await triggers.create(database.name, database.triggers, context);
        await events.create(database.name, database.events, context);
      }
      for (const worker of workers) await worker.query('COMMIT');
      // Accounts last: table and routine grants need their objects.
      await saveCheckpoint(checkpoint);
      const copiedAccounts = accounts.length > 0 ? await copyAccounts(control, target, accounts, (name) => progress(`users ${name}`)) : undefined;
      checkpoint.finished = true;
      await saveCheckpoint(checkpoint);
      return {
        items,
        bytes,
        durationMs: performance.now() - started,
        resumed,
        ...(snapshot.binlog ? { binlog: snapshot.binlog } : {}),
        ...(copiedAccounts ? { accounts: copiedAccounts } : {}),
        ...(resumed ? { rechecked } : {}),
        ...(warnings.length > 0 ? { warnings } : {}),
      };
    } catch (error) {
      if (ValidationError.isInstance(error) || CancelledError.isInstance(error) || (ArmadaError.isInstance(error) && error.message.startsWith('MySQL copy failed'))) throw error;
      throw new ArmadaError('Unknown', `MySQL copy failed: ${(error as Error).message}`, { cause: error });
    } finally {
      await snapshot?.release().catch(() => undefined);
      await Promise.all(connections.map((connection) => connection.end().catch(() => undefined)));
    }
  }

  /**
   * A complete, independent comparison: databases, table definitions, row data (multiset checksums
   * per chunk), views, routines, triggers, events, sequences and, with `users`, accounts and grants.
   * Every difference is listed by object; zero objects compared is an error.
   */
  verify(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: MysqlVerifyOptions = {}): Promise<VerifyReport> {
    return verifyMysql(sourceEndpoint, targetEndpoint, options);
  }
}
