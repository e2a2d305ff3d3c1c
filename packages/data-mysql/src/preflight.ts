/**
 * What a copy checks before its first write, so that every problem it can see is one error
 * listing them all, instead of a copy that fails halfway with half a target: the privileges of
 * both logins for what this copy will do, rows too large for the target's max_allowed_packet,
 * names the target already uses for another kind of object, storage engines and collations the
 * target lacks, and the binary-log rules for triggers, functions and history rows. It only reads
 * (SHOW, SELECT, information_schema); nothing is written on either server.
 *
 * Privileges are worked out from `SHOW GRANTS` for the session, which on MariaDB includes the
 * current role and the roles granted to it (information_schema.USER_PRIVILEGES and
 * SCHEMA_PRIVILEGES show only the user's own grants, not its roles'). A database-level grant's
 * name is a LIKE pattern (`shop\_%`), and, as the server does, only the first grant that matches a
 * database counts for each grantee (an exact name before patterns, longer literal prefixes first):
 * `SELECT ON s%.*` and `INSERT ON shop.*` give `shop` INSERT only. Global grants and table grants
 * add to it; the user's and its roles' privileges add up.
 *
 * What MariaDB 10.11 was seen to need (restricted logins on a throwaway server):
 * - CREATE DATABASE IF NOT EXISTS: CREATE, even when the database exists. DROP DATABASE: DROP.
 * - CREATE TABLE / ALTER TABLE ... ADD FOREIGN KEY: REFERENCES on the referenced table too.
 * - ALTER TABLE ... ADD KEY (deferred keys): ALTER; INDEX is not needed (only CREATE INDEX needs it).
 * - LOAD DATA LOCAL: INSERT (FILE is for server-side files only). SETVAL on a sequence: INSERT.
 * - CREATE OR REPLACE VIEW: CREATE VIEW, DROP (even when no view is replaced) and SELECT on what
 *   the view reads. A DEFINER other than the login (view, routine, trigger, event): SET USER or SUPER.
 * - DROP PROCEDURE/FUNCTION IF EXISTS: ALTER ROUTINE, even when there is none; CREATE: CREATE ROUTINE.
 * - With the binary log on and log_bin_trust_function_creators off: CREATE or DROP TRIGGER and
 *   CREATE FUNCTION need SUPER (BINLOG ADMIN does not do), and a function declared none of
 *   DETERMINISTIC, NO SQL, READS SQL DATA is refused even with SUPER, and even with sql_log_bin=0.
 * - SET sql_log_bin: SUPER or BINLOG ADMIN. Inserting history rows (system_versioning_insert_history):
 *   nothing beyond INSERT under secure_timestamp=NO; SUPER or BINLOG REPLAY under SUPER; impossible
 *   under YES.
 * - Source: SHOW CREATE VIEW needs SHOW VIEW; triggers and events are invisible (information_schema
 *   shows none) without TRIGGER and EVENT; SHOW CREATE PROCEDURE/FUNCTION gives no text unless the
 *   login is the definer or may SELECT mysql.proc; FLUSH TABLES WITH READ LOCK needs RELOAD; SHOW
 *   MASTER STATUS needs BINLOG MONITOR (REPLICATION CLIENT is its old name) or SUPER; SHOW CREATE
 *   USER and SHOW GRANTS FOR another account need SELECT on mysql.* (mysql.user alone is refused).
 * - max_allowed_packet: an INSERT larger than the target's limit is refused (the connection is
 *   dropped), but LOAD DATA LOCAL loads a row of 3 MB into a target whose limit is 1 MB: the file
 *   is read in pieces, and only statements are bounded. So only rows written by INSERT are checked.
 */
import { ValidationError, type DataEndpoint, type ValidationIssue } from '@armada/core';
import { type Connection, quoteName, rows, where } from './sql.js';
import { type TablePlan, fromClause } from './tables.js';

export interface CopyIntent {
  databases: string[];
  /** The tables of each database as the copy will write them (from tablePlans on the source). */
  tables: TablePlan[];
  /** Which kinds of schema objects the source has, per database or overall: so only the needed privileges are asked for. */
  has: { views: boolean; routines: boolean; triggers: boolean; events: boolean; sequences: boolean; versioned: boolean };
  /** DEFINER accounts that will be kept (they differ from the target login): needs SET USER / SUPER on the target. */
  keptDefiners: string[];
  /** The target's databases are dropped first (so what they hold now cannot clash). */
  replaceExisting: boolean;
  users: boolean;
  /** Rows go by LOAD DATA LOCAL (the target's local_infile already checked); tables it cannot load still go by INSERT. */
  loadData: boolean;
  deferIndexes: boolean;
  skipTargetBinlog: boolean;
  /** Bytes of values per INSERT statement (the copy's `insertBytes`, default 1 MiB). */
  insertBytes?: number;
}

