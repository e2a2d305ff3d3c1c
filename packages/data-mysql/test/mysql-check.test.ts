/**
 * The mover's preflight check (DataMoverV1.check) on real MariaDB servers: it finds what a copy
 * would refuse, by reading only. Judged by the servers themselves: the source's binary log does not
 * move and no read lock is taken (a write on the source during the check is not held up), nothing
 * is created on the target.
 */
import type { DataEndpoint } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover } from '../src/index.js';
import { select, sql } from './support.js';

let source: MariaDbServer;
let target: MariaDbServer;
const mover = new MysqlDataMover();
const endpoint = (server: MariaDbServer, extra: Partial<DataEndpoint> = {}): DataEndpoint => ({ host: server.host, port: server.port, user: 'root', databases: ['shop'], ...extra });
const paths = (issues: Array<{ path: string; message: string }>) => issues.map((issue) => `${issue.path}: ${issue.message}`);
const binlogPosition = async (server: MariaDbServer) => JSON.stringify(await select(server, 'SHOW MASTER STATUS'));

beforeAll(async () => {
  [source, target] = await Promise.all([startMariaDbServer(), startMariaDbServer()]);
  await sql(source, "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2)); INSERT INTO shop.orders VALUES (1, 9.99), (2, 20.00);");
  await sql(source, "CREATE USER 'reader'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, SHOW VIEW ON shop.* TO 'reader'@'%';");
  await sql(target, "CREATE USER 'weak'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT ON *.* TO 'weak'@'%';");
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('MySQL check', () => {
  it('passes a copy that would work, reading only: no binlog movement, no read lock, nothing made on the target', async () => {
    const flushes = async () => Number((await select(source, "SHOW GLOBAL STATUS LIKE 'Com_flush'"))[0]?.Value);
    const before = { source: await binlogPosition(source), target: await binlogPosition(target), flushes: await flushes() };
    expect(await mover.check(endpoint(source), endpoint(target, { databases: undefined }))).toEqual([]);
    // FLUSH TABLES WITH READ LOCK (the copy's snapshot) would count here, and stall the source's writes.
    expect({ source: await binlogPosition(source), target: await binlogPosition(target), flushes: await flushes() }).toEqual(before);
    expect(await select(target, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'")).toEqual([]);
  });

  it('names an unreachable server, refused credentials and a database the source lacks', async () => {
    expect(paths(await mover.check({ host: '127.0.0.1', port: 1, user: 'root' }, undefined))).toEqual([expect.stringMatching(/^source: .*ECONNREFUSED/)]);
    expect(paths(await mover.check(endpoint(source, { user: 'reader', password: 'wrong' }), undefined))).toEqual(['source: the user or password was refused']);
    expect(paths(await mover.check(endpoint(source, { databases: ['shop', 'nope'] }), endpoint(target)))).toEqual([expect.stringMatching(/^source\.databases\.nope: .*has no database nope/)]);
  });

  it('finds a copy onto the source itself, a target holding the database, and missing privileges', async () => {
    expect(paths(await mover.check(endpoint(source), endpoint(source, { host: 'localhost' })))).toEqual([expect.stringMatching(/^target: .*is the source server itself/)]);
    await sql(target, 'CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY)');
    try {
      expect(paths(await mover.check(endpoint(source), endpoint(target)))).toEqual(['target.shop: database shop exists with tables']);
      expect(await mover.check(endpoint(source), endpoint(target), { replaceExisting: true })).toEqual([]);
    } finally {
      await sql(target, 'DROP DATABASE shop');
    }
    const found = paths(await mover.check(endpoint(source, { user: 'reader', password: 'pw' }), endpoint(target, { user: 'weak', password: 'pw' })));
    expect(found).toContainEqual(expect.stringMatching(/^source\.privileges: .*lacks RELOAD/));
    expect(found).toContainEqual(expect.stringMatching(/^target\.privileges.*CREATE/));
    // Replication asks more of both logins.
    const replicating = paths(await mover.check(endpoint(source, { user: 'reader', password: 'pw' }), endpoint(target, { user: 'weak', password: 'pw' }), { mode: 'replicate' }));
    expect(replicating).toContainEqual(expect.stringMatching(/^source\.privileges: .*lacks REPLICATION SLAVE: the target replicates as this login/));
    expect(replicating).toContainEqual(expect.stringMatching(/^source\.privileges: .*lacks READ_ONLY ADMIN/));
    expect(replicating).toContainEqual(expect.stringMatching(/^target\.privileges: .*lacks REPLICATION SLAVE ADMIN/));
    expect(await mover.check(endpoint(source), endpoint(target, { databases: undefined }), { mode: 'replicate' })).toEqual([]);
  });
});
