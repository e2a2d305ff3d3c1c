/**
 * Verify: everything a copy is responsible for, compared between the source and the target and
 * every difference listed by object. Databases (and their CREATE DATABASE), tables (their
 * SHOW CREATE TABLE text, line by line), row data, views, routines, triggers, events, sequences
 * and, when asked, accounts with their grants.
 *
 * Row data is compared chunk by chunk, both servers queried at once on `concurrency` connections
 * each. A chunk's checksum is its row count and the exact SUM of a 64-bit hash of every row: a sum
 * of multiset elements cannot cancel out the way BIT_XOR does (two equal rows XOR to zero, so
 * r1,r1 and r2,r2 look the same), and SUM over BIGINT UNSIGNED is an exact DECIMAL, so no row is
 * rounded away (checksum.ts, which the resumed copy shares).
 *
 * Nothing compared is never ok: a named database on neither side, or databases with no objects at
 * all, is an error.
 */
import { ArmadaError, CancelledError, ValidationError, type DataEndpoint, type VerifyDifference, type VerifyReport } from '@armada/core';
import { type MysqlUsersOptions, accountName, listAccounts, selectAccounts, withoutSecrets } from './accounts.js';
import { checksumQuery } from './checksum.js';
import { type KeyRange, describeRange, keyRanges } from './chunks.js';
import { events, routines, sequences, triggers, views } from './schema/index.js';
import { type Connection, connectTo, databasesOf, quoteName, rows } from './sql.js';
import { type TablePlan, fromClause, listTables, tablePlans } from './tables.js';

export interface MysqlVerifyOptions {
  /** Rows per chunk of an integer primary key (default 20,000), cut where the source's rows are. */
  chunkRows?: number;
  /** Connections per side (default 4): chunks are compared in parallel, both servers at once. */
  concurrency?: number;
  /** Also compare these accounts: SHOW CREATE USER and SHOW GRANTS (as the copy's `users`). */
  users?: boolean | MysqlUsersOptions;
  /** Stop listing differences after this many (default 100); the rest are counted in a note. */
  maxDifferences?: number;
  signal?: AbortSignal;
  /** Accepted for the DataMoverV1 interface and ignored: a MySQL verify is always complete. */
  sample?: number;
}

/** Every schema object kind, in the order their differences are listed. */
const SCHEMA_KINDS = [views, routines, triggers, events, sequences];

/** One connection to each side: a chunk is checksummed on both at once. */
interface Worker {
  source: Connection;
  target: Connection;
}

/** A unit of work on one worker; it may yield more work (a table yields its chunks). */
interface Task {
  run(worker: Worker): Promise<Task[] | undefined>;
}

/** A difference and where it sorts in the report: database, section, object, chunk. */
interface Found {
  order: number[];
  difference: VerifyDifference;
}

const showCreateTable = async (connection: Connection, database: string, table: string) =>
  String(Object.values((await rows<Record<string, string>>(connection, `SHOW CREATE TABLE ${quoteName(database)}.${quoteName(table)}`))[0] ?? {})[1] ?? '');

/** A SHOW CREATE TABLE text in parts: column lines in order, the other lines by name, the options after `)`. */
interface TableDefinition {
  columns: Array<{ name: string; line: string }>;
  /** Keys, foreign keys, checks, periods: label → line (their order carries no meaning, and a copy that adds keys after the load may print them in another). */
  others: Map<string, string>;
  /** `ENGINE=... DEFAULT CHARSET=...`, without the AUTO_INCREMENT counter. */
  options: string;
  /** PARTITION BY ... and the partitions, when partitioned. */
  partitioning: string;
  /** The next AUTO_INCREMENT value, when the server prints one. */
  autoIncrement?: bigint;
}

const unquote = (name: string) => name.replaceAll('``', '`');

