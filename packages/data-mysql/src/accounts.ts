/**
 * Users, roles and their grants, copied with their password hashes: `SHOW CREATE USER` (or
 * `CREATE ROLE`) and every line of `SHOW GRANTS FOR`, replayed on the target once the data, views
 * and routines are there (table and routine grants need their objects).
 *
 * Password hashes exist only in the statements read from the source and sent to the target: they
 * are never in a report, a progress event, the checkpoint or an error message (a failed statement
 * is reported by account and error code, its server message scrubbed of every literal it carried).
 */
import { ArmadaError } from '@armada/core';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { literal } from './sql.js';

export interface MysqlUsersOptions {
  /**
   * Which accounts: names (`'app'`, any host) or `user@host` (`'app@%'`), or a predicate. Default:
   * every account that is not a system one.
   */
  include?: string[] | ((user: string, host: string) => boolean);
}

export interface Account {
  user: string;
  host: string;
  /** A MariaDB role (no host, created with CREATE ROLE). */
  role: boolean;
}

export interface AccountsReport {
  /** The accounts copied, as `'user'@'host'` (roles as `'role'`). */
  copied: string[];
  /**
   * Grants not replayed because their table, column or routine does not exist on the target (the
   * source keeps grants of dropped tables; a database not copied has none of its tables), named by
   * account and object, never by statement.
   */
  skippedGrants: string[];
}

/**
 * Accounts that belong to the server, not to applications: root, MariaDB's and MySQL's internal
 * accounts, Debian's maintenance account, the PUBLIC role, the anonymous user, managed services'
 * administrators.
 */
const SYSTEM_USERS = new Set(['', 'root', 'mariadb.sys', 'PUBLIC', 'debian-sys-maint', 'rdsadmin', 'rdsrepladmin']);
export const isSystemAccount = (user: string) => SYSTEM_USERS.has(user) || user.startsWith('mysql.');

export const accountName = (account: Account) => (account.role ? literal(account.user) : `${literal(account.user)}@${literal(account.host)}`);

/** Every account of a server (MariaDB says which are roles; MySQL's roles are ordinary accounts). */
export async function listAccounts(connection: Connection, role: 'source' | 'target'): Promise<Account[]> {
  const query = async (sql: string) => (await connection.query<RowDataPacket[]>(sql))[0] as Array<{ user: string; host: string; role?: string }>;
  const found = await query("SELECT User AS user, Host AS host, is_role AS role FROM mysql.user ORDER BY User, Host").catch((error: { errno?: number }) => {
    // 1054: no is_role column (MySQL).
    if (error.errno === 1054) return query('SELECT User AS user, Host AS host FROM mysql.user ORDER BY User, Host');
    throw new ArmadaError('Unknown', `Copying users needs SELECT on mysql.user on the ${role} (${(error as { code?: string }).code ?? 'refused'}).`);
  });
  return found.map((row) => ({ user: String(row.user), host: String(row.host), role: row.role === 'Y' }));
}

/** The source's accounts the caller asked for, without system accounts and the target's own login. */
export function selectAccounts(accounts: Account[], options: MysqlUsersOptions, targetUser: string): Account[] {
  const { include } = options;
  const wanted = (account: Account) => {
    if (include === undefined) return true;
    if (typeof include === 'function') return include(account.user, account.host);
    return include.some((entry) => entry === account.user || entry === `${account.user}@${account.host}`);
  };
  // The target's own login is left alone: replacing it would cut the copy's own sessions off.
  return accounts.filter((account) => !isSystemAccount(account.user) && account.user !== targetUser && wanted(account));
}

/** Which of these accounts the target already has. */
export async function existingAccounts(target: Connection, accounts: Account[]): Promise<Account[]> {
  const present = new Set((await listAccounts(target, 'target')).map((account) => `${account.user}\u0000${account.host}`));
  return accounts.filter((account) => present.has(`${account.user}\u0000${account.host}`));
}

