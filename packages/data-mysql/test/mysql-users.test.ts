/**
 * Users, roles and grants copied between two real MariaDB servers: the copied accounts log in to
 * the target with their own passwords, can do what they were granted and nothing else, and
 * `SHOW GRANTS` is the same on both sides. Password hashes appear in no report, progress event or
 * checkpoint; an account the target already has is refused unless replaced; a cancelled copy
 * resumes to the same accounts.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ValidationError } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover } from '../src/index.js';

let source: MariaDbServer;
const endpoint = (server: MariaDbServer) => ({ host: server.host, port: server.port, user: 'root', databases: ['shop'] });
const ACCOUNTS = ["'reader'@'127.0.0.1'", "'writer'@'%'", "'legacy'@'%'"];
const asRoot = (server: MariaDbServer) => createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true });

async function grantsOf(server: MariaDbServer, account: string): Promise<string[]> {
  const connection = await asRoot(server);
  const [found] = (await connection.query({ sql: `SHOW GRANTS FOR ${account}`, rowsAsArray: true })) as unknown as [string[][]];
  await connection.end();
  return found.map((row) => String(row[0])).sort();
}

/** What the account may do on the server, logged in with its password. */
async function attempt(server: MariaDbServer, user: string, password: string, sql: string): Promise<string> {
  const connection = await createConnection({ host: server.host, port: server.port, user, password }).catch((error: { code: string }) => error.code);
  if (typeof connection === 'string') return connection;
  try {
    await connection.query(sql);
    return 'ok';
  } catch (error) {
    return (error as { code: string }).code;
  } finally {
    await connection.end();
  }
}