function labelOf(line: string): string {
  if (line.startsWith('PRIMARY KEY')) return 'primary key';
  const key = /^(?:UNIQUE |FULLTEXT |SPATIAL |VECTOR )?(?:KEY|INDEX) `((?:[^`]|``)+)`/.exec(line);
  if (key?.[1]) return `index \`${unquote(key[1])}\``;
  const constraint = /^CONSTRAINT `((?:[^`]|``)+)` (FOREIGN KEY|CHECK)/.exec(line);
  if (constraint?.[1]) return `${constraint[2] === 'CHECK' ? 'check' : 'foreign key'} \`${unquote(constraint[1])}\``;
  if (line.startsWith('PERIOD FOR')) return 'period';
  return line;
}

export function parseCreateTable(text: string): TableDefinition {
  const lines = text.split('\n');
  const end = lines.findIndex((line, index) => index > 0 && line.startsWith(')'));
  const body = end < 0 ? [] : lines.slice(1, end);
  const columns: TableDefinition['columns'] = [];
  const others = new Map<string, string>();
  for (const raw of body) {
    const line = raw.trim().replace(/,$/, '');
    const column = /^`((?:[^`]|``)+)` /.exec(line);
    if (column?.[1]) columns.push({ name: unquote(column[1]), line });
    else others.set(labelOf(line), line);
  }
  const trailer = end < 0 ? lines.slice(1) : lines.slice(end);
  const [first = '', ...rest] = trailer;
  const counter = /\sAUTO_INCREMENT=(\d+)/.exec(first);
  return {
    columns,
    others,
    options: first.replace(/\sAUTO_INCREMENT=\d+/, '').trim(),
    partitioning: rest.join('\n').trim(),
    ...(counter?.[1] ? { autoIncrement: BigInt(counter[1]) } : {}),
  };
}

const shorten = (text: string, length = 300) => (text.length > length ? `${text.slice(0, length)}…` : text);
const sides = (source: string, target: string) => `${shorten(source)} on the source, ${shorten(target)} on the target`;

/**
 * What differs between two table definitions, one entry per column, key or option (empty: the
 * same). The AUTO_INCREMENT counter may be higher on the target (a copy sets it from the source's,
 * and rows written since move it on), never lower: ids the source has issued would be issued again.
 */
export function definitionDifferences(sourceText: string, targetText: string): string[] {
  const source = parseCreateTable(sourceText);
  const target = parseCreateTable(targetText);
  const found: string[] = [];
  const targetColumns = new Map(target.columns.map((column) => [column.name, column.line]));
  const sourceColumns = new Map(source.columns.map((column) => [column.name, column.line]));
  for (const { name, line } of source.columns) {
    const other = targetColumns.get(name);
    if (other === undefined) found.push(`column \`${name}\` missing on the target`);
    else if (other !== line) found.push(`column \`${name}\`: ${sides(line, other)}`);
  }
  for (const { name } of target.columns) if (!sourceColumns.has(name)) found.push(`column \`${name}\` only on the target`);
  if (found.length === 0) {
    const order = (definition: TableDefinition) => definition.columns.map((column) => column.name).join(', ');
    if (order(source) !== order(target)) found.push(`columns in another order: ${sides(order(source), order(target))}`);
  }
  for (const [label, line] of source.others) {
    const other = target.others.get(label);
    if (other === undefined) found.push(`${label} missing on the target${label === line ? '' : ` (${shorten(line)})`}`);
    else if (other !== line) found.push(`${label}: ${sides(line, other)}`);
  }
  for (const [label, line] of target.others) if (!source.others.has(label)) found.push(`${label} only on the target${label === line ? '' : ` (${shorten(line)})`}`);
  if (source.options !== target.options) found.push(`table options: ${sides(source.options, target.options)}`);
  if (source.partitioning !== target.partitioning) found.push(`partitioning: ${sides(source.partitioning || 'none', target.partitioning || 'none')}`);
  // No counter printed: the table has not issued an id yet, so the next one is 1.
  const sourceCounter = source.autoIncrement ?? 1n;
  const targetCounter = target.autoIncrement ?? 1n;
  if (targetCounter < sourceCounter) found.push(`AUTO_INCREMENT ${targetCounter} on the target, below ${sourceCounter} on the source: ids already issued would be issued again`);
  return found;
}


