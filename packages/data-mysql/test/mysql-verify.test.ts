/**
 * verifyMysql between two real MariaDB servers whose system time zone has DST (New York): both
 * sides are built by the same SQL (never by the mover's copy), verify passes, then each kind of
 * difference is made by hand on the target and verify must name it: a changed value in one chunk,
 * rows only on the target beyond either end of the key, equal-row pairs that cancel out under
 * BIT_XOR, a FLOAT's last bit, a TIMESTAMP in the fall-back hour, table definitions (columns,
 * defaults, keys, foreign keys, partitioning, the AUTO_INCREMENT counter), history rows, missing
 * databases, sparse 64-bit keys, views and routines, and grants.
 */
import { CancelledError, ValidationError } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyMysql, type MysqlVerifyOptions } from '../src/verify.js';

let source: MariaDbServer;
let target: MariaDbServer;

const endpoint = (server: MariaDbServer, databases: string[]) => ({ host: server.host, port: server.port, user: 'root', databases });
const verify = (databases: string[], options: MysqlVerifyOptions = {}) => verifyMysql(endpoint(source, databases), endpoint(target, databases), options);

/** Runs statements on one server, in a session of the server's own time zone (New York). */
async function run(server: MariaDbServer, sql: string, values?: unknown[]): Promise<unknown> {
  const connection = await createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  try {
    return (await connection.query(sql, values))[0];
  } finally {
    await connection.end();
  }
}
/** The same statements on both sides: identical databases without the mover. */
const onBoth = (sql: string, values?: unknown[]) => Promise.all([run(source, sql, values), run(target, sql, values)]);
const firstValue = async (server: MariaDbServer, sql: string) => Object.values(((await run(server, sql)) as Array<Record<string, unknown>>)[0] ?? {})[0];

/** Rows inserted in batches of 5,000 on both sides. */
async function insertOnBoth(table: string, count: number, row: (index: number) => unknown[]): Promise<void> {
  for (let start = 0; start < count; start += 5000) {
    const values: unknown[][] = [];
    for (let index = start; index < Math.min(count, start + 5000); index++) values.push(row(index));
    await onBoth(`INSERT INTO ${table} VALUES ?`, [values]);
  }
}