export interface PreflightReport {
  /** What will work, only less well (the load written to the target's binary log, for one): said, not refused. */
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Privileges

/** One line of SHOW GRANTS, as far as privileges go. */
export interface ParsedGrant {
  grantee: string;
  /** `*` for global; otherwise the database (a LIKE pattern for database-level grants). */
  database: string;
  /** Absent: the whole database (or `*.*`). */
  table?: string;
  /** Upper case, single spaces; `ALL` for ALL [PRIVILEGES]. Column-level privileges are left out. */
  privileges: Set<string>;
  grantOption: boolean;
}

/** An identifier as SHOW GRANTS prints it: `name` (with `` for a backtick), 'name', or bare. */
function readName(text: string, at: number): [string, number] {
  const quote = text[at];
  if (quote === '`' || quote === "'" || quote === '"') {
    let value = '';
    let index = at + 1;
    while (index < text.length) {
      if (text[index] === quote) {
        if (text[index + 1] === quote) {
          value += quote;
          index += 2;
          continue;
        }
        return [value, index + 1];
      }
      if (quote !== '`' && text[index] === '\\' && index + 1 < text.length) {
        value += text[index + 1];
        index += 2;
        continue;
      }
      value += text[index];
      index++;
    }
    return [value, index];
  }
  const match = /^[^\s.@,]+/.exec(text.slice(at));
  return [match?.[0] ?? '', at + (match?.[0].length ?? 0)];
}

/** The privileges and object of a `GRANT ... ON ... TO ...` line; undefined for role, proxy and routine grants. */
export function parseGrant(line: string): ParsedGrant | undefined {
  if (!/^GRANT\s/i.test(line)) return undefined;
  // The privilege list ends at ` ON ` outside parentheses (column lists) and quotes.
  let depth = 0;
  let quote = '';
  let on = -1;
  for (let index = 6; index < line.length; index++) {
    const char = line[index] as string;
    if (quote) {
      if (char === quote) quote = '';
      continue;
    }
    if (char === '`' || char === "'") quote = char;
    else if (char === '(') depth++;
    else if (char === ')') depth--;
    else if (depth === 0 && /^\sON\s/i.test(line.slice(index, index + 4))) {
      on = index;
      break;
    } else if (depth === 0 && /^\sTO\s/i.test(line.slice(index, index + 4))) return undefined; // GRANT role TO user
  }
  if (on < 0) return undefined;
  const list = line.slice(6, on);
  let rest = line.slice(on + 4).trimStart();
  if (/^(PROCEDURE|FUNCTION|PACKAGE)\s/i.test(rest)) return undefined;
  if (/^TABLE\s/i.test(rest)) rest = rest.slice(6).trimStart();
  const [first, afterFirst] = rest[0] === '*' ? ['*', 1] : readName(rest, 0);
  let database = first;
  let table: string | undefined;
  let at = afterFirst;
  if (rest[at] === '.') {
    const [second, afterSecond] = rest[at + 1] === '*' ? ['*', at + 2] : readName(rest, at + 1);
    if (second !== '*') table = second;
    at = afterSecond;
  } else if (first !== '*') {
    // `ON name` alone is a table of the current database: not what SHOW GRANTS prints.
    return undefined;
  }
  if (first === '*') database = '*';
  const tail = rest.slice(at);
  const to = /^\s+TO\s+/i.exec(tail);
  if (!to) return undefined;
  const [user, afterUser] = readName(tail, to[0].length);
  let grantee = user;
  if (tail[afterUser] === '@') grantee = `${user}@${readName(tail, afterUser + 1)[0]}`;
  if (/^PROXY$/i.test(list.trim())) return undefined;
  const privileges = new Set<string>();
  for (const part of splitTopLevel(list)) {
    // `SELECT (id, name)`: column privileges give nothing on the whole table.
    if (part.includes('(')) continue;
    const name = part.trim().toUpperCase().replace(/\s+/g, ' ');
    privileges.add(name === 'ALL PRIVILEGES' ? 'ALL' : name);
  }
  return { grantee, database, ...(table !== undefined ? { table } : {}), privileges, grantOption: /\bGRANT OPTION\b/i.test(tail) };
}

const splitTopLevel = (text: string) => {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < text.length; index++) {
    if (text[index] === '(') depth++;
    else if (text[index] === ')') depth--;
    else if (text[index] === ',' && depth === 0) {
      parts.push(text.slice(start, index));
      start = index + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.filter((part) => part.trim().length > 0);
};

/** MariaDB's LIKE-style database pattern: `%` any run, `_` one character, `\` takes the next literally. */
export function databasePattern(pattern: string, caseInsensitive = false): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] as string;
    if (char === '\\' && index + 1 < pattern.length) source += escapeRegExp(pattern[++index] as string);
    else if (char === '%') source += '.*';
    else if (char === '_') source += '.';
    else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'is' : 's');
}
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * How specific a database grant is, as the server sorts them (sql_acl.cc, get_magic_sort): a name
 * without wildcards first, then by how far in its first wildcard (or escape) stands.
 */