const firstColumn = async (connection: Connection, sql: string): Promise<string[]> => ((await connection.query({ sql, rowsAsArray: true }))[0] as unknown as unknown[][]).map((row) => String(row[0]));

/** `ON <object> TO` of a GRANT line, or undefined for role grants and SET DEFAULT ROLE. */
const grantObject = (grant: string) => / ON (.+?) TO /.exec(grant)?.[1];

/**
 * Whether the object a grant names is on the target. The copy leaves out grants of tables and
 * routines the target lacks (the source keeps grants of dropped tables; a database not copied has
 * none of its tables); a database or global grant is always replayed.
 */
async function grantObjectExists(target: Connection, object: string): Promise<boolean> {
  const name = String.raw`\x60((?:[^\x60]|\x60\x60)*)\x60`;
  const routine = new RegExp(String.raw`^(PROCEDURE|FUNCTION|PACKAGE(?: BODY)?) ${name}\.${name}$`).exec(object);
  if (routine?.[2] !== undefined && routine[3] !== undefined) {
    const found = await rows(target, 'SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ?', [unquote(routine[2]), unquote(routine[3])]);
    return found.length > 0;
  }
  const table = new RegExp(String.raw`^${name}\.${name}$`).exec(object);
  if (table?.[1] !== undefined && table[2] !== undefined) {
    const found = await rows(target, 'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [unquote(table[1]), unquote(table[2])]);
    return found.length > 0;
  }
  return true;
}

/** Accounts: each selected one on the target, with the same CREATE USER and the same grants. */
async function compareAccounts(worker: Worker, accountsOptions: MysqlUsersOptions, targetUser: string, found: (difference: VerifyDifference) => void, notes: string[]): Promise<number> {
  const { source, target } = worker;
  // MySQL 8 prints binary hashes as hex only when asked; MariaDB has no such variable.
  await Promise.all([source, target].map((connection) => connection.query('SET SESSION print_identified_with_as_hex = ON').catch(() => undefined)));
  const selected = selectAccounts(await listAccounts(source, 'source'), accountsOptions, targetUser);
  const present = new Set((await listAccounts(target, 'target')).map((account) => `${account.user}\u0000${account.host}`));
  for (const account of selected) {
    const object = `${account.role ? 'role' : 'user'} ${accountName(account)}`;
    if (!present.has(`${account.user}\u0000${account.host}`)) {
      found({ object, kind: 'missing', detail: `${account.role ? 'role' : 'account'} not on the target` });
      continue;
    }
    const details: string[] = [];
    if (!account.role) {
      const [[sourceCreate], [targetCreate]] = await Promise.all([firstColumn(source, `SHOW CREATE USER ${accountName(account)}`), firstColumn(target, `SHOW CREATE USER ${accountName(account)}`)]);
      if (sourceCreate !== targetCreate) {
        const [left, right] = [withoutSecrets(String(sourceCreate)), withoutSecrets(String(targetCreate))];
        details.push(left === right ? 'password differs' : `CREATE USER: ${sides(left, right)}`);
      }
    }
    const grantsOf = (connection: Connection) => firstColumn(connection, `SHOW GRANTS FOR ${accountName(account)}`);
    const [sourceGrants, targetGrants] = await Promise.all([grantsOf(source), grantsOf(target)]);
    const targetSet = new Set(targetGrants);
    const sourceSet = new Set(sourceGrants);
    for (const grant of sourceGrants) {
      if (targetSet.has(grant)) continue;
      const on = grantObject(grant);
      if (on !== undefined && !(await grantObjectExists(target, on))) {
        notes.push(`${object}: grant on ${on} not compared: that object is not on the target (the copy leaves such grants out)`);
        continue;
      }
      details.push(`grant missing on the target: ${shorten(withoutSecrets(grant))}`);
    }
    for (const grant of targetGrants) if (!sourceSet.has(grant)) details.push(`grant only on the target: ${shorten(withoutSecrets(grant))}`);
    if (details.length > 0) found({ object, kind: 'different', detail: details.join('; ') });
  }
  return selected.length;
}

/**
 * Runs tasks on the workers, each worker one task at a time, until none is left and none running
 * (a running task may add more). The first failure stops every worker after its current task.
 */
async function runTasks(workers: Worker[], tasks: Task[], signal: AbortSignal | undefined): Promise<void> {
  const queue = [...tasks];
  let running = 0;
  let failure: { error: unknown } | undefined;
  let waiting: Array<() => void> = [];
  const wakeAll = () => {
    const woken = waiting;
    waiting = [];
    for (const wake of woken) wake();
  };
  await Promise.all(
    workers.map(async (worker) => {
      for (;;) {
        if (failure) return;
        if (signal?.aborted) {
          failure = { error: new CancelledError('MySQL verify cancelled.') };
          wakeAll();
          return;
        }
        const task = queue.shift();
        if (!task) {
          if (running === 0) return wakeAll();
          await new Promise<void>((resolve) => waiting.push(resolve));
          continue;
        }
        running++;
        try {
          const more = await task.run(worker);
          if (more) queue.push(...more);
        } catch (error) {
          failure ??= { error };
        } finally {
          running--;
          wakeAll();
        }
      }
    }),
  );
  if (failure) throw failure.error;
}

const compareOrder = (left: number[], right: number[]) => {
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const difference = (left[index] ?? -1) - (right[index] ?? -1);
    if (difference !== 0) return difference;
  }
  return 0;
};

