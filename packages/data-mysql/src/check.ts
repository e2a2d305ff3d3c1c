/**
 * The MySQL mover's preflight check (DataMoverV1.check): what a copy would refuse before its first
 * write, found by reading only, without the copy's read lock (FLUSH TABLES WITH READ LOCK would
 * stall the source's writes for a check). Both servers reachable with their credentials; the
 * databases named exist on the source; source and target are not the same server; the target does
 * not hold the databases unless `replaceExisting`; then the copy's own preflight (preflight.ts:
 * privileges of both logins, packet sizes, engines, binary-log rules) on the schema as it is now.
 * Plus what only the copy's snapshot and the replication need of the source login: RELOAD for the
 * read lock, BINLOG MONITOR (REPLICATION CLIENT) for the binlog position.
 */
import { ValidationError, issuesOfError, type CheckOptions, type DataEndpoint, type ValidationIssue } from '@armada/core';
import { type MysqlCopyOptions, occupiedIssues, planAndCheckCopy } from './mover.js';
import { grantsOf } from './preflight.js';
import { type Connection, connectTo, databasesOf, rows, where } from './sql.js';

/** Enough to tell one server from another: the same host name, port and data directory are one server, whatever address reached it. */
async function identity(connection: Connection): Promise<string> {
  const [row] = await rows<{ host: string; port: number; datadir: string }>(connection, 'SELECT @@hostname AS host, @@port AS port, @@datadir AS datadir');
  return `${row?.host}:${row?.port}:${row?.datadir}`;
}

export async function checkMysql(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint | undefined, options: CheckOptions = {}): Promise<ValidationIssue[]> {
  const issues: ValidationIssue[] = [];
  const connect = (endpoint: DataEndpoint, role: 'source' | 'target') =>
    connectTo(endpoint, role).catch((error: unknown) => {
      issues.push(...issuesOfError(error, role));
      return undefined;
    });
  const source = await connect(sourceEndpoint, 'source');
  const target = targetEndpoint ? await connect(targetEndpoint, 'target') : undefined;
  try {
    if (!source) return issues;
    const databases = await databasesOf(sourceEndpoint, source);
    const present = new Set((await rows<{ name: string }>(source, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((row) => row.name));
    const missing = databases.filter((database) => !present.has(database));
    for (const database of missing) issues.push({ path: `source.databases.${database}`, message: `the source ${where(sourceEndpoint)} has no database ${database} (or the login may not see it)`, fix: 'name a database the source has' });
    const grants = await grantsOf(source);
    if (!grants.holdsGlobal('RELOAD')) {
      issues.push({ path: 'source.privileges', message: `the source login ${grants.account} lacks RELOAD: the copy's consistent snapshot starts with FLUSH TABLES WITH READ LOCK`, fix: `GRANT RELOAD ON *.* TO ${grants.account}` });
    }
    if (options.mode === 'replicate') {
      // The target replicates as the source's login, from the copy's position, and the cutover makes the source read-only.
      const needs: Array<[string[], string]> = [
        [['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'], "replication starts from the copy's binlog position (SHOW MASTER STATUS)"],
        [['REPLICATION SLAVE', 'REPLICATION REPLICA'], 'the target replicates as this login'],
        [['READ_ONLY ADMIN', 'SUPER'], 'the cutover makes the source read-only'],
      ];
      for (const [names, why] of needs) {
        if (!grants.holdsGlobal(...names)) issues.push({ path: 'source.privileges', message: `the source login ${grants.account} lacks ${names[0]}: ${why}`, fix: `GRANT ${names[0]} ON *.* TO ${grants.account}` });
      }
    }
    if (!target || !targetEndpoint || missing.length > 0) return issues;
    if (options.mode === 'replicate') {
      const targetGrants = await grantsOf(target);
      if (!targetGrants.holdsGlobal('REPLICATION SLAVE ADMIN', 'REPLICATION_SLAVE_ADMIN', 'SUPER')) {
        issues.push({ path: 'target.privileges', message: `the target login ${targetGrants.account} lacks REPLICATION SLAVE ADMIN: it runs CHANGE MASTER TO and START SLAVE`, fix: `GRANT REPLICATION SLAVE ADMIN ON *.* TO ${targetGrants.account}` });
      }
    }
    if ((await identity(source)) === (await identity(target))) {
      issues.push({ path: 'target', message: `the target ${where(targetEndpoint)} is the source server itself: the copy would overwrite what it reads`, fix: 'name the new server as the target' });
      return issues;
    }
    const occupied = options.replaceExisting ? [] : await occupiedIssues(target, databases);
    issues.push(...occupied);
    const copyOptions = { ...options.options, ...(options.replaceExisting ? { replaceExisting: true } : {}) } as MysqlCopyOptions;
    await planAndCheckCopy(source, source, target, { source: sourceEndpoint, target: targetEndpoint }, copyOptions, databases, { resumed: false, ownedAccounts: [] }).catch((error: unknown) => {
      if (!ValidationError.isInstance(error)) throw error;
      // What clashes inside a database the target already holds is said once, by the database.
      issues.push(...error.issues.filter((issue) => !occupied.some((database) => issue.path.startsWith(`${database.path}.`))));
    });
    return issues;
  } finally {
    await Promise.all([source?.end().catch(() => undefined), target?.end().catch(() => undefined)]);
  }
}
