/**
 * The MySQL mover between two real MariaDB servers started by the test: every kind of value the
 * story meets, a table without a primary key, foreign keys, a view, a trigger and a procedure.
 * Verify passes and `mysqldump` of both sides compares equal.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ValidationError } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover } from '../src/index.js';

let source: MariaDbServer;
let target: MariaDbServer;
const endpoint = (server: MariaDbServer) => ({ host: server.host, port: server.port, user: 'root', databases: ['shop'] });
const dump = (server: MariaDbServer) =>
  execFileSync('mysqldump', ['--no-defaults', '-h', server.host, '-P', String(server.port), '-u', 'root', '--skip-dump-date', '--skip-comments', '--order-by-primary', '--routines', '--triggers', '--databases', 'shop'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });

async function populate(server: MariaDbServer): Promise<void> {
  const connection = await createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true });
  await connection.query(`
    CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    USE shop;
    CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, note TEXT NULL, born DATE NULL, seen DATETIME(6) NULL, avatar BLOB NULL) ENGINE=InnoDB;
    CREATE TABLE orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(12,4) NOT NULL, details JSON NULL, placed TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
      KEY by_customer (customer_id), CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB;
    CREATE TABLE audit_log (happened DATETIME NOT NULL, message VARCHAR(255) NOT NULL, ratio DOUBLE NULL) ENGINE=InnoDB;
    CREATE TABLE places (id INT PRIMARY KEY, flags BIT(10) NULL, spot POINT NULL) ENGINE=InnoDB;
    INSERT INTO places VALUES (1, b'1000000001', ST_GeomFromText('POINT(1.5 -2.25)')), (2, NULL, NULL), (3, b'0', ST_GeomFromText('POINT(0 0)'));
    CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit_log (happened, message, ratio) VALUES (NOW(), CONCAT('order ', NEW.id), NULL);
    CREATE PROCEDURE order_count(OUT n INT) SELECT COUNT(*) INTO n FROM orders;
  `);
  const customers: unknown[][] = [];
  for (let id = 1; id <= 3000; id++) {
    customers.push([id, id % 7 === 0 ? `Zoë 🚀 ${id}` : `Customer ${id}`, id % 5 === 0 ? null : `note "${id}" it's \\ fine`, id % 3 === 0 ? null : '1984-02-29', id % 4 === 0 ? null : '2024-07-01 12:34:56.123456', id % 9 === 0 ? Buffer.from([0, 255, id % 256, 10, 13]) : null]);
  }
  await connection.query('INSERT INTO shop.customers (id, name, note, born, seen, avatar) VALUES ?', [customers]);
  const orders: unknown[][] = [];
  for (let id = 1; id <= 40_000; id++) orders.push([String(10_000_000_000n + BigInt(id)), (id % 3000) + 1, `${id}.1234`, id % 10 === 0 ? null : JSON.stringify({ items: [id, 'ünïcode'], gift: id % 2 === 0 }), '2024-01-01 00:00:00']);
  await connection.query('INSERT INTO shop.orders (id, customer_id, total, details, placed) VALUES ?', [orders]);
  await connection.query("INSERT INTO shop.audit_log VALUES ('2024-01-02 03:04:05', 'no key here', 0.1), ('2024-01-02 03:04:05', 'no key here', 0.1), ('2024-01-03 00:00:00', 'NULLs', NULL)");
  await connection.end();
}

describe('MySQL mover between real MariaDB servers', () => {
  beforeAll(async () => {
    [source, target] = await Promise.all([startMariaDbServer(), startMariaDbServer()]);
    await populate(source);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('copies schema, data, views, triggers and routines from one snapshot; verify passes and mysqldump agrees', async () => {
    const progress: number[] = [];
    const phases: string[] = [];
    const report = await new MysqlDataMover().copy(endpoint(source), endpoint(target), { chunkRows: 5000, concurrency: 3, deferIndexes: true, onProgress: (event) => progress.push(event.items) && phases.push(event.phase) });
    // 3,000 customers + 40,000 orders + the audit rows (3 inserted, 40,000 from the trigger) + 3 places (BIT and POINT: INSERTs, not LOAD DATA).
    expect(report.items).toBe(3000 + 40_000 + 40_003 + 3);
    expect(report.binlog?.file).toMatch(/^binlog\.\d+$/);
    expect(report.binlog?.position).toBeGreaterThan(0);
    expect(progress.length).toBeGreaterThan(5);
    // orders' key and foreign key were left out of CREATE TABLE and added after its load.
    expect(phases).toContain('indexes shop.orders');
    expect(await new MysqlDataMover().verify(endpoint(source), endpoint(target), { chunkRows: 5000 })).toMatchObject({ ok: true });
    expect(dump(target)).toBe(dump(source));
  }, 120_000);

  it('names the first differing chunk', async () => {
    const connection = await createConnection({ host: target.host, port: target.port, user: 'root' });
    await connection.query("UPDATE shop.orders SET total = 0 WHERE id = 10000012345");
    await connection.end();
    const verified = await new MysqlDataMover().verify(endpoint(source), endpoint(target), { chunkRows: 5000 });
    expect(verified.ok).toBe(false);
    expect(verified.firstDifference).toMatch(/^shop\.orders chunk id 10000010001\.\.10000015000: 5000 rows \(checksum \d+\) on the source, 5000 \(checksum \d+\) on the target$/);
  });

  it('refuses a target that already has the database, unless told to replace it', async () => {
    const error = await new MysqlDataMover().copy(endpoint(source), endpoint(target)).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues[0]?.path).toBe('target.shop');
    // INSERTs throughout (as when the target refuses local_infile).
    await new MysqlDataMover().copy(endpoint(source), endpoint(target), { replaceExisting: true, loadData: false });
    expect((await new MysqlDataMover().verify(endpoint(source), endpoint(target))).ok).toBe(true);
    expect(dump(target)).toBe(dump(source));
  }, 120_000);

  it('resumes a copy killed in the middle and ends identical, with nothing duplicated', async () => {
    const fresh = await startMariaDbServer();
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-mysql-ckpt-')), 'copy.json');
    try {
      const controller = new AbortController();
      let chunks = 0;
      const first = await new MysqlDataMover()
        .copy(endpoint(source), endpoint(fresh), { chunkRows: 2000, concurrency: 2, checkpointPath, deferIndexes: true, signal: controller.signal, onProgress: () => ++chunks === 3 && controller.abort() })
        .catch((caught: unknown) => caught);
      expect(CancelledError.isInstance(first)).toBe(true);
      const connection = await createConnection({ host: fresh.host, port: fresh.port, user: 'root' });
      const [[partial]] = (await connection.query('SELECT COUNT(*) AS n FROM shop.orders')) as unknown as [[{ n: number }]];
      await connection.end();
      expect(Number(partial?.n)).toBeLessThan(40_000);
      const resumed = await new MysqlDataMover().copy(endpoint(source), endpoint(fresh), { chunkRows: 2000, concurrency: 2, checkpointPath });
      expect(resumed.resumed).toBe(true);
      expect(await new MysqlDataMover().verify(endpoint(source), endpoint(fresh), { chunkRows: 2000 })).toMatchObject({ ok: true });
      expect(dump(fresh)).toBe(dump(source));
      expect(readFileSync(checkpointPath, 'utf8')).not.toMatch(/password/i);
    } finally {
      await fresh.stop();
    }
  }, 120_000);

  it('gives one clear error for a wrong password, before writing anything', async () => {
    const error = await new MysqlDataMover().copy(endpoint(source), { ...endpoint(target), user: 'nobody', password: 'not-it' }).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/^Cannot reach the target MySQL at 127\.0\.0\.1:\d+: access denied for that user and password/);
    expect((error as Error).message).not.toContain('not-it');
  });
});