const sortedUnion = (left: string[], right: string[]) => [...new Set([...left, ...right])].sort();

interface TableComparison {
  /** `shop.orders` */
  object: string;
  /** Where its differences sort: database, section, table. */
  order: number[];
  sourcePlan: TablePlan;
  targetPlan: TablePlan;
  chunkRows: number;
  found: (order: number[], difference: VerifyDifference) => void;
  counted: () => void;
}

/**
 * One table on both sides: its definition, then its rows in the chunks of the source's key
 * (ranges open at both ends, so rows only the target has fall in one of them too), each chunk a
 * task of its own so that the chunks of one large table spread over every worker.
 */
function tableTask(table: TableComparison): Task {
  const { object, order, sourcePlan, targetPlan, found } = table;
  return {
    run: async (worker) => {
      const [sourceText, targetText] = await Promise.all([showCreateTable(worker.source, sourcePlan.database, sourcePlan.table), showCreateTable(worker.target, targetPlan.database, targetPlan.table)]);
      const details = definitionDifferences(sourceText, targetText);
      const unreadable = sourcePlan.columns.filter((column) => !targetPlan.columns.includes(column));
      if (unreadable.length > 0) details.push(`rows not compared: ${unreadable.map((column) => `\`${column}\``).join(', ')} not on the target`);
      if (details.length > 0) found([...order, -1], { object, kind: 'different', detail: details.join('; ') });
      if (unreadable.length > 0) return undefined;
      const ranges = await keyRanges(worker.source, sourcePlan, table.chunkRows);
      return ranges.map((range, chunkIndex): Task => ({ run: (chunkWorker) => compareChunk(table, range, chunkIndex, chunkWorker) }));
    },
  };
}

/** One chunk: the same range's count and checksum, read from both servers at once. */
async function compareChunk(table: TableComparison, range: KeyRange, chunkIndex: number, worker: Worker): Promise<undefined> {
  const { sourcePlan, targetPlan } = table;
  // The source's columns and expressions on both sides; each side's own FROM (FOR SYSTEM_TIME ALL where versioned).
  const sourceQuery = checksumQuery(sourcePlan, range);
  const targetQuery = checksumQuery(sourcePlan, range, fromClause(targetPlan));
  type Sum = { n: string | number; checksum: string | number };
  const [[left], [right]] = await Promise.all([rows<Sum>(worker.source, sourceQuery.sql, sourceQuery.values), rows<Sum>(worker.target, targetQuery.sql, targetQuery.values)]);
  table.counted();
  const [sourceRows, sourceSum, targetRows, targetSum] = [String(left?.n ?? 0), String(left?.checksum ?? 0), String(right?.n ?? 0), String(right?.checksum ?? 0)];
  if (sourceRows === targetRows && sourceSum === targetSum) return undefined;
  const chunk = describeRange(sourcePlan.intKey, range);
  const history = sourcePlan.kind === 'versioned' ? ' (history included)' : '';
  table.found([...table.order, chunkIndex], {
    object: chunk ? `${table.object} chunk ${chunk}` : table.object,
    kind: 'different',
    detail: `${sourceRows} rows${history} (checksum ${sourceSum}) on the source, ${targetRows} (checksum ${targetSum}) on the target`,
  });
  return undefined;
}

/**
 * Compares the target with the source: see the module comment. Differences are listed in a
 * stable order (database, then its definition, tables with their chunks in key order, schema
 * objects; accounts last), whatever order the parallel work finished in.
 */
export async function verifyMysql(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: MysqlVerifyOptions = {}): Promise<VerifyReport> {
  const chunkRows = Math.max(1, options.chunkRows ?? 20_000);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const maxDifferences = Math.max(1, options.maxDifferences ?? 100);
  const workers: Worker[] = [];
  const closeAll = () => Promise.all(workers.flatMap((worker) => [worker.source, worker.target]).map((connection) => connection.end().catch(() => undefined)));
  try {
    for (let index = 0; index < concurrency; index++) {
      const [source, target] = await Promise.allSettled([connectTo(sourceEndpoint, 'source'), connectTo(targetEndpoint, 'target')]);
      if (source.status === 'fulfilled' && target.status === 'fulfilled') workers.push({ source: source.value, target: target.value });
      else {
        for (const side of [source, target]) if (side.status === 'fulfilled') await side.value.end().catch(() => undefined);
        throw source.status === 'rejected' ? source.reason : (target as PromiseRejectedResult).reason;
      }
    }
    const control = workers[0] as Worker;
    const findings: Found[] = [];
    const notes: string[] = [];
    let compared = 0;
    const found = (order: number[], difference: VerifyDifference) => {
      findings.push({ order, difference });
    };
    const counted = () => {
      compared++;
    };

    const databases = await databasesOf(sourceEndpoint, control.source);
    const existing = async (connection: Connection) =>
      new Set((await rows<{ name: string }>(connection, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((row) => row.name));
    const [onSource, onTarget] = await Promise.all([existing(control.source), existing(control.target)]);
    const nowhere = databases.filter((database) => !onSource.has(database) && !onTarget.has(database));
    if (nowhere.length > 0) {
      throw new ValidationError(`Cannot verify: database${nowhere.length > 1 ? 's' : ''} ${nowhere.join(', ')} ${nowhere.length > 1 ? 'are' : 'is'} on neither the source nor the target.`, {
        issues: nowhere.map((database) => ({ path: `source.databases.${database}`, message: 'no such database on either side', fix: 'check the name, or leave it out of the endpoint' })),
      });
    }

    const tableTasks: Array<{ rowsEstimate: number; task: Task }> = [];
    const tasks: Task[] = [];
    for (const [databaseIndex, database] of databases.entries()) {
      const object = `database ${database}`;
      if (!onTarget.has(database)) {
        found([databaseIndex, 0], { object, kind: 'missing', detail: 'database not on the target' });
        continue;
      }
      if (!onSource.has(database)) {
        found([databaseIndex, 0], { object, kind: 'extra', detail: 'database on the target only, not on the source' });
        continue;
      }
      const showCreateDatabase = async (connection: Connection) => String(Object.values((await rows<Record<string, string>>(connection, `SHOW CREATE DATABASE ${quoteName(database)}`))[0] ?? {})[1] ?? '');
      const [sourceCreate, targetCreate] = await Promise.all([showCreateDatabase(control.source), showCreateDatabase(control.target)]);
      if (sourceCreate !== targetCreate) found([databaseIndex, 0], { object, kind: 'different', detail: sides(sourceCreate, targetCreate) });

      // Plans of both sides: the source's say what to read; the target's whether it can be read.
      const plansOf = async (connection: Connection) => {
        const tables = await listTables(connection, database);
        const createTables = new Map<string, string>();
        for (const table of tables.filter((entry) => entry.kind === 'versioned')) createTables.set(table.name, await showCreateTable(connection, database, table.name));
        return new Map((await tablePlans(connection, database, { tables, createTables })).map((plan) => [plan.table, plan]));
      };
      const [sourcePlans, targetPlans] = await Promise.all([plansOf(control.source), plansOf(control.target)]);
      const names = sortedUnion([...sourcePlans.keys()], [...targetPlans.keys()]);
      for (const [tableIndex, table] of names.entries()) {
        const sourcePlan = sourcePlans.get(table);
        const targetPlan = targetPlans.get(table);
        const tableObject = `${database}.${table}`;
        compared++;
        if (!targetPlan) {
          found([databaseIndex, 1, tableIndex], { object: tableObject, kind: 'missing', detail: `${sourcePlan?.kind === 'versioned' ? 'system-versioned table' : 'table'} not on the target` });
          continue;
        }
        if (!sourcePlan) {
          found([databaseIndex, 1, tableIndex], { object: tableObject, kind: 'extra', detail: 'table on the target only, not on the source' });
          continue;
        }
        const order = [databaseIndex, 1, tableIndex];
        tableTasks.push({ rowsEstimate: sourcePlan.rowsEstimate, task: tableTask({ object: tableObject, order, sourcePlan, targetPlan, chunkRows, found, counted }) });
      }
      for (const [kindIndex, kind] of SCHEMA_KINDS.entries()) {
        tasks.push({
          run: async (worker) => {
            const result = await kind.compare(worker.source, worker.target, database);
            compared += result.compared;
            for (const [index, difference] of result.differences.entries()) found([databaseIndex, 2, kindIndex, index], difference);
            notes.push(...result.notes);
            return undefined;
          },
        });
      }
    }
    if (options.users) {
      const usersOptions = options.users === true ? {} : options.users;
      let index = 0;
      tasks.push({
        run: async (worker) => {
          compared += await compareAccounts(worker, usersOptions, targetEndpoint.user ?? 'root', (difference) => found([databases.length, 0, index++], difference), notes);
          return undefined;
        },
      });
    }
    // Tables first, the largest first (the source's estimate): their chunks then keep every worker busy to the end.
    tableTasks.sort((left, right) => right.rowsEstimate - left.rowsEstimate);
    await runTasks(workers, [...tableTasks.map((entry) => entry.task), ...tasks], options.signal);

    if (compared === 0 && findings.length === 0) {
      throw new ValidationError(`Nothing to verify: ${databases.length === 0 ? 'the source has no databases' : `${databases.join(', ')} ${databases.length > 1 ? 'hold' : 'holds'} no tables, views, routines, triggers, events or sequences on either side`}.`, {
        issues: [{ path: 'source.databases', message: 'no objects to compare', fix: 'check that the endpoints name the databases that were copied' }],
      });
    }
    findings.sort((left, right) => compareOrder(left.order, right.order));
    // Sorted: parallel tasks add their notes in whatever order they finish.
    notes.sort();
    const differences = findings.slice(0, maxDifferences).map((finding) => finding.difference);
    if (findings.length > maxDifferences) notes.push(`${findings.length - maxDifferences} more differences not listed (maxDifferences ${maxDifferences})`);
    const first = differences[0];
    return {
      ok: findings.length === 0,
      compared,
      ...(first ? { firstDifference: `${first.object}: ${first.detail}` } : {}),
      differences,
      ...(notes.length > 0 ? { notes } : {}),
    };
  } catch (error) {
    // Ours (ValidationError, CancelledError, the accounts' errors) as they are; a driver's wrapped.
    if (ArmadaError.isInstance(error)) throw error;
    throw new ArmadaError('Unknown', `MySQL verify failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await closeAll();
  }
}