const specificity = (pattern: string) => {
  const wild = pattern.search(/[%_\\]/);
  return wild < 0 ? 128 : Math.min(wild + 1, 127);
};

/** What a login may do, from its SHOW GRANTS. */
export class Grants {
  /** Global privileges of the user and its enabled roles. */
  readonly global = new Set<string>();
  globalGrantOption = false;
  /** Per grantee, its database grants most specific first: only the first that matches counts. */
  private readonly databaseGrants = new Map<string, ParsedGrant[]>();
  private readonly tableGrants: ParsedGrant[] = [];

  constructor(
    /** `'user'@'host'`, for GRANT statements in fixes. */
    readonly account: string,
    lines: string[],
    private readonly caseInsensitive = false,
  ) {
    for (const line of lines) {
      const grant = parseGrant(line);
      if (!grant) continue;
      if (grant.database === '*') {
        for (const privilege of grant.privileges) this.global.add(privilege);
        if (grant.grantOption) this.globalGrantOption = true;
      } else if (grant.table === undefined) this.databaseGrants.set(grant.grantee, [...(this.databaseGrants.get(grant.grantee) ?? []), grant]);
      else this.tableGrants.push(grant);
    }
    for (const grants of this.databaseGrants.values()) grants.sort((left, right) => specificity(right.database) - specificity(left.database));
  }

  /** A global privilege (any of the names: MariaDB's and MySQL's differ). */
  holdsGlobal(...names: string[]): boolean {
    return this.global.has('ALL') || names.some((name) => this.global.has(name));
  }

  /** Privileges in effect on a database (and one of its tables, if named). */
  on(database: string, table?: string): Set<string> {
    const found = new Set(this.global);
    const same = (left: string, right: string) => (this.caseInsensitive ? left.toLowerCase() === right.toLowerCase() : left === right);
    for (const grants of this.databaseGrants.values()) {
      const first = grants.find((grant) => databasePattern(grant.database, this.caseInsensitive).test(database));
      for (const privilege of first?.privileges ?? []) found.add(privilege);
    }
    if (table !== undefined) {
      for (const grant of this.tableGrants) if (same(grant.database, database) && same(grant.table ?? '', table)) for (const privilege of grant.privileges) found.add(privilege);
    }
    return found;
  }

  holdsOn(database: string, privilege: string, table?: string): boolean {
    const found = this.on(database, table);
    return found.has('ALL') || found.has(privilege);
  }
}

/** The session's grants: its user's, and (MariaDB) the current role's and the roles in it. */
export async function grantsOf(connection: Connection): Promise<Grants> {
  const [who] = await rows<{ user: string; role: string | null; version: string; lower: string | number }>(
    connection,
    'SELECT CURRENT_USER() AS user, CURRENT_ROLE() AS role, VERSION() AS version, @@lower_case_table_names AS lower',
  );
  const user = String(who?.user ?? '');
  const at = user.lastIndexOf('@');
  const account = at < 0 ? `'${user}'` : `'${user.slice(0, at)}'@'${user.slice(at + 1)}'`;
  let sql = 'SHOW GRANTS';
  // MySQL 8 lists an active role's privileges only when asked with USING; MariaDB's SHOW GRANTS has them.
  if (!/mariadb/i.test(String(who?.version)) && who?.role && who.role !== 'NONE') sql = `SHOW GRANTS FOR CURRENT_USER() USING ${who.role}`;
  const lines = ((await connection.query({ sql, rowsAsArray: true }))[0] as unknown as unknown[][]).map((row) => String(row[0]));
  return new Grants(account, lines, Number(who?.lower ?? 0) !== 0);
}

interface Need {
  /** Names that satisfy it (MariaDB's, MySQL's, SUPER where it does). */
  any: string[];
  /** Absent: a global privilege. */
  database?: string;
  /** Also satisfied by a grant on this table (with `database`). */
  table?: string;
  why: string;
}

