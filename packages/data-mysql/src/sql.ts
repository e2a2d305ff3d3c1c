/**
 * What every module of the mover shares about talking to a server: connections with the session
 * settings that keep values exact, quoting, and small query helpers.
 */
import { ValidationError, type DataEndpoint } from '@armada/core';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';

export type { Connection } from 'mysql2/promise';

export const SYSTEM_DATABASES = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

export const quoteName = (name: string) => `\`${name.replaceAll('`', '``')}\``;
export const qualified = (database: string, name: string) => `${quoteName(database)}.${quoteName(name)}`;
/** A string literal for statements that cannot take placeholders (SET, SHOW ... LIKE). */
export const literal = (value: string) => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
export const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}`;

/**
 * The sql_mode under which tables are created and rows written: nothing strict, so whatever the
 * source holds (zero dates, a schema made under a lax mode) is accepted as it is, and
 * NO_AUTO_VALUE_ON_ZERO so that an AUTO_INCREMENT id 0 stays 0 (mysqldump's choice). Data errors
 * are not silenced by it: every write checks its warnings. NO_ENGINE_SUBSTITUTION: a table whose
 * engine the target lacks fails instead of silently becoming another engine.
 */
export const COPY_SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION';

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

export interface ConnectOptions {
  /** mysql2's connection character set (default utf8mb4): a routine written under latin1 is sent in latin1. */
  charset?: string;
}

/**
 * A connection with the session every module relies on: time_zone UTC, so TIMESTAMP values (and
 * system-versioning periods) travel as UTC and a DST fall-back hour cannot shift them (as
 * `mysqldump --tz-utc` does), and COPY_SQL_MODE. A wrong address or password is one clear error
 * that never carries the password.
 */
export async function connectTo(endpoint: DataEndpoint, role: 'source' | 'target', options: ConnectOptions = {}): Promise<Connection> {
  let connection: Connection;
  try {
    connection = await createConnection({
      host: endpoint.host,
      port: endpoint.port,
      user: endpoint.user ?? 'root',
      password: endpoint.password ?? '',
      multipleStatements: false,
      ...(options.charset ? { charset: options.charset } : {}),
      ...EXACT,
    });
  } catch (error) {
    const failure = error as { code?: string; message: string };
    const auth = failure.code === 'ER_ACCESS_DENIED_ERROR' || failure.code === 'ER_DBACCESS_DENIED_ERROR';
    throw new ValidationError(`Cannot reach the ${role} MySQL at ${where(endpoint)}: ${auth ? 'access denied for that user and password' : (failure.code ?? failure.message)}.`, {
      issues: [{ path: role, message: auth ? 'the user or password was refused' : scrubPassword(failure.message, endpoint.password), fix: auth ? 'check the user and password of the endpoint' : 'check host and port, and that the server is running' }],
    });
  }
  await connection.query(`SET SESSION time_zone = '+00:00', sql_mode = '${COPY_SQL_MODE}'`);
  return connection;
}

/** A message with the password taken out (an empty password is nothing to hide). */
export const scrubPassword = (message: string, password: string | undefined) => (password ? message.replaceAll(password, '***') : message);

export const rows = async <T = RowDataPacket>(connection: Connection, sql: string, values: unknown[] = []) => (await connection.query<RowDataPacket[]>(sql, values))[0] as unknown as T[];

/** The databases an endpoint names, or every database but the server's own. */
export async function databasesOf(endpoint: DataEndpoint, connection: Connection): Promise<string[]> {
  const named = endpoint.databases?.map(String) ?? (await rows<{ name: string }>(connection, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME')).map((row) => row.name);
  return named.filter((name) => !SYSTEM_DATABASES.has(name));
}

/** Runs `work` with some session variables set, and puts them back after (also on failure). */
export async function withSession<T>(connection: Connection, settings: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const names = Object.keys(settings);
  if (names.length === 0) return work();
  const [saved] = await rows<Record<string, string | null>>(connection, `SELECT ${names.map((name) => `@@SESSION.${name} AS ${quoteName(name)}`).join(', ')}`);
  const assign = (values: Record<string, string | null | undefined>) =>
    connection.query(`SET SESSION ${names.map((name) => `${name} = ${values[name] === null || values[name] === undefined ? 'DEFAULT' : literal(String(values[name]))}`).join(', ')}`);
  await assign(settings);
  try {
    return await work();
  } finally {
    await assign(saved ?? {});
  }
}
