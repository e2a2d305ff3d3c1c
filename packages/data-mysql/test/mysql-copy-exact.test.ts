/**
 * The copy is exact where values and sessions are tricky, and a resumed copy ends in one
 * point-in-time state of the source. Two real MariaDB servers in a DST time zone; every case is
 * checked against the source independently of the mover's verify: `mysqldump --hex-blob` of both
 * sides (in UTC, with routines, triggers and events), and FLOAT values compared bit for bit.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ValidationError } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover } from '../src/index.js';
import { TIME_ZONE, connect, dump, select, sql } from './support.js';

let source: MariaDbServer;
const started: MariaDbServer[] = [];
const newTarget = async () => {
  const server = await startMariaDbServer({ timeZone: TIME_ZONE });
  started.push(server);
  return server;
};
const endpoint = (server: MariaDbServer, database: string) => ({ host: server.host, port: server.port, user: 'root', databases: [database] });
beforeAll(async () => {
  source = await startMariaDbServer({ timeZone: TIME_ZONE });
}, 120_000);
afterAll(async () => {
  await Promise.all([source, ...started].map((server) => server?.stop()));
});

describe('values arrive exact', () => {
  it('FLOAT and DOUBLE bit for bit, TIMESTAMPs of the DST fall-back hour, id 0, generated and invisible columns, on both write paths', async () => {
    await sql(
      source,
      `CREATE DATABASE exact; USE exact;
       CREATE TABLE numbers (id INT PRIMARY KEY AUTO_INCREMENT, f FLOAT NULL, d DOUBLE NULL, doubled DOUBLE AS (d * 2) VIRTUAL, kept DOUBLE AS (d + 1) STORED, secret VARCHAR(20) INVISIBLE DEFAULT 'hidden') ENGINE=InnoDB;
       CREATE TABLE moments (id INT PRIMARY KEY, at TIMESTAMP(6) NULL, local DATETIME NULL) ENGINE=InnoDB;
       CREATE TABLE flagged (id INT PRIMARY KEY, bits BIT(8) NULL, f FLOAT NULL, g INT AS (id * 10) STORED) ENGINE=InnoDB;`,
    );
    // id 0 must stay 0 (NO_AUTO_VALUE_ON_ZERO), not become the next counter value.
    await sql(source, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'); INSERT INTO exact.numbers (id, f, d, secret) VALUES (0, 0.1, 0.1, 'zero')");
    const floats = [1.0000001, 3.4028234e38, 1.17549435e-38, 16777217, -2.5e-10, 123.456];
    await sql(source, 'INSERT INTO exact.numbers (f, d, secret) VALUES ?', [floats.map((value, index) => [value, value / 3, `s${index}`])]);
    await sql(source, 'INSERT INTO exact.flagged (id, bits, f) VALUES ?', [floats.map((value, index) => [index + 1, index, value])]);
    // 01:30 happens twice in New York on 2024-11-03: once in EDT (05:30 UTC) and once in EST (06:30 UTC).
    await sql(source, "SET time_zone = '+00:00'; INSERT INTO exact.moments VALUES (1, '2024-11-03 05:30:00.25', '2024-11-03 01:30:00'), (2, '2024-11-03 06:30:00.5', '2024-11-03 01:30:00'), (3, NULL, NULL)");
    const floatBits = async (server: MariaDbServer) => select(server, 'SELECT id, CAST(f AS DOUBLE) AS f, d FROM exact.numbers UNION ALL SELECT 100 + id, CAST(f AS DOUBLE), NULL FROM exact.flagged ORDER BY id');
    const instants = async (server: MariaDbServer) => select(server, 'SELECT id, at FROM exact.moments ORDER BY id');

    for (const loadData of [true, false]) {
      const target = await newTarget();
      const report = await new MysqlDataMover().copy(endpoint(source, 'exact'), endpoint(target, 'exact'), { loadData });
      expect(report.items).toBe(7 + 3 + 6);
      expect(dump(target, 'exact')).toBe(dump(source, 'exact'));
      expect(await floatBits(target)).toEqual(await floatBits(source));
      expect(await instants(target)).toEqual(await instants(source));
      expect(await select(target, 'SELECT id, secret FROM exact.numbers WHERE id = 0')).toEqual([{ id: 0, secret: 'zero' }]);
      expect(await new MysqlDataMover().verify(endpoint(source, 'exact'), endpoint(target, 'exact'))).toMatchObject({ ok: true });
    }
  }, 120_000);

  it('sparse and 64-bit keys: chunks follow the rows, not the key range', async () => {
    await sql(
      source,
      `CREATE DATABASE sparse; USE sparse;
       CREATE TABLE few (id BIGINT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB;
       INSERT INTO few VALUES (1, 'a'), (5000000000, 'b'), (10000000000, 'c');
       CREATE TABLE snowflakes (id BIGINT UNSIGNED PRIMARY KEY, v INT) ENGINE=InnoDB;
       CREATE TABLE negative (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
       INSERT INTO negative VALUES (-2147483648, 1), (0, 2), (2147483647, 3);`,
    );
    // Snowflake-style ids: time in the high bits, so the range spans about 2^63.
    const snowflakes = Array.from({ length: 5000 }, (_, index) => [String((BigInt(1_700_000_000_000 + index * 977) << 22n) | BigInt(index % 4096)), index]);
    snowflakes.push(['18446744073709551615', -1], ['18446744073709551614', -2]);
    await sql(source, 'INSERT INTO sparse.snowflakes VALUES ?', [snowflakes]);
    const target = await newTarget();
    const chunks: number[] = [];
    const report = await new MysqlDataMover().copy(endpoint(source, 'sparse'), endpoint(target, 'sparse'), { chunkRows: 1000, onProgress: (event) => chunks.push(event.parts?.total ?? 0) });
    expect(report.items).toBe(3 + 5002 + 3);
    // few: 1 chunk; negative: 1; snowflakes: 5002 rows in chunks of 1000 → 6.
    expect(chunks[0]).toBe(1 + 1 + 6);
    expect(dump(target, 'sparse')).toBe(dump(source, 'sparse'));
    expect(await new MysqlDataMover().verify(endpoint(source, 'sparse'), endpoint(target, 'sparse'), { chunkRows: 1000 })).toMatchObject({ ok: true });
    await sql(target, "UPDATE sparse.snowflakes SET v = 7 WHERE id = '18446744073709551615'");
    const verified = await new MysqlDataMover().verify(endpoint(source, 'sparse'), endpoint(target, 'sparse'), { chunkRows: 1000 });
    expect(verified.ok).toBe(false);
    expect(verified.firstDifference).toMatch(/^sparse\.snowflakes chunk id \d+\.\.: /);
  }, 120_000);

  it('system-versioned tables with their history, and MyISAM tables consistent with the snapshot', async () => {
    await sql(
      source,
      `CREATE DATABASE history; USE history;
       CREATE TABLE prices (id INT PRIMARY KEY, amount DECIMAL(8,2) NOT NULL) WITH SYSTEM VERSIONING;
       CREATE TABLE explicit (id INT PRIMARY KEY, v INT, valid_from TIMESTAMP(6) GENERATED ALWAYS AS ROW START, valid_to TIMESTAMP(6) GENERATED ALWAYS AS ROW END, PERIOD FOR SYSTEM_TIME (valid_from, valid_to)) WITH SYSTEM VERSIONING;
       INSERT INTO prices VALUES (1, 10), (2, 20); UPDATE prices SET amount = 11 WHERE id = 1; DELETE FROM prices WHERE id = 2;
       INSERT INTO explicit (id, v) VALUES (1, 1); UPDATE explicit SET v = 2;
       CREATE TABLE events_log (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(50)) ENGINE=InnoDB;
       CREATE TABLE counters (id INT PRIMARY KEY, hits INT NOT NULL) ENGINE=MyISAM;
       CREATE TABLE cache (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=Aria;
       INSERT INTO counters VALUES (1, 0); INSERT INTO cache VALUES ('a', 'b');
       CREATE TRIGGER count_events AFTER INSERT ON events_log FOR EACH ROW UPDATE counters SET hits = hits + 1 WHERE id = 1;`,
    );
    const history = async (server: MariaDbServer) => select(server, 'SELECT id, amount, ROW_START, ROW_END FROM history.prices FOR SYSTEM_TIME ALL ORDER BY id, ROW_START');
    // A writer keeps inserting: every event bumps the MyISAM counter in the same statement (the trigger).
    const writer = await connect(source);
    let writing = true;
    const writes = (async () => {
      while (writing) await writer.query("INSERT INTO history.events_log (what) VALUES ('x')");
    })();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const target = await newTarget();
      const report = await new MysqlDataMover().copy(endpoint(source, 'history'), endpoint(target, 'history'), { concurrency: 2 });
      expect(report.warnings ?? []).toEqual([]);
      writing = false;
      await writes;
      expect(await history(target)).toEqual(await history(source));
      expect(await history(target)).toHaveLength(3);
      // The counter was read under the same read lock as the snapshot: it matches the events copied.
      const [[counted], [logged]] = await Promise.all([select(target, 'SELECT hits AS n FROM history.counters'), select(target, 'SELECT COUNT(*) AS n FROM history.events_log')]);
      expect(Number(counted?.n)).toBe(Number(logged?.n));
      expect(Number(logged?.n)).toBeGreaterThan(0);
      expect(await select(target, 'SELECT k, v FROM history.cache')).toEqual([{ k: 'a', v: 'b' }]);
      const explicit = async (server: MariaDbServer) => select(server, 'SELECT id, v, valid_from, valid_to FROM history.explicit FOR SYSTEM_TIME ALL ORDER BY valid_from');
      expect(await explicit(target)).toEqual(await explicit(source));
      // 'warn' reads them without the lock, and says so.
      const warned = await new MysqlDataMover().copy(endpoint(source, 'history'), endpoint(await newTarget(), 'history'), { nonTransactional: 'warn' });
      expect(warned.warnings?.join('\n')).toMatch(/history\.cache \(Aria\), history\.counters \(MyISAM\)/);
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
  }, 120_000);
});

describe('a resumed copy ends in one state of the source', () => {
  const setUp = async (database: string) => {
    await sql(
      source,
      `CREATE DATABASE ${database}; USE ${database};
       CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, KEY by_v (v)) ENGINE=InnoDB;
       CREATE TABLE notes (line VARCHAR(40) NOT NULL) ENGINE=InnoDB;`,
    );
    const values = Array.from({ length: 12_000 }, (_, index) => [index + 1, `item ${index + 1}`]);
    await sql(source, `INSERT INTO ${database}.items VALUES ?`, [values]);
    await sql(source, `INSERT INTO ${database}.notes VALUES ('one'), ('two')`);
  };
  const interrupted = async (database: string, target: MariaDbServer, checkpointPath: string) => {
    const controller = new AbortController();
    let chunks = 0;
    const first = await new MysqlDataMover()
      .copy(endpoint(source, database), endpoint(target, database), { chunkRows: 1000, concurrency: 1, checkpointPath, signal: controller.signal, onProgress: () => ++chunks === 4 && controller.abort() })
      .catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(first)).toBe(true);
  };

  it('copies again the finished chunks the source changed in between, and reports the new snapshot', async () => {
    await setUp('resumed');
    const target = await newTarget();
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-mysql-resume-')), 'copy.json');
    await interrupted('resumed', target, checkpointPath);
    // Between the runs the source changes rows in chunks already copied, and elsewhere.
    await sql(source, "UPDATE resumed.items SET v = 'changed' WHERE id IN (5, 1500, 11999); DELETE FROM resumed.items WHERE id = 700; INSERT INTO resumed.items VALUES (0, 'new low'), (50000, 'new high'); INSERT INTO resumed.notes VALUES ('three')");
    const resumed = await new MysqlDataMover().copy(endpoint(source, 'resumed'), endpoint(target, 'resumed'), { chunkRows: 1000, concurrency: 2, checkpointPath });
    expect(resumed.resumed).toBe(true);
    expect(resumed.rechecked?.copiedAgain).toBeGreaterThan(0);
    expect(dump(target, 'resumed')).toBe(dump(source, 'resumed'));
    // Run again on the finished checkpoint after another change: it is found and copied, not "0 items, done".
    await sql(source, "UPDATE resumed.items SET v = 'again' WHERE id = 3000");
    const rerun = await new MysqlDataMover().copy(endpoint(source, 'resumed'), endpoint(target, 'resumed'), { chunkRows: 1000, checkpointPath });
    expect(rerun.items).toBeGreaterThan(0);
    expect(rerun.rechecked?.copiedAgain).toBe(1);
    expect(dump(target, 'resumed')).toBe(dump(source, 'resumed'));
    const binlog = await select(source, 'SHOW MASTER STATUS');
    expect(rerun.binlog).toMatchObject({ file: binlog[0]?.File, position: Number(binlog[0]?.Position) });
  }, 120_000);

  it('refuses to resume when a table changed its definition in between', async () => {
    await setUp('reshaped');
    const target = await newTarget();
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-mysql-resume-')), 'copy.json');
    await interrupted('reshaped', target, checkpointPath);
    await sql(source, 'ALTER TABLE reshaped.items ADD COLUMN extra INT NULL');
    const error = await new MysqlDataMover().copy(endpoint(source, 'reshaped'), endpoint(target, 'reshaped'), { chunkRows: 1000, checkpointPath }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues[0]).toMatchObject({ path: 'source.reshaped.items' });
  }, 120_000);
});

describe('errors', () => {
  it('an unreachable server is named; an empty password is not shown as a hidden one', async () => {
    const error = await new MysqlDataMover().copy(endpoint(source, 'none'), { host: '127.0.0.1', port: 1, user: 'root', password: '', databases: ['none'] }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).message).toMatch(/^Cannot reach the target MySQL at 127\.0\.0\.1:1: ECONNREFUSED\./);
    expect((error as ValidationError).message).not.toContain('***');
    expect((error as ValidationError).issues[0]?.message).toBe('connect ECONNREFUSED 127.0.0.1:1');
  });

  it('a failing chunk is named by table and key range', async () => {
    await sql(source, "CREATE DATABASE named; CREATE TABLE named.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO named.t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    const target = await newTarget();
    const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-mysql-named-')), 'copy.json');
    const controller = new AbortController();
    // A first run stops after the first chunk; someone then narrows the column on the target by hand.
    const first = await new MysqlDataMover()
      .copy(endpoint(source, 'named'), endpoint(target, 'named'), { chunkRows: 2, concurrency: 1, checkpointPath, signal: controller.signal, onProgress: () => controller.abort() })
      .catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(first)).toBe(true);
    await sql(target, 'ALTER TABLE named.t MODIFY v VARCHAR(1)');
    await sql(source, "UPDATE named.t SET v = 'too long here' WHERE id = 3");
    const error = await new MysqlDataMover().copy(endpoint(source, 'named'), endpoint(target, 'named'), { chunkRows: 2, concurrency: 1, checkpointPath }).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/^MySQL copy failed at named\.t chunk id 3\.\.: .*(truncated|too long)/i);
  }, 120_000);
});