/** Quoted literals that follow PASSWORD, USING or AS (hashes and authentication strings), and hex ones. */
const SECRET = /(?:PASSWORD|USING|\bAS)\s*\(?\s*('(?:[^'\\]|\\.|'')*'|0x[0-9a-f]+)/gi;

/** A statement with every hash and authentication string in it replaced by '***': safe to show. */
export const withoutSecrets = (statement: string) => statement.replace(SECRET, (found, value: string) => found.replace(value, "'***'"));

/** A server message safe to show: syntax errors quote the statement, so only their code is kept. */
function scrubbed(error: { errno?: number; code?: string; sqlMessage?: string }, statement: string): string {
  if (error.errno === 1064 || !error.sqlMessage) return error.code ?? 'error';
  let message = error.sqlMessage;
  for (const match of statement.matchAll(SECRET)) {
    const secret = match[1]?.replace(/^'|'$/g, '') ?? '';
    if (secret.length > 0) message = message.replaceAll(secret, '***');
  }
  return `${withoutSecrets(message)} (${error.code})`;
}

/** Runs one account statement; a failure names the account and what was done, never the statement. */
async function run(target: Connection, statement: string, what: string, account: Account): Promise<void> {
  try {
    await target.query(statement);
  } catch (error) {
    // No cause: the driver's error carries the statement text, hashes included.
    throw new ArmadaError('Unknown', `Could not ${what} for ${accountName(account)} on the target: ${scrubbed(error as { errno?: number }, statement)}.`);
  }
}

const firstValue = async (source: Connection, sql: string): Promise<string[]> => ((await source.query({ sql, rowsAsArray: true }))[0] as unknown as unknown[][]).map((row) => String(row[0]));

/** Grants of tables, columns or routines the target does not have (see AccountsReport). */
const MISSING_OBJECT = new Set([1146, 1305, 1054]);

/**
 * Recreates the accounts on the target, then replays their grants. Each account is dropped first
 * (absent, replaceable or this copy's own from an earlier run: the caller checked), so a resumed
 * copy ends with exactly the source's accounts and grants.
 */
export async function copyAccounts(source: Connection, target: Connection, accounts: Account[], onAccount?: (name: string) => void): Promise<AccountsReport> {
  // MySQL 8 prints binary hashes as hex only when asked; MariaDB has no such variable.
  await source.query('SET SESSION print_identified_with_as_hex = ON').catch(() => undefined);
  const report: AccountsReport = { copied: [], skippedGrants: [] };
  // Every account first: grants name roles, which must exist.
  for (const account of accounts) {
    const name = accountName(account);
    if (account.role) {
      await run(target, `DROP ROLE IF EXISTS ${name}`, 'drop the role', account);
      await run(target, `CREATE ROLE ${name}`, 'create the role', account);
      continue;
    }
    const [create] = await firstValue(source, `SHOW CREATE USER ${name}`).catch((error: { code?: string }) => {
      throw new ArmadaError('Unknown', `Could not read SHOW CREATE USER ${name} on the source (${error.code ?? 'error'}): MariaDB 10.2+ or MySQL 5.7+ is needed.`);
    });
    await run(target, `DROP USER IF EXISTS ${name}`, 'drop the user', account);
    await run(target, String(create), 'create the user', account);
  }
  for (const account of accounts) {
    const name = accountName(account);
    for (const grant of await firstValue(source, `SHOW GRANTS FOR ${name}`)) {
      try {
        await target.query(grant);
      } catch (error) {
        const failure = error as { errno?: number };
        if (!MISSING_OBJECT.has(failure.errno ?? 0)) throw new ArmadaError('Unknown', `Could not grant to ${name} on the target: ${scrubbed(failure, grant)}.`);
        report.skippedGrants.push(`${name} on ${/ ON (.+?) TO /.exec(grant)?.[1] ?? 'a missing object'}`);
      }
    }
    report.copied.push(name);
    onAccount?.(name);
  }
  return report;
}
