/**
 * Copy, then replicate from the copy's binlog position while an application keeps writing to the
 * source, then cut over: the promoted target holds every acknowledged write, and the write
 * downtime is reported. Two real MariaDB servers started by the test.
 */
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover, MysqlReplication } from '../src/index.js';

describe('MySQL replication and cutover', () => {
  let source: MariaDbServer;
  let target: MariaDbServer;
  beforeAll(async () => {
    [source, target] = await Promise.all([startMariaDbServer(), startMariaDbServer()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('keeps every acknowledged write through copy, catch-up and cutover', async () => {
    const admin = await createConnection({ host: source.host, port: source.port, user: 'root', multipleStatements: true });
    await admin.query(`
      CREATE DATABASE app; CREATE TABLE app.events (id INT PRIMARY KEY, body VARCHAR(50) NOT NULL) ENGINE=InnoDB;
      CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw'; GRANT INSERT, SELECT ON app.* TO 'app'@'127.0.0.1';
    `);
    const seed: unknown[][] = [];
    for (let id = 1; id <= 5000; id++) seed.push([id, `seed ${id}`]);
    await admin.query('INSERT INTO app.events VALUES ?', [seed]);

    // The application writes as an ordinary account the whole time.
    const application = await createConnection({ host: source.host, port: source.port, user: 'app', password: 'app-pw' });
    const acknowledged: number[] = [];
    let writing = true;
    const writer = (async () => {
      for (let id = 100_000; writing; id++) {
        try {
          await application.query('INSERT INTO app.events VALUES (?, ?)', [id, `live ${id}`]);
          acknowledged.push(id);
        } catch {
          // Refused once the source is read-only: never acknowledged, so never lost.
        }
      }
    })();

    const endpoint = (server: MariaDbServer) => ({ host: server.host, port: server.port, user: 'root', databases: ['app'] });
    const copy = await new MysqlDataMover().copy(endpoint(source), endpoint(target), { chunkRows: 1000 });
    expect(copy.binlog).toBeDefined();
    const replication = await MysqlReplication.start(endpoint(source), endpoint(target), copy.binlog as { file: string; position: number });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await replication.status()).running).toBe(true);
    const cutover = await replication.cutover();
    writing = false;
    await writer;
    await replication.close();
    await application.end();
    await admin.end();

    expect(acknowledged.length).toBeGreaterThan(20);
    const check = await createConnection({ host: target.host, port: target.port, user: 'root' });
    const [found] = (await check.query('SELECT id FROM app.events WHERE id >= 100000')) as unknown as [Array<{ id: number }>];
    const onTarget = new Set(found.map((row) => row.id));
    expect(acknowledged.filter((id) => !onTarget.has(id))).toEqual([]);
    const [[count]] = (await check.query('SELECT COUNT(*) AS n FROM app.events')) as unknown as [[{ n: number }]];
    expect(Number(count?.n)).toBe(5000 + acknowledged.length);
    const [[readOnly]] = (await check.query('SELECT @@read_only AS ro')) as unknown as [[{ ro: number }]];
    expect(Number(readOnly?.ro)).toBe(0);
    await check.end();
    expect(cutover.writeDowntimeMs).toBeGreaterThan(0);
    expect(cutover.writeDowntimeMs).toBeLessThan(10_000);
    console.info(`MySQL cutover: write downtime ${cutover.writeDowntimeMs.toFixed(1)} ms, ${acknowledged.length} live writes carried over`);
  }, 120_000);
});