describe('verifyMysql between real MariaDB servers', () => {
  beforeAll(async () => {
    [source, target] = await Promise.all([startMariaDbServer({ timeZone: 'America/New_York' }), startMariaDbServer({ timeZone: 'America/New_York' })]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('passes on identical databases of every kind of table and value, and counts what it compared', async () => {
    await onBoth(`
      CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
      USE shop;
      CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, legacy VARCHAR(50) CHARACTER SET latin1 NULL, note TEXT NULL, born DATE NULL, seen DATETIME(6) NULL,
        avatar BLOB NULL, mood ENUM('happy', 'sad') NULL, tags SET('a', 'b', 'c') NULL, secret INT INVISIBLE NULL, name_length INT AS (CHAR_LENGTH(name)) VIRTUAL, KEY by_name (name)) ENGINE=InnoDB;
      CREATE TABLE orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(12,4) NOT NULL, details JSON NULL, placed TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, ratio FLOAT NULL, share DOUBLE NULL,
        KEY by_customer (customer_id), CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB;
      CREATE TABLE audit_log (happened DATETIME NOT NULL, message VARCHAR(255) NOT NULL, ratio DOUBLE NULL) ENGINE=InnoDB;
      CREATE TABLE places (id INT PRIMARY KEY, flags BIT(10) NULL, spot POINT NULL) ENGINE=InnoDB;
      CREATE TABLE measures (day DATE NOT NULL, sensor INT NOT NULL, value DOUBLE NOT NULL, PRIMARY KEY (day, sensor)) ENGINE=InnoDB PARTITION BY RANGE (YEAR(day)) (PARTITION p2023 VALUES LESS THAN (2024), PARTITION pmax VALUES LESS THAN MAXVALUE);
      CREATE TABLE prices (id INT PRIMARY KEY, amount DECIMAL(10,2) NOT NULL) ENGINE=InnoDB WITH SYSTEM VERSIONING;
      CREATE TABLE legacy_myisam (id INT PRIMARY KEY, word VARCHAR(20) NOT NULL) ENGINE=MyISAM;
      INSERT INTO places VALUES (1, b'1000000001', ST_GeomFromText('POINT(1.5 -2.25)')), (2, NULL, NULL), (3, b'0', ST_GeomFromText('POINT(0 0)'));
      INSERT INTO measures VALUES ('2023-12-31', 1, 0.5), ('2024-01-01', 1, 1e-300), ('2024-06-01', 2, -0.0);
      INSERT INTO legacy_myisam VALUES (1, 'one'), (2, 'two');
      INSERT INTO audit_log VALUES ('2024-01-02 03:04:05', 'no key here', 0.1), ('2024-01-02 03:04:05', 'no key here', 0.1), ('2024-01-03 00:00:00', 'NULLs', NULL);
      SET time_zone = '+00:00';
      -- The New York fall-back hour, twice: 01:30 EDT and 01:30 EST.
      INSERT INTO customers (id, name) VALUES (1, 'first');
      SET timestamp = UNIX_TIMESTAMP('2024-01-01 00:00:00'); INSERT INTO prices VALUES (1, 9.99), (2, 5.00);
      SET timestamp = UNIX_TIMESTAMP('2024-02-01 00:00:00'); UPDATE prices SET amount = 10.99 WHERE id = 1;
      SET timestamp = UNIX_TIMESTAMP('2024-03-01 00:00:00'); DELETE FROM prices WHERE id = 2;
      SET timestamp = DEFAULT;
    `);
    await insertOnBoth('shop.customers (id, name, legacy, note, born, seen, avatar, mood, tags, secret)', 2999, (index) => {
      const id = index + 2;
      return [id, id % 7 === 0 ? `Zoë 🚀 ${id}` : `Customer ${id}`, id % 3 === 0 ? null : `Müller ${id}`, id % 5 === 0 ? null : `note "${id}" it's \\ fine`, id % 3 === 0 ? null : '1984-02-29', id % 4 === 0 ? null : '2024-07-01 12:34:56.123456',
        id % 9 === 0 ? Buffer.from([0, 255, id % 256, 10, 13]) : null, id % 2 ? 'happy' : null, id % 3 ? 'a,c' : '', id];
    });
    await insertOnBoth('shop.orders', 40_000, (index) => [
      String(10_000_000_000n + BigInt(index + 1)), (index % 3000) + 1, `${index}.1234`, index % 10 === 0 ? null : JSON.stringify({ items: [index, 'ünïcode'], gift: index % 2 === 0 }),
      index % 2 ? '2024-11-03 05:30:00' : '2024-11-03 06:30:00', index % 5 ? index / 7 : null, index % 5 ? index / 3 : null,
    ]);
    // Written in a UTC session (as the timestamps were), so both fall-back hours are stored as given.
    const report = await verify(['shop'], { chunkRows: 5000, concurrency: 3 });
    expect(report.differences).toEqual([]);
    expect(report).toMatchObject({ ok: true });
    // 7 tables, orders in 8 chunks and customers in 1 (the others whole).
    expect(report.compared).toBeGreaterThanOrEqual(7 + 8);
    expect(report.firstDifference).toBeUndefined();
  }, 120_000);

  it('names the chunk of an integer-keyed table where one value changed', async () => {
    await onBoth('CREATE DATABASE one_value; CREATE TABLE one_value.orders (id BIGINT UNSIGNED PRIMARY KEY, total DECIMAL(12,4) NOT NULL) ENGINE=InnoDB');
    await insertOnBoth('one_value.orders', 20_000, (index) => [String(10_000_000_000n + BigInt(index + 1)), `${index}.1234`]);
    expect((await verify(['one_value'], { chunkRows: 5000 })).ok).toBe(true);
    await run(target, 'UPDATE one_value.orders SET total = 0 WHERE id = 10000012345');
    const report = await verify(['one_value'], { chunkRows: 5000 });
    expect(report.ok).toBe(false);
    expect(report.firstDifference).toMatch(/^one_value\.orders chunk id 10000010001\.\.10000015000: 5000 rows \(checksum \d+\) on the source, 5000 \(checksum \d+\) on the target$/);
    expect(report.differences).toHaveLength(1);
    expect(report.differences?.[0]).toMatchObject({ object: 'one_value.orders chunk id 10000010001..10000015000', kind: 'different' });
  }, 60_000);

  it('finds rows only on the target, beyond the source’s largest key and below its smallest', async () => {
    await onBoth('CREATE DATABASE ends; CREATE TABLE ends.t (id BIGINT PRIMARY KEY, v VARCHAR(20) NOT NULL) ENGINE=InnoDB');
    await insertOnBoth('ends.t', 20_000, (index) => [index + 100, `v${index}`]);
    await run(target, "INSERT INTO ends.t VALUES (999999, 'beyond'), (-5, 'below')");
    const report = await verify(['ends'], { chunkRows: 5000 });
    expect(report.ok).toBe(false);
    // Keys 100..20099 cut at 5100, 10100 and 15100: the first and last ranges are open.
    expect(report.differences).toEqual([
      { object: 'ends.t chunk id ..5099', kind: 'different', detail: expect.stringMatching(/^5000 rows \(checksum \d+\) on the source, 5001 \(checksum \d+\) on the target$/) },
      { object: 'ends.t chunk id 15100..', kind: 'different', detail: expect.stringMatching(/^5000 rows \(checksum \d+\) on the source, 5001 \(checksum \d+\) on the target$/) },
    ]);
    // Listing stops at maxDifferences; the rest are counted.
    const capped = await verify(['ends'], { chunkRows: 5000, maxDifferences: 1 });
    expect(capped).toMatchObject({ ok: false, differences: [{ object: 'ends.t chunk id ..5099' }], notes: ['1 more differences not listed (maxDifferences 1)'] });
    // Cancelled: an error, never a report.
    const controller = new AbortController();
    controller.abort();
    const cancelled = await verify(['ends'], { signal: controller.signal }).catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(cancelled)).toBe(true);
  }, 60_000);

  it('tells apart a keyless table whose equal-row pairs cancel out under BIT_XOR', async () => {
    await onBoth('CREATE DATABASE pairs; CREATE TABLE pairs.log (happened DATETIME NOT NULL, message VARCHAR(50) NOT NULL) ENGINE=InnoDB');
    await run(source, "INSERT INTO pairs.log VALUES ('2024-01-01 00:00:00', 'r1'), ('2024-01-01 00:00:00', 'r1')");
    await run(target, "INSERT INTO pairs.log VALUES ('2024-02-02 00:00:00', 'r2'), ('2024-02-02 00:00:00', 'r2')");
    // The old checksum: the same count and XOR on both sides.
    const xor = "SELECT CONCAT(COUNT(*), '/', BIT_XOR(CRC32(CONCAT_WS('#', happened, message)))) FROM pairs.log";
    expect(await firstValue(target, xor)).toBe(await firstValue(source, xor));
    const report = await verify(['pairs']);
    expect(report.ok).toBe(false);
    expect(report.differences).toEqual([{ object: 'pairs.log', kind: 'different', detail: expect.stringMatching(/^2 rows \(checksum \d+\) on the source, 2 \(checksum \d+\) on the target$/) }]);
  });

  it('reads a row one way only: neither a separator inside a value nor a NULL in another column hides a change', async () => {
    await onBoth('CREATE DATABASE texts; CREATE TABLE texts.split (a VARCHAR(10) NULL, b VARCHAR(10) NULL) ENGINE=InnoDB; CREATE TABLE texts.nulls (a VARCHAR(10) NULL, b VARCHAR(10) NULL) ENGINE=InnoDB');
    await run(source, "INSERT INTO texts.split VALUES ('a,', 'b'); INSERT INTO texts.nulls VALUES (NULL, 'x')");
    await run(target, "INSERT INTO texts.split VALUES ('a', ',b'); INSERT INTO texts.nulls VALUES ('x', NULL)");
    const report = await verify(['texts']);
    expect(report.differences?.map((difference) => difference.object)).toEqual(['texts.nulls', 'texts.split']);
  });

  it('catches a FLOAT changed in its last bit, which its 6-digit text does not show', async () => {
    await onBoth('CREATE DATABASE floats; CREATE TABLE floats.t (id INT PRIMARY KEY, f FLOAT NOT NULL) ENGINE=InnoDB; INSERT INTO floats.t VALUES (1, 0.1), (2, 1.5)');
    expect((await verify(['floats'])).ok).toBe(true);
    // The next float after 0.1 (its bits plus one), written as the double that is exactly it.
    const bits = new DataView(new ArrayBuffer(4));
    bits.setFloat32(0, 0.1);
    bits.setUint32(0, bits.getUint32(0) + 1);
    await run(target, `UPDATE floats.t SET f = ${bits.getFloat32(0)} WHERE id = 1`);
    const exact = 'SELECT CAST(f AS DOUBLE) FROM floats.t WHERE id = 1';
    expect(await firstValue(source, exact)).toBe(0.10000000149011612);
    expect(await firstValue(target, exact)).toBe(0.10000000894069672);
    const text = 'SELECT CONCAT(f) FROM floats.t WHERE id = 1';
    expect(await firstValue(target, text)).toBe(await firstValue(source, text));
    const report = await verify(['floats']);
    expect(report.ok).toBe(false);
    expect(report.differences?.[0]?.object).toBe('floats.t');
  });

  it('compares TIMESTAMPs in UTC: the two 01:30s of the New York fall-back hour are told apart', async () => {
    await onBoth("CREATE DATABASE clock; CREATE TABLE clock.t (id INT PRIMARY KEY, at TIMESTAMP NULL) ENGINE=InnoDB; SET time_zone = '+00:00'; INSERT INTO clock.t VALUES (1, '2024-11-03 05:30:00'), (2, '2024-11-03 06:30:00')");
    expect((await verify(['clock'])).ok).toBe(true);
    await run(target, "SET time_zone = '+00:00'; UPDATE clock.t SET at = '2024-11-03 06:30:00' WHERE id = 1");
    // In New York time both rows of the target now read 01:30, as row 1 does on the source.
    expect(await firstValue(target, 'SELECT at FROM clock.t WHERE id = 1')).toBe(await firstValue(source, 'SELECT at FROM clock.t WHERE id = 1'));
    const report = await verify(['clock']);
    expect(report.ok).toBe(false);
    expect(report.differences?.[0]?.object).toBe('clock.t');
  });

  it('names each difference of table definitions, and passes a higher AUTO_INCREMENT and keys in another order', async () => {
    await onBoth(`
      CREATE DATABASE defs; USE defs;
      CREATE TABLE parents (id INT PRIMARY KEY) ENGINE=InnoDB;
      CREATE TABLE children (id INT PRIMARY KEY, parent_id INT NOT NULL, note VARCHAR(20) NOT NULL DEFAULT 'none', KEY by_note (note), KEY by_parent (parent_id), CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parents (id)) ENGINE=InnoDB;
      CREATE TABLE widened (id INT PRIMARY KEY) ENGINE=InnoDB;
      CREATE TABLE defaults (id INT PRIMARY KEY, state VARCHAR(10) NOT NULL DEFAULT 'new') ENGINE=InnoDB;
      CREATE TABLE parts (id INT PRIMARY KEY) ENGINE=InnoDB PARTITION BY HASH (id) PARTITIONS 4;
      CREATE TABLE counters (id INT PRIMARY KEY AUTO_INCREMENT) ENGINE=InnoDB AUTO_INCREMENT=100;
      CREATE TABLE ahead (id INT PRIMARY KEY AUTO_INCREMENT) ENGINE=InnoDB AUTO_INCREMENT=100;
      CREATE TABLE reordered (id INT PRIMARY KEY, a INT NOT NULL, b INT NOT NULL, KEY by_a (a), KEY by_b (b)) ENGINE=InnoDB;
      INSERT INTO parents VALUES (1); INSERT INTO children VALUES (1, 1, 'x'); INSERT INTO counters VALUES (1), (2), (3);
    `);
    expect((await verify(['defs'])).ok).toBe(true);
    await run(target, `
      USE defs;
      CREATE TABLE stray (id INT PRIMARY KEY) ENGINE=InnoDB;
      ALTER TABLE widened ADD COLUMN extra INT NULL;
      ALTER TABLE defaults ALTER COLUMN state SET DEFAULT 'old';
      ALTER TABLE children DROP FOREIGN KEY fk_parent;
      ALTER TABLE children DROP INDEX by_note;
      ALTER TABLE parts PARTITION BY HASH (id) PARTITIONS 2;
      ALTER TABLE counters AUTO_INCREMENT = 4;
      ALTER TABLE ahead AUTO_INCREMENT = 500;
      ALTER TABLE reordered DROP INDEX by_a; ALTER TABLE reordered ADD KEY by_a (a);
    `);
    const report = await verify(['defs']);
    expect(report.ok).toBe(false);
    const byObject = new Map(report.differences?.map((difference) => [difference.object, difference]));
    expect([...byObject.keys()].sort()).toEqual(['defs.children', 'defs.counters', 'defs.defaults', 'defs.parts', 'defs.stray', 'defs.widened']);
    expect(byObject.get('defs.stray')).toMatchObject({ kind: 'extra' });
    expect(byObject.get('defs.widened')).toMatchObject({ kind: 'different', detail: 'column `extra` only on the target' });
    expect(byObject.get('defs.defaults')?.detail).toBe("column `state`: `state` varchar(10) NOT NULL DEFAULT 'new' on the source, `state` varchar(10) NOT NULL DEFAULT 'old' on the target");
    expect(byObject.get('defs.children')?.detail).toMatch(/index `by_note` missing on the target/);
    expect(byObject.get('defs.children')?.detail).toMatch(/foreign key `fk_parent` missing on the target/);
    expect(byObject.get('defs.parts')?.detail).toMatch(/^partitioning: PARTITION BY HASH \(`id`\)\nPARTITIONS 4 on the source, PARTITION BY HASH \(`id`\)\nPARTITIONS 2 on the target$/);
    expect(byObject.get('defs.counters')?.detail).toBe('AUTO_INCREMENT 4 on the target, below 100 on the source: ids already issued would be issued again');
  }, 60_000);

  it('includes the history of a system-versioned table', async () => {
    await onBoth(`
      CREATE DATABASE history; USE history;
      CREATE TABLE prices (id INT PRIMARY KEY, amount DECIMAL(10,2) NOT NULL) ENGINE=InnoDB WITH SYSTEM VERSIONING;
      SET timestamp = UNIX_TIMESTAMP('2024-01-01 00:00:00'); INSERT INTO prices VALUES (1, 9.99), (2, 5.00);
      SET timestamp = UNIX_TIMESTAMP('2024-02-01 00:00:00'); UPDATE prices SET amount = 10.99 WHERE id = 1;
      SET timestamp = UNIX_TIMESTAMP('2024-03-01 00:00:00'); UPDATE prices SET amount = 11.99 WHERE id = 1;
    `);
    expect((await verify(['history'])).ok).toBe(true);
    // The current rows stay as they are; only the oldest history row (ended 2024-02-01) goes.
    await run(target, "DELETE HISTORY FROM history.prices BEFORE SYSTEM_TIME '2024-02-15 00:00:00'");
    expect(await firstValue(target, 'SELECT COUNT(*) FROM history.prices')).toBe(await firstValue(source, 'SELECT COUNT(*) FROM history.prices'));
    const report = await verify(['history']);
    expect(report.ok).toBe(false);
    expect(report.differences).toEqual([{ object: 'history.prices', kind: 'different', detail: expect.stringMatching(/^4 rows \(history included\) \(checksum \d+\) on the source, 3 \(checksum \d+\) on the target$/) }]);
  });

  it('reports a database missing on the target, refuses one on neither side, and never passes having compared nothing', async () => {
    await run(source, 'CREATE DATABASE only_source; CREATE TABLE only_source.t (id INT PRIMARY KEY) ENGINE=InnoDB');
    const missing = await verify(['only_source']);
    expect(missing).toMatchObject({ ok: false, differences: [{ object: 'database only_source', kind: 'missing' }] });
    expect(missing.firstDifference).toBe('database only_source: database not on the target');

    const nowhere = await verify(['no_such_database']).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(nowhere)).toBe(true);
    expect((nowhere as Error).message).toMatch(/no_such_database is on neither the source nor the target/);

    await onBoth('CREATE DATABASE empty_both');
    const empty = await verify(['empty_both']).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(empty)).toBe(true);
    expect((empty as Error).message).toMatch(/^Nothing to verify: empty_both holds no tables/);
  });

  it('finishes on sparse and near-2^64 keys, and catches a change there', async () => {
    await onBoth(`
      CREATE DATABASE sparse; USE sparse;
      CREATE TABLE ids (id BIGINT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB;
      CREATE TABLE huge (id BIGINT UNSIGNED PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB;
      INSERT INTO ids VALUES (1, 1), (5000000000, 2), (10000000000, 3);
      INSERT INTO huge VALUES (0, 0), (18446744073709549568, 1), (18446744073709549569, 2), (18446744073709551614, 3), (18446744073709551615, 4);
    `);
    const passing = await verify(['sparse'], { chunkRows: 1 });
    expect(passing.ok).toBe(true);
    // Every row its own chunk (the first one open below, the last open above), plus the 2 tables.
    expect(passing.compared).toBe(2 + 3 + 5);
    await run(target, 'UPDATE sparse.ids SET v = 20 WHERE id = 5000000000; UPDATE sparse.huge SET v = 30 WHERE id = 18446744073709551614');
    const report = await verify(['sparse'], { chunkRows: 1 });
    expect(report.differences?.map((difference) => difference.object)).toEqual(['sparse.huge chunk id 18446744073709551614..18446744073709551614', 'sparse.ids chunk id 5000000000..9999999999']);
  });

  it('lists a changed view and a changed routine, compared by the schema modules', async () => {
    await onBoth(`
      CREATE DATABASE objects; USE objects;
      CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB;
      CREATE VIEW big AS SELECT id FROM t WHERE v > 10;
      CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
      CREATE PROCEDURE count_t(OUT n INT) SELECT COUNT(*) INTO n FROM t;
      CREATE TRIGGER t_check BEFORE INSERT ON t FOR EACH ROW SET NEW.v = GREATEST(NEW.v, 0);
      CREATE SEQUENCE ids START WITH 100;
    `);
    const passing = await verify(['objects']);
    expect(passing.differences).toEqual([]);
    // The table and its one chunk, then the view, both routines, the trigger and the sequence.
    expect(passing.compared).toBeGreaterThanOrEqual(2 + 5);
    await run(target, 'USE objects; CREATE OR REPLACE VIEW big AS SELECT id FROM t WHERE v > 20; DROP FUNCTION twice; CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 3');
    const report = await verify(['objects']);
    expect(report.ok).toBe(false);
    expect(report.differences?.map(({ object, kind }) => ({ object, kind }))).toEqual([
      { object: 'view objects.big', kind: 'different' },
      { object: 'function objects.twice', kind: 'different' },
    ]);
  });

  it('compares accounts: a grant added by hand on the target is a difference; grants of objects the target lacks are only noted', async () => {
    await run(source, 'CREATE DATABASE archive; CREATE TABLE archive.old (id INT PRIMARY KEY) ENGINE=InnoDB');
    await onBoth(`
      CREATE DATABASE accounts; CREATE TABLE accounts.items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL) ENGINE=InnoDB; CREATE TABLE accounts.secrets (id INT PRIMARY KEY) ENGINE=InnoDB;
      CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw-1'; GRANT SELECT ON accounts.items TO 'app'@'%';
      CREATE ROLE auditor; GRANT SELECT ON accounts.secrets TO auditor;
    `);
    await run(source, "GRANT SELECT ON archive.old TO 'app'@'%'");
    const passing = await verify(['accounts'], { users: true });
    expect(passing.differences).toEqual([]);
    expect(passing.notes).toEqual(["user 'app'@'%': grant on `archive`.`old` not compared: that object is not on the target (the copy leaves such grants out)"]);
    await run(target, "GRANT INSERT ON accounts.secrets TO 'app'@'%'");
    const report = await verify(['accounts'], { users: true });
    expect(report.ok).toBe(false);
    expect(report.differences).toEqual([{ object: "user 'app'@'%'", kind: 'different', detail: 'grant only on the target: GRANT INSERT ON `accounts`.`secrets` TO `app`@`%`' }]);
    // Without `users`, accounts are not compared.
    expect((await verify(['accounts'])).ok).toBe(true);
    // Hashes never reach a report.
    await run(target, "ALTER USER 'app'@'%' IDENTIFIED BY 'another-pw'");
    const changed = await verify(['accounts'], { users: { include: ['app'] } });
    const hash = String(await firstValue(target, "SELECT authentication_string FROM mysql.user WHERE User = 'app'"));
    expect(changed.differences?.[0]).toMatchObject({ object: "user 'app'@'%'", kind: 'different' });
    expect(JSON.stringify(changed)).not.toContain(hash.slice(1));
  });
});