/** The missing needs, grouped by where they are granted: one issue (and one GRANT) per database, one for the global ones. */
function privilegeIssues(side: 'source' | 'target', grants: Grants, needs: Need[]): ValidationIssue[] {
  const missing = new Map<string, { on: string; privileges: Map<string, Set<string>> }>();
  for (const need of needs) {
    const { database } = need;
    const held = database === undefined ? grants.holdsGlobal(...need.any) : need.any.some((name) => grants.holdsOn(database, name, need.table));
    if (held) continue;
    const on = need.database === undefined ? '*.*' : need.table !== undefined ? `${quoteName(need.database)}.${quoteName(need.table)}` : `${quoteName(need.database)}.*`;
    const entry = missing.get(on) ?? { on, privileges: new Map<string, Set<string>>() };
    const name = need.any[0] as string;
    entry.privileges.set(name, (entry.privileges.get(name) ?? new Set()).add(need.why));
    missing.set(on, entry);
  }
  return [...missing.values()].map(({ on, privileges }) => {
    const names = [...privileges.keys()];
    const what = names.map((name) => `${name} (${[...(privileges.get(name) ?? [])].join('; ')})`).join(', ');
    return {
      path: `${side}.privileges`,
      message: `the ${side} login ${grants.account} lacks ${what} on ${on === '*.*' ? 'the server' : on}`,
      fix: `GRANT ${names.join(', ')} ON ${on} TO ${grants.account}`,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Rows and max_allowed_packet

/** Types whose values an INSERT carries as hex (X'...'): twice their bytes. */
const HEX = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit', 'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'vector']);
const SPATIAL = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection']);
/** Numbers, dates and the like: no literal is longer (DECIMAL(65,30) with its sign and point). */
const SHORT_VALUE = 70;
/** Columns up to this many bytes are counted at their declared maximum; longer ones are measured. */
const MEASURE_ABOVE = 255;

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`;
/** A max_allowed_packet that takes `bytes`, with room: the next power of two in MiB (the server's maximum is 1 GiB). */
const packetFor = (bytes: number) => {
  let size = 1024 * 1024;
  while (size < bytes + 64 * 1024 && size < 1024 * 1024 * 1024) size *= 2;
  return size;
};

interface ColumnFacts {
  table: string;
  name: string;
  type: string;
  octets: number | null;
}

/**
 * The largest INSERT statement of one row of each table that goes by INSERT, where it could be
 * over `limit`: a bound from the schema first (numbers and short strings at their maximum), then,
 * only for tables whose bound is over, one `SELECT MAX(...)` of the measured lengths.
 */
async function largestInserts(source: Connection, database: string, plans: TablePlan[], limit: number): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  if (plans.length === 0) return found;
  const columns = await rows<ColumnFacts>(
    source,
    'SELECT TABLE_NAME AS `table`, COLUMN_NAME AS name, DATA_TYPE AS type, CHARACTER_OCTET_LENGTH AS octets FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?',
    [database],
  );
  for (const plan of plans) {
    const own = new Map(columns.filter((column) => column.table === plan.table).map((column) => [column.name, column]));
    const overhead = 64 + plan.database.length + plan.table.length + plan.columns.reduce((sum, name) => sum + name.length + 4, 0);
    let fixed = overhead;
    const measured: string[] = [];
    let bound = overhead;
    for (const name of plan.columns) {
      const facts = own.get(name);
      const type = String(facts?.type ?? '').toLowerCase();
      const factor = HEX.has(type) ? 2 : 1;
      // JSON on MySQL has no declared length; spatial values none either.
      const octets = SPATIAL.has(type) || (type === 'json' && facts?.octets == null) ? Number.POSITIVE_INFINITY : facts?.octets == null ? SHORT_VALUE : Number(facts.octets);
      bound += octets * factor + 4;
      if (octets > MEASURE_ABOVE) measured.push(`COALESCE(LENGTH(${quoteName(name)}), 0)${factor === 2 ? ' * 2' : ''}`);
      else fixed += octets * factor + 4;
    }
    if (bound <= limit || measured.length === 0) continue;
    const [largest] = await rows<{ bytes: string | number | null }>(source, `SELECT MAX(${measured.join(' + ')}) AS bytes FROM ${fromClause(plan)}`);
    const size = fixed + measured.length * 4 + Number(largest?.bytes ?? 0);
    if (size > limit) found.set(plan.table, size);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// The checks

const truthy = (value: unknown) => value === 1 || value === '1' || value === 'ON' || value === 'on' || value === true;

/**
 * Checks everything this copy will need before it writes anything, and throws one ValidationError
 * listing every problem found. What works only less well is returned as notes.
 */
export async function preflightMysql(source: Connection, target: Connection, endpoints: { source: DataEndpoint; target: DataEndpoint }, intent: CopyIntent): Promise<PreflightReport> {
  const issues: ValidationIssue[] = [];
  const notes: string[] = [];
  const { databases } = intent;
  const inList = databases.map(() => '?').join(', ') || "''";
  const [sourceGrants, targetGrants] = await Promise.all([grantsOf(source), grantsOf(target)]);
  const [targetVars] = await rows<{ packet: string; binlog: string | number; trust: string | number; secure: string | null; history: string | null; readOnly: string | number; version: string }>(
    target,
    'SELECT @@GLOBAL.max_allowed_packet AS packet, @@GLOBAL.log_bin AS `binlog`, @@GLOBAL.log_bin_trust_function_creators AS trust, @@GLOBAL.read_only AS readOnly, VERSION() AS version',
  );
  const mariaTarget = /mariadb/i.test(String(targetVars?.version));
  // MariaDB-only variables, asked one by one: a server without them is an answer too.
  const variable = async (connection: Connection, name: string) => (await rows<{ value: string | null }>(connection, `SELECT @@GLOBAL.${name} AS value`).catch(() => [{ value: null }]))[0]?.value ?? null;
  const [mariaSource] = await rows<{ version: string }>(source, 'SELECT VERSION() AS version');
  const sourceIsMaria = /mariadb/i.test(String(mariaSource?.version));

  // Facts of the source that the intent does not carry: foreign keys, functions and how they are declared.
  const references = await rows<{ database: string; referenced: string }>(
    source,
    `SELECT DISTINCT CONSTRAINT_SCHEMA AS \`database\`, UNIQUE_CONSTRAINT_SCHEMA AS referenced FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN (${inList})`,
    databases,
  );
  const functions = intent.has.routines
    ? await rows<{ database: string; name: string; deterministic: string; access: string }>(
        source,
        `SELECT ROUTINE_SCHEMA AS \`database\`, ROUTINE_NAME AS name, IS_DETERMINISTIC AS \`deterministic\`, SQL_DATA_ACCESS AS \`access\` FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_SCHEMA IN (${inList})`,
        databases,
      )
    : [];
  const binlogRules = truthy(targetVars?.binlog) && !truthy(targetVars?.trust);

  // What the target login must be allowed, per database.
  const targetNeeds: Need[] = [];
  const need = (list: Need[], any: string | string[], why: string, database?: string, table?: string) =>
    list.push({ any: Array.isArray(any) ? any : [any], why, ...(database !== undefined ? { database } : {}), ...(table !== undefined ? { table } : {}) });
  for (const database of databases) {
    need(targetNeeds, 'CREATE', 'CREATE DATABASE and CREATE TABLE', database);
    if (intent.replaceExisting) need(targetNeeds, 'DROP', 'replaceExisting drops the database', database);
    need(targetNeeds, 'INSERT', intent.has.sequences ? 'the rows, and SETVAL of sequences' : 'the rows', database);
    need(targetNeeds, 'DELETE', 'a resumed copy clears the chunks it had started', database);
    need(targetNeeds, 'SELECT', intent.has.views ? 'verify, and CREATE VIEW reads its tables' : 'verify reads the copy', database);
    if (intent.deferIndexes) need(targetNeeds, 'ALTER', 'deferred keys are added by ALTER TABLE', database);
    if (references.some((entry) => entry.database === database || entry.referenced === database)) need(targetNeeds, 'REFERENCES', 'foreign keys', database);
    if (intent.has.views) {
      need(targetNeeds, 'CREATE VIEW', 'views', database);
      need(targetNeeds, 'DROP', 'CREATE OR REPLACE VIEW', database);
    }
    if (intent.has.routines) {
      need(targetNeeds, 'CREATE ROUTINE', 'procedures and functions', database);
      need(targetNeeds, 'ALTER ROUTINE', 'DROP PROCEDURE/FUNCTION IF EXISTS before each', database);
    }
    if (intent.has.triggers) need(targetNeeds, 'TRIGGER', 'triggers', database);
    if (intent.has.events) need(targetNeeds, 'EVENT', 'events', database);
  }
  if (intent.users) {
    need(targetNeeds, 'CREATE USER', 'creating users and roles');
    if (!targetGrants.globalGrantOption) {
      issues.push({
        path: 'target.privileges',
        message: `the target login ${targetGrants.account} has no global GRANT OPTION: the copied accounts' grants cannot be given (it must also hold every privilege it grants)`,
        fix: `GRANT ALL PRIVILEGES ON *.* TO ${targetGrants.account} WITH GRANT OPTION, or copy without users`,
      });
    }
  }
  if (intent.keptDefiners.length > 0) need(targetNeeds, ['SET USER', 'SUPER', 'SET_USER_ID', 'SET_ANY_DEFINER'], `objects keep their DEFINER (${intent.keptDefiners.join(', ')})`);
  if (binlogRules && intent.has.triggers) need(targetNeeds, 'SUPER', 'CREATE/DROP TRIGGER while the binary log is on and log_bin_trust_function_creators is off');
  if (binlogRules && functions.length > 0) need(targetNeeds, 'SUPER', 'CREATE FUNCTION while the binary log is on and log_bin_trust_function_creators is off');
  if (intent.has.versioned) {
    const secure = String((await variable(target, 'secure_timestamp')) ?? 'NO').toUpperCase();
    const history = await variable(target, 'system_versioning_insert_history');
    if (history === null) {
      issues.push({ path: 'target.system_versioning_insert_history', message: `the target (${targetVars?.version}) cannot insert history rows of system-versioned tables`, fix: 'use MariaDB 10.11 or later as the target' });
    } else if (secure === 'YES') {
      issues.push({ path: 'target.secure_timestamp', message: 'the target runs with secure_timestamp=YES: no session may set the period of history rows, so system-versioned tables cannot be copied with their history', fix: 'restart the target with --secure-timestamp=NO (or SUPER, with SUPER or BINLOG REPLAY for the login)' });
    } else if (secure !== 'NO') {
      need(targetNeeds, ['SUPER', 'BINLOG REPLAY'], `history rows of system-versioned tables under secure_timestamp=${secure}`);
    }
  }
  issues.push(...privilegeIssues('target', targetGrants, targetNeeds));
  if (intent.skipTargetBinlog && !targetGrants.holdsGlobal('SUPER', 'BINLOG ADMIN', 'SYSTEM_VARIABLES_ADMIN', 'SESSION_VARIABLES_ADMIN') && truthy(targetVars?.binlog)) {
    notes.push(`the target login ${targetGrants.account} may not SET sql_log_bin (SUPER or BINLOG ADMIN): the load is written to the target's binary log`);
  }
  // MariaDB 10.11 took READ_ONLY ADMIN out of SUPER (seen: SUPER alone is refused by a read_only target).
  const [major = 0, minor = 0] = String(targetVars?.version).split(/[.-]/).map(Number);
  const pastReadOnly = mariaTarget ? (major * 100 + minor >= 1011 ? ['READ_ONLY ADMIN'] : ['READ_ONLY ADMIN', 'SUPER']) : ['SUPER', 'CONNECTION_ADMIN'];
  if (truthy(targetVars?.readOnly) && !targetGrants.holdsGlobal(...pastReadOnly)) {
    issues.push({ path: 'target.read_only', message: `the target is read_only and its login ${targetGrants.account} may not write past it`, fix: 'SET GLOBAL read_only = OFF on the target' });
  }

  // Functions the binary log refuses whoever creates them.
  if (binlogRules) {
    const unsafe = functions.filter((entry) => entry.deterministic !== 'YES' && !['NO SQL', 'READS SQL DATA'].includes(entry.access));
    if (unsafe.length > 0) {
      issues.push({
        path: 'target.log_bin_trust_function_creators',
        message: `the target's binary log is on, and these functions are declared none of DETERMINISTIC, NO SQL, READS SQL DATA, which the server then refuses to create (even for SUPER): ${unsafe.map((entry) => `${entry.database}.${entry.name}`).join(', ')}`,
        fix: 'SET GLOBAL log_bin_trust_function_creators = 1 on the target',
      });
    }
  }

  // What the source login must be allowed: read everything, see every object, take the snapshot.
  const sourceNeeds: Need[] = [];
  for (const database of databases) {
    const tables = intent.tables.filter((plan) => plan.database === database);
    if (tables.length === 0 || tables.some((plan) => !sourceGrants.holdsOn(database, 'SELECT', plan.table))) need(sourceNeeds, 'SELECT', 'the rows', database);
    if (intent.has.views) need(sourceNeeds, 'SHOW VIEW', 'SHOW CREATE VIEW', database);
    // Without these the source shows no triggers or events at all: asked for whether or not some were seen.
    need(sourceNeeds, 'TRIGGER', 'triggers are invisible without it', database);
    need(sourceNeeds, 'EVENT', 'events are invisible without it', database);
  }
  // A routine's text is shown to its definer, or to who may read mysql.proc (MariaDB) / has SHOW_ROUTINE (MySQL).
  if (sourceIsMaria) {
    if (databases.length > 0 && !sourceGrants.holdsGlobal('SELECT') && !sourceGrants.holdsOn('mysql', 'SELECT', 'proc')) need(sourceNeeds, 'SELECT', 'SHOW CREATE PROCEDURE/FUNCTION gives no text otherwise', 'mysql', 'proc');
  } else if (databases.length > 0) need(sourceNeeds, ['SHOW_ROUTINE', 'SELECT'], 'SHOW CREATE PROCEDURE/FUNCTION gives no text otherwise');
  need(sourceNeeds, 'RELOAD', 'FLUSH TABLES WITH READ LOCK for the snapshot');
  need(sourceNeeds, ['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'], 'SHOW MASTER STATUS: where replication starts');
  if (intent.users && !sourceGrants.holdsGlobal('SELECT')) need(sourceNeeds, 'SELECT', 'SHOW CREATE USER and SHOW GRANTS FOR', 'mysql');
  issues.push(...privilegeIssues('source', sourceGrants, sourceNeeds));

  // Rows an INSERT cannot carry. LOAD DATA LOCAL is not bounded by max_allowed_packet (see above).
  const limit = Number(targetVars?.packet ?? 0);
  const byInsert = intent.tables.filter((plan) => !intent.loadData || !plan.loadable);
  if (limit > 0 && byInsert.length > 0) {
    for (const database of databases) {
      const largest = await largestInserts(source, database, byInsert.filter((plan) => plan.database === database), limit);
      for (const [table, size] of largest) {
        const plan = byInsert.find((entry) => entry.database === database && entry.table === table);
        const why = !intent.loadData ? 'rows go by INSERT (loadData off, or local_infile off on the target)' : 'its BIT or spatial columns go by INSERT';
        issues.push({
          path: `target.${database}.${table}`,
          message: `its largest row makes an INSERT of about ${size} bytes (${mib(size)}), over the target's max_allowed_packet of ${limit} (${mib(limit)}): ${why}`,
          fix: `SET GLOBAL max_allowed_packet = ${packetFor(size)} on the target${intent.loadData || !plan?.loadable ? '' : ', or let the copy use LOAD DATA LOCAL (loadData, local_infile=ON on the target), which max_allowed_packet does not bound'}`,
        });
      }
    }
    // A batch is sent once its values reach insertBytes; as SQL text (quotes, commas, hex) it is up to about 3 times that.
    const insertBytes = intent.insertBytes ?? 1 << 20;
    if (limit < insertBytes * 3) {
      issues.push({
        path: 'target.max_allowed_packet',
        message: `the target's max_allowed_packet of ${limit} (${mib(limit)}) is too small for INSERT batches of ${insertBytes} bytes of values (statements of up to about ${insertBytes * 3} bytes), used for ${byInsert.length} table(s)`,
        fix: `SET GLOBAL max_allowed_packet = ${packetFor(insertBytes * 3)} on the target, or a smaller insertBytes (at most ${Math.floor(limit / 3)})`,
      });
    }
  }

  // Names the target already uses for another kind of object (a database that is dropped first cannot clash).
  if (!intent.replaceExisting && databases.length > 0) {
    const kindOf = (type: string) => (type === 'VIEW' || type === 'SYSTEM VIEW' ? 'view' : type === 'SEQUENCE' ? 'sequence' : type === 'SYSTEM VERSIONED' ? 'system-versioned table' : 'table');
    const listed = `SELECT TABLE_SCHEMA AS \`database\`, TABLE_NAME AS name, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${inList})`;
    const [onSource, onTarget] = await Promise.all([rows<{ database: string; name: string; type: string }>(source, listed, databases), rows<{ database: string; name: string; type: string }>(target, listed, databases)]);
    const there = new Map(onTarget.map((entry) => [`${entry.database}\u0000${entry.name}`, kindOf(entry.type)]));
    for (const entry of onSource) {
      const theirs = there.get(`${entry.database}\u0000${entry.name}`);
      const ours = kindOf(entry.type);
      if (theirs === undefined || theirs === ours) continue;
      issues.push({
        path: `target.${entry.database}.${entry.name}`,
        message: `the source's ${ours} ${entry.database}.${entry.name} would be written over the target's ${theirs} of the same name`,
        fix: `drop or rename the target's ${theirs} ${entry.database}.${entry.name}, or pass replaceExisting: true`,
      });
    }
    // A table the target has already (a resumed copy's, or someone's) must have the columns the rows are written to.
    const targetColumns = await rows<{ database: string; table: string; name: string }>(
      target,
      `SELECT TABLE_SCHEMA AS \`database\`, TABLE_NAME AS \`table\`, COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (${inList})`,
      databases,
    );
    const columnsOf = new Map<string, Set<string>>();
    for (const column of targetColumns) {
      const key = `${column.database}\u0000${column.table}`;
      columnsOf.set(key, (columnsOf.get(key) ?? new Set()).add(column.name.toLowerCase()));
    }
    for (const plan of intent.tables) {
      const key = `${plan.database}\u0000${plan.table}`;
      const have = columnsOf.get(key);
      const kind = there.get(key);
      if (!have || (kind !== 'table' && kind !== 'system-versioned table')) continue;
      // Implicit ROW_START/ROW_END of a versioned table are not in information_schema.
      const lacking = plan.columns.filter((name) => !have.has(name.toLowerCase()) && !(plan.kind === 'versioned' && /^row_(start|end)$/i.test(name)));
      if (lacking.length > 0) {
        issues.push({
          path: `target.${plan.database}.${plan.table}`,
          message: `the target's table ${plan.database}.${plan.table} has no column ${lacking.join(', ')}: it is not the source's table`,
          fix: `drop the target's ${plan.database}.${plan.table}, or pass replaceExisting: true`,
        });
      }
    }
  }

  // Storage engines the target lacks: CREATE TABLE fails under NO_ENGINE_SUBSTITUTION.
  const engines = new Set((await rows<{ engine: string }>(target, "SELECT ENGINE AS engine FROM information_schema.ENGINES WHERE SUPPORT IN ('YES', 'DEFAULT')")).map((row) => row.engine.toLowerCase()));
  const byEngine = new Map<string, string[]>();
  for (const plan of intent.tables) {
    if (!plan.engine || engines.has(plan.engine.toLowerCase())) continue;
    byEngine.set(plan.engine, [...(byEngine.get(plan.engine) ?? []), `${plan.database}.${plan.table}`]);
  }
  for (const [engine, tables] of byEngine) {
    issues.push({
      path: `target.engines.${engine}`,
      message: `the target has no ${engine} storage engine, which ${tables.join(', ')} use${tables.length === 1 ? 's' : ''}`,
      fix: mariaTarget ? `INSTALL SONAME 'ha_${engine.toLowerCase()}' on the target (if the server ships it), or change the tables' engine on the source` : `enable the ${engine} engine on the target, or change the tables' engine on the source`,
    });
  }

  // Collations (and so character sets) the source's databases, tables, columns and routines use.
  if (databases.length > 0) {
    const used = await rows<{ collation: string; users: string }>(
      source,
      `SELECT name AS \`collation\`, GROUP_CONCAT(DISTINCT owner ORDER BY owner SEPARATOR ', ') AS users FROM (
         SELECT DEFAULT_COLLATION_NAME AS name, SCHEMA_NAME AS owner FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (${inList})
         UNION ALL SELECT TABLE_COLLATION, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${inList}) AND TABLE_COLLATION IS NOT NULL
         UNION ALL SELECT COLLATION_NAME, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (${inList}) AND COLLATION_NAME IS NOT NULL
         UNION ALL SELECT DATABASE_COLLATION, CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (${inList})
       ) used GROUP BY name`,
      [...databases, ...databases, ...databases, ...databases],
    );
    const known = new Set((await rows<{ name: string }>(target, 'SELECT COLLATION_NAME AS name FROM information_schema.COLLATIONS')).map((row) => row.name.toLowerCase()));
    // MariaDB 10.6+ names utf8 as utf8mb3 and still knows the old names.
    const alias = (name: string) => name.toLowerCase().replace(/^utf8_/, 'utf8mb3_');
    for (const entry of used) {
      if (!entry.collation || known.has(entry.collation.toLowerCase()) || known.has(alias(entry.collation))) continue;
      const users = String(entry.users);
      issues.push({
        path: `target.collations.${entry.collation}`,
        message: `the target has no collation ${entry.collation}, which ${users.length > 300 ? `${users.slice(0, 300)}...` : users} use`,
        fix: 'convert those objects on the source to a collation both servers have, or choose a target version that has it',
      });
    }
  }

  if (issues.length > 0) {
    throw new ValidationError(`The copy from ${where(endpoints.source)} to ${where(endpoints.target)} cannot start: ${issues.length} problem${issues.length === 1 ? '' : 's'} found before anything was written.`, { issues });
  }
  return { notes };
}