describe('MySQL mover: users and grants', () => {
  beforeAll(async () => {
    source = await startMariaDbServer();
    const connection = await asRoot(source);
    await connection.query(`
      CREATE DATABASE shop; CREATE DATABASE archive;
      CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL) ENGINE=InnoDB;
      CREATE TABLE shop.secrets (id INT PRIMARY KEY, note VARCHAR(50) NOT NULL) ENGINE=InnoDB;
      CREATE TABLE archive.old (id INT PRIMARY KEY) ENGINE=InnoDB;
      INSERT INTO shop.secrets VALUES (1, 'classified');
      CREATE ROLE auditor; GRANT SELECT ON shop.secrets TO auditor;
      CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY 'r3ader-pw'; GRANT SELECT ON shop.items TO 'reader'@'127.0.0.1';
      GRANT auditor TO 'reader'@'127.0.0.1'; SET DEFAULT ROLE auditor FOR 'reader'@'127.0.0.1';
      CREATE USER 'writer'@'%' IDENTIFIED BY 'wr1ter-pw';
      GRANT SELECT, INSERT ON shop.items TO 'writer'@'%'; GRANT SELECT (id) ON shop.secrets TO 'writer'@'%'; GRANT SELECT ON archive.* TO 'writer'@'%';
      CREATE USER 'legacy'@'%' IDENTIFIED BY 'l3gacy-pw'; GRANT SELECT ON archive.old TO 'legacy'@'%';
    `);
    const items: unknown[][] = [];
    for (let id = 1; id <= 5000; id++) items.push([id, `item ${id}`]);
    await connection.query('INSERT INTO shop.items VALUES ?', [items]);
    await connection.end();
  }, 60_000);
  afterAll(async () => {
    await source?.stop();
  });

  it('copies accounts with their passwords and grants; hashes appear nowhere; a cancelled copy resumes to the same accounts', async () => {
    const target = await startMariaDbServer();
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-mysql-users-')), 'copy.json');
    try {
      const phases: string[] = [];
      const controller = new AbortController();
      const options = { users: true, chunkRows: 1000, concurrency: 1, checkpointPath, onProgress: (event: { phase: string }) => phases.push(JSON.stringify(event)) };
      const cancelled = await new MysqlDataMover()
        .copy(endpoint(source), endpoint(target), { ...options, signal: controller.signal, onProgress: (event) => options.onProgress(event) === 2 && controller.abort() })
        .catch((caught: unknown) => caught);
      expect(CancelledError.isInstance(cancelled)).toBe(true);
      // Recorded as this copy's own before they are created: the resume does not refuse them.
      expect(JSON.parse(readFileSync(checkpointPath, 'utf8')).accounts).toEqual(expect.arrayContaining(ACCOUNTS));
      const report = await new MysqlDataMover().copy(endpoint(source), endpoint(target), options);
      expect(report.resumed).toBe(true);
      expect(report.accounts?.copied.sort()).toEqual(["'auditor'", ...ACCOUNTS].sort());
      // archive is not copied: its database grant is replayed, its table grant cannot be.
      expect(report.accounts?.skippedGrants).toEqual(["'legacy'@'%' on `archive`.`old`"]);

      for (const account of ["'auditor'", "'reader'@'127.0.0.1'", "'writer'@'%'"]) expect(await grantsOf(target, account)).toEqual(await grantsOf(source, account));
      expect(await grantsOf(target, "'legacy'@'%'")).toEqual((await grantsOf(source, "'legacy'@'%'")).filter((grant) => !grant.includes('`archive`.`old`')));

      expect(await attempt(target, 'reader', 'r3ader-pw', 'SELECT COUNT(*) FROM shop.items')).toBe('ok');
      expect(await attempt(target, 'reader', 'r3ader-pw', 'SELECT note FROM shop.secrets')).toBe('ok'); // through its default role
      expect(await attempt(target, 'reader', 'r3ader-pw', "INSERT INTO shop.items VALUES (9999, 'no')")).toBe('ER_TABLEACCESS_DENIED_ERROR');
      expect(await attempt(target, 'reader', 'wrong', 'SELECT 1')).toBe('ER_ACCESS_DENIED_ERROR');
      expect(await attempt(target, 'writer', 'wr1ter-pw', "INSERT INTO shop.items VALUES (9999, 'yes')")).toBe('ok');
      expect(await attempt(target, 'writer', 'wr1ter-pw', 'SELECT id FROM shop.secrets')).toBe('ok');
      expect(await attempt(target, 'writer', 'wr1ter-pw', 'SELECT note FROM shop.secrets')).toBe('ER_COLUMNACCESS_DENIED_ERROR');
      expect(await attempt(target, 'legacy', 'l3gacy-pw', 'SELECT 1')).toBe('ok');

      // Not a hash, not a password, in the report, the progress events or the checkpoint.
      const admin = await asRoot(source);
      const [hashes] = (await admin.query("SELECT authentication_string AS hash FROM mysql.user WHERE authentication_string <> ''")) as unknown as [Array<{ hash: string }>];
      await admin.end();
      expect(hashes.length).toBeGreaterThanOrEqual(3);
      const outputs = [JSON.stringify(report), ...phases, readFileSync(checkpointPath, 'utf8')].join('\n');
      expect(phases.some((phase) => phase.includes("users 'writer'@'%'"))).toBe(true);
      for (const secret of [...hashes.map((row) => row.hash), ...hashes.map((row) => row.hash.slice(1)), 'r3ader-pw', 'wr1ter-pw', 'l3gacy-pw']) expect(outputs).not.toContain(secret);

      // Again on the finished checkpoint: idempotent, the same grants.
      await new MysqlDataMover().copy(endpoint(source), endpoint(target), options);
      expect(await grantsOf(target, "'writer'@'%'")).toEqual(await grantsOf(source, "'writer'@'%'"));
    } finally {
      await target.stop();
    }
  }, 120_000);

  it('refuses an account the target already has, before writing anything, unless told to replace it', async () => {
    const target = await startMariaDbServer();
    try {
      const admin = await asRoot(target);
      await admin.query("CREATE USER 'writer'@'%' IDENTIFIED BY 'someone-else'");
      const error = await new MysqlDataMover().copy(endpoint(source), endpoint(target), { users: { include: ['writer'] } }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual(["target.users.'writer'@'%'"]);
      const [databases] = (await admin.query("SHOW DATABASES LIKE 'shop'")) as unknown as [unknown[]];
      expect(databases).toEqual([]);
      await admin.end();

      const report = await new MysqlDataMover().copy(endpoint(source), endpoint(target), { users: { include: ['writer'] }, replaceExisting: true });
      expect(report.accounts?.copied).toEqual(["'writer'@'%'"]);
      expect(await attempt(target, 'writer', 'someone-else', 'SELECT 1')).toBe('ER_ACCESS_DENIED_ERROR');
      expect(await attempt(target, 'writer', 'wr1ter-pw', 'SELECT COUNT(*) FROM shop.items')).toBe('ok');
      expect(await grantsOf(target, "'writer'@'%'")).toEqual(await grantsOf(source, "'writer'@'%'"));
      expect(await attempt(target, 'reader', 'r3ader-pw', 'SELECT 1')).toBe('ER_ACCESS_DENIED_ERROR'); // not included
    } finally {
      await target.stop();
    }
  }, 120_000);
});
