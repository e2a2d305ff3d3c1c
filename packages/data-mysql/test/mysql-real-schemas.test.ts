/**
 * Real schemas copied end to end through the public mover, between throwaway MariaDB servers in a
 * DST time zone: Sakila (spatial column, views, routines, triggers) on both write paths and
 * resumed, the employees schema (a view on a view) with generated rows, a schema made under a lax
 * sql_mode into a strict target, DEFINERs, events and sequences, refusals before the first write,
 * and awkward tables (no key, composite key, every byte value). Each case is judged without the
 * mover's verify (mysqldump of both sides, in UTC, BLOBs in hex, every object kind; calling the
 * programs on both sides), then verify is shown to pass, and to name each difference made by hand.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ValidationError } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover, type MysqlCopyOptions } from '../src/index.js';
import { loadSakila, runClient } from './fixtures/sakila/load.js';
import { TIME_ZONE, dump, select, sql } from './support.js';

const STRICT = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';
let source: MariaDbServer;
const started: MariaDbServer[] = [];
const newServer = async (args?: string[]) => {
  const server = await startMariaDbServer({ timeZone: TIME_ZONE, ...(args ? { args } : {}) });
  started.push(server);
  return server;
};
const endpoint = (server: MariaDbServer, database: string, user = 'root', password?: string) => ({ host: server.host, port: server.port, user, ...(password ? { password } : {}), databases: [database] });
const copy = (from: MariaDbServer, to: MariaDbServer, database: string, options: MysqlCopyOptions = {}) => new MysqlDataMover().copy(endpoint(from, database), endpoint(to, database), options);
const verify = (from: MariaDbServer, to: MariaDbServer, database: string, options: Parameters<MysqlDataMover['verify']>[2] = {}) => new MysqlDataMover().verify(endpoint(from, database), endpoint(to, database), options);
const binlogAt = async (server: MariaDbServer) => {
  const [status] = await select(server, 'SHOW MASTER STATUS');
  return `${status?.File}:${status?.Position}`;
};
const databasesOn = async (server: MariaDbServer) => (await select(server, 'SHOW DATABASES')).map((row) => String(Object.values(row)[0]));
const checkpointIn = (name: string) => join(mkdtempSync(join(tmpdir(), `armada-mysql-${name}-`)), 'copy.json');
/** What the copy threw, for asserting on. */
const refusal = async (promise: Promise<unknown>) => {
  const caught = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(ValidationError.isInstance(caught), `expected a ValidationError, got ${String(caught)}`).toBe(true);
  return caught as ValidationError;
};

beforeAll(async () => {
  source = await startMariaDbServer({ timeZone: TIME_ZONE });
  await loadSakila(source);
}, 120_000);
afterAll(async () => {
  await Promise.all([source, ...started].map((server) => server?.stop()));
}, 120_000);

describe('Sakila', () => {
  /** Its programs as the application calls them: results must be the same on both sides. */
  const resultSets = async (server: MariaDbServer, statements: string) => ((await sql(server, statements)) as unknown[]).filter((result) => Array.isArray(result));
  const calls = async (server: MariaDbServer) => [
    await resultSets(server, 'USE sakila; CALL film_in_stock(1, 1, @n); SELECT @n AS n'),
    await resultSets(server, 'USE sakila; CALL film_not_in_stock(2, 2, @n); SELECT @n AS n'),
    await select(server, "SELECT sakila.inventory_in_stock(1) AS a, sakila.inventory_in_stock(10) AS b, sakila.inventory_held_by_customer(367) AS c, sakila.get_customer_balance(1, '2005-08-30 00:00:00') AS d"),
    await select(server, 'SELECT * FROM sakila.sales_by_store ORDER BY store'),
    await select(server, 'SELECT * FROM sakila.customer_list ORDER BY ID LIMIT 50'),
    await select(server, 'SELECT * FROM sakila.sales_by_film_category'),
  ];
  /** The film triggers, fired in a transaction that is rolled back: film_text follows film. */
  const triggersFire = async (server: MariaDbServer) => {
    const results = (await sql(
      server,
      `USE sakila; START TRANSACTION;
       INSERT INTO film (title, description, language_id) VALUES ('ARMADA TEST', 'copied by the mover', 1);
       SELECT title, description FROM film_text WHERE film_id = LAST_INSERT_ID();
       UPDATE film SET title = 'ARMADA RENAMED' WHERE film_id = LAST_INSERT_ID();
       SELECT title FROM film_text WHERE film_id = LAST_INSERT_ID();
       DELETE FROM film WHERE film_id = LAST_INSERT_ID();
       SELECT COUNT(*) AS n FROM film_text WHERE film_id = LAST_INSERT_ID();
       ROLLBACK`,
    )) as unknown[];
    return [results[3], results[5], results[7]];
  };

  it('copies exactly by LOAD DATA and by INSERT, in chunks on 3 workers: programs, views and triggers behave as on the source', async () => {
    const expectedCalls = await calls(source);
    const expectedTriggers = await triggersFire(source);
    // Meaningful: the trigger made the row, and film 1 is in stock at store 1.
    expect(expectedTriggers[0]).toEqual([{ title: 'ARMADA TEST', description: 'copied by the mover' }]);
    expect(expectedTriggers[1]).toEqual([{ title: 'ARMADA RENAMED' }]);
    expect(expectedTriggers[2]).toEqual([{ n: '0' }]);
    for (const loadData of [true, false]) {
      const target = await newServer();
      const totals: number[] = [];
      const report = await copy(source, target, 'sakila', { loadData, concurrency: 3, chunkRows: 2000, onProgress: (event) => totals.push(event.parts?.total ?? 0) });
      // rental and payment (16,044 rows each) span 9 chunks of 2,000.
      expect(totals[0]).toBeGreaterThan(16 + 2 * 8);
      expect(report.items).toBe(47_268);
      expect(report.warnings ?? []).toEqual([]);
      expect(dump(target, 'sakila')).toBe(dump(source, 'sakila'));
      expect(await calls(target)).toEqual(expectedCalls);
      expect(await triggersFire(target)).toEqual(expectedTriggers);
      expect(await verify(source, target, 'sakila', { chunkRows: 2000 })).toMatchObject({ ok: true, differences: [] });
      if (!loadData) {
        // What verify must see: a trigger gone, a spatial value moved, a payment changed.
        await sql(target, 'USE sakila; DROP TRIGGER del_film; UPDATE address SET location = POINT(1, 2) WHERE address_id = 3; UPDATE payment SET amount = amount + 1 WHERE payment_id = 15000');
        const verified = await verify(source, target, 'sakila', { chunkRows: 2000 });
        expect(verified.ok).toBe(false);
        expect(verified.differences).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ object: expect.stringMatching(/^sakila\.address( chunk|$)/), kind: 'different' }),
            expect.objectContaining({ object: expect.stringMatching(/^sakila\.payment chunk payment_id \d+\.\.\d*/), kind: 'different' }),
            expect.objectContaining({ object: 'trigger sakila.del_film', kind: 'missing' }),
          ]),
        );
        expect(verified.differences).toHaveLength(3);
      }
    }
  }, 120_000);

  it('a cancelled copy resumed with the same checkpoint ends exactly like the source', async () => {
    const target = await newServer();
    const checkpointPath = checkpointIn('sakila');
    const controller = new AbortController();
    let chunks = 0;
    const first = await copy(source, target, 'sakila', { concurrency: 3, chunkRows: 2000, checkpointPath, signal: controller.signal, onProgress: () => ++chunks === 4 && controller.abort() }).catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(first)).toBe(true);
    // Something was written, not everything: the run stopped midway.
    const [written] = await select(target, "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sakila' AND TABLE_TYPE = 'BASE TABLE'");
    expect(Number(written?.n)).toBe(16);
    expect(dump(target, 'sakila')).not.toBe(dump(source, 'sakila'));
    // The source moves on between the runs.
    await sql(source, "UPDATE sakila.actor SET first_name = 'RESUMED' WHERE actor_id = 1; UPDATE sakila.payment SET amount = 0.99 WHERE payment_id IN (1, 16049)");
    const resumed = await copy(source, target, 'sakila', { concurrency: 3, chunkRows: 2000, checkpointPath });
    expect(resumed.resumed).toBe(true);
    expect(dump(target, 'sakila')).toBe(dump(source, 'sakila'));
    expect(await verify(source, target, 'sakila', { chunkRows: 2000 })).toMatchObject({ ok: true });
  }, 120_000);
});

describe('employees: views on views', () => {
  it('copies the schema with generated rows; current_dept_emp reads the same on both sides', async () => {
    await runClient(source, await readFile(new URL('./fixtures/employees/employees-schema.sql', import.meta.url), 'utf8'));
    const day = (from: string, days: number) => new Date(Date.parse(`${from}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
    const departments = ['d001', 'd002', 'd003', 'd004', 'd005', 'd006', 'd007', 'd008', 'd009'];
    const people: unknown[][] = [];
    const deptEmp: unknown[][] = [];
    const titles: unknown[][] = [];
    const salaries: unknown[][] = [];
    for (let index = 0; index < 3000; index++) {
      const emp = 10_001 + index;
      const hired = day('1985-01-01', (index * 37) % 5000);
      people.push([emp, day('1955-01-01', (index * 131) % 3650), `First${index % 97}`, `Last${index % 211}`, index % 2 ? 'M' : 'F', hired]);
      const moved = index % 3 === 0;
      const moveDate = day(hired, 400 + (index % 300));
      deptEmp.push([emp, departments[index % 9], hired, moved ? moveDate : '9999-01-01']);
      if (moved) deptEmp.push([emp, departments[(index + 4) % 9], moveDate, '9999-01-01']);
      titles.push([emp, 'Engineer', hired, index % 4 === 0 ? moveDate : '9999-01-01']);
      if (index % 4 === 0) titles.push([emp, 'Senior Engineer', moveDate, '9999-01-01']);
      for (let year = 0; year < 5; year++) salaries.push([emp, 40_000 + ((index * 7919 + year * 104_729) % 60_000), day(hired, year * 365), year === 4 ? '9999-01-01' : day(hired, (year + 1) * 365)]);
    }
    const managers = departments.flatMap((dept, index) => [
      [10_001 + index, dept, '1985-01-01', '1991-10-01'],
      [10_101 + index, dept, '1991-10-01', '9999-01-01'],
    ]);
    await sql(source, 'USE employees; INSERT INTO employees VALUES ?; INSERT INTO dept_emp VALUES ?; INSERT INTO titles VALUES ?; INSERT INTO salaries VALUES ?; INSERT INTO dept_manager VALUES ?', [people, deptEmp, titles, salaries, managers]);

    const target = await newServer();
    const report = await copy(source, target, 'employees', { chunkRows: 1000 });
    expect(report.items).toBe(9 + 3000 + deptEmp.length + titles.length + 15_000 + managers.length);
    expect(dump(target, 'employees')).toBe(dump(source, 'employees'));
    const current = (server: MariaDbServer) => select(server, 'SELECT * FROM employees.current_dept_emp ORDER BY emp_no, dept_no');
    const expected = await current(source);
    expect(expected).toHaveLength(3000);
    expect(await current(target)).toEqual(expected);
    const functions = (server: MariaDbServer) => select(server, "SELECT employees.emp_dept_name(10004) AS dept, employees.emp_name(10002) AS name, employees.current_manager('d003') AS manager");
    expect(await functions(target)).toEqual(await functions(source));
    expect(await verify(source, target, 'employees', { chunkRows: 1000 })).toMatchObject({ ok: true, differences: [] });
    // The view on the view, redefined by hand on the target: named.
    await sql(target, 'USE employees; CREATE OR REPLACE VIEW dept_emp_latest_date AS SELECT emp_no, MIN(from_date) AS from_date, MAX(to_date) AS to_date FROM dept_emp GROUP BY emp_no');
    const verified = await verify(source, target, 'employees', { chunkRows: 1000 });
    expect(verified.differences).toEqual([expect.objectContaining({ object: 'view employees.dept_emp_latest_date', kind: 'different' })]);
  }, 120_000);
});

describe('a lax source into a strict target', () => {
  it('zero dates in defaults and rows, and programs made under sql_mode "", copy exactly on both write paths', async () => {
    const [lax, strict] = await Promise.all([newServer(['--sql-mode=']), newServer([`--sql-mode=${STRICT}`])]);
    expect(await select(strict, 'SELECT @@GLOBAL.sql_mode AS mode')).toEqual([{ mode: 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION' }]);
    await sql(
      lax,
      `SET SESSION sql_mode = ''; CREATE DATABASE lax; USE lax;
       CREATE TABLE dates (id INT PRIMARY KEY, d DATE NOT NULL DEFAULT '0000-00-00', dt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
         ts TIMESTAMP NOT NULL DEFAULT '0000-00-00 00:00:00', partial DATE NULL, short VARCHAR(5) NOT NULL DEFAULT '', KEY by_d (d)) ENGINE=InnoDB;
       INSERT INTO dates (id) VALUES (1);
       INSERT INTO dates VALUES (2, '2020-00-15', '2020-05-00 10:00:00', '0000-00-00 00:00:00', '0000-00-00', 'truncated on the way in'), (3, '2024-03-10', '2024-03-10 02:30:00', '2024-03-10 07:30:00', NULL, 'ok');
       CREATE TABLE divided (id INT PRIMARY KEY, ratio INT NULL) ENGINE=InnoDB;
       INSERT INTO divided VALUES (1, 1 / 0), (2, 10 DIV 3);
       CREATE TRIGGER zero_partial BEFORE INSERT ON dates FOR EACH ROW SET NEW.partial = COALESCE(NEW.partial, '0000-00-00');
       CREATE PROCEDURE add_zero(IN n INT) INSERT INTO dates (id, d, dt) VALUES (n, '0000-00-00', '2021-00-00 00:00:00');
       CREATE VIEW zeros AS SELECT id, d FROM dates WHERE d = '0000-00-00';`,
    );
    expect(await select(lax, "SELECT id, d, partial, short FROM lax.dates ORDER BY id")).toEqual([
      { id: 1, d: '0000-00-00', partial: null, short: '' },
      { id: 2, d: '2020-00-15', partial: '0000-00-00', short: 'trunc' },
      { id: 3, d: '2024-03-10', partial: null, short: 'ok' },
    ]);
    for (const loadData of [true, false]) {
      const report = await copy(lax, strict, 'lax', { loadData, replaceExisting: true });
      expect(report.items).toBe(5);
      expect(dump(strict, 'lax')).toBe(dump(lax, 'lax'));
      expect(await verify(lax, strict, 'lax')).toMatchObject({ ok: true, differences: [] });
    }
    // The procedure and trigger run under their own sql_mode on the strict target, as on the source.
    await sql(lax, 'CALL lax.add_zero(10)');
    await sql(strict, 'CALL lax.add_zero(10)');
    expect(await select(strict, 'SELECT * FROM lax.zeros ORDER BY id')).toEqual([{ id: 1, d: '0000-00-00' }, { id: 10, d: '0000-00-00' }]);
    expect(dump(strict, 'lax')).toBe(dump(lax, 'lax'));
    await sql(strict, "SET SESSION sql_mode = ''; UPDATE lax.dates SET partial = '2020-01-01' WHERE id = 2");
    const verified = await verify(lax, strict, 'lax');
    expect(verified.differences).toEqual([expect.objectContaining({ object: 'lax.dates', kind: 'different' })]);
  }, 120_000);
});

describe('DEFINER through the mover', () => {
  const OWNED = `
    CREATE USER 'app'@'%'; CREATE USER 'ghost'@'%';
    CREATE DATABASE owned; USE owned;
    CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB;
    INSERT INTO t VALUES (1, 10), (2, 20), (3, 30);
    GRANT SELECT, INSERT, EXECUTE ON owned.* TO 'app'@'%'; GRANT SELECT, DELETE ON owned.* TO 'ghost'@'%';
    CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW app_view AS SELECT id, v FROM t;
    CREATE DEFINER='ghost'@'%' SQL SECURITY DEFINER VIEW ghost_view AS SELECT id FROM t WHERE v > 10;
    CREATE DEFINER='app'@'%' FUNCTION app_total() RETURNS INT READS SQL DATA RETURN (SELECT SUM(v) FROM t);
    CREATE DEFINER='ghost'@'%' PROCEDURE ghost_count(OUT n INT) SELECT COUNT(*) INTO n FROM t;
    CREATE DEFINER='ghost'@'%' TRIGGER ghost_trigger BEFORE INSERT ON t FOR EACH ROW SET NEW.v = NEW.v * 2;
    CREATE DEFINER='app'@'%' EVENT app_event ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM t WHERE id < 0;
    CREATE DEFINER='ghost'@'%' EVENT ghost_event ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM t WHERE id < 0;`;
  const GHOSTS = ['view owned.ghost_view', 'procedure owned.ghost_count', 'trigger owned.ghost_trigger', 'event owned.ghost_event'];

  it('keeps a definer the target has, reports each object whose definer it lacks, and with users keeps them all', async () => {
    await sql(source, OWNED);
    const [target, withUsers] = await Promise.all([newServer(), newServer()]);
    await sql(target, "CREATE USER 'app'@'%'; GRANT SELECT, INSERT, EXECUTE ON *.* TO 'app'@'%'");
    const report = await copy(source, target, 'owned');
    const warnings = report.warnings ?? [];
    expect(warnings).toHaveLength(GHOSTS.length);
    for (const object of GHOSTS) expect(warnings.filter((warning) => warning.startsWith(`${object}: DEFINER \`ghost\`@\`%\` is not on the target`))).toHaveLength(1);
    expect(warnings.join('\n')).not.toMatch(/app/);
    // The dump differs exactly in those definers: the copy's login in place of the missing account.
    expect(dump(target, 'owned')).toBe(dump(source, 'owned').replaceAll('`ghost`@`%`', '`root`@`127.0.0.1`'));
    const definers = (server: MariaDbServer) =>
      select(server, "SELECT DEFINER AS definer FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'owned' AND TABLE_NAME = 'app_view' UNION ALL SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'owned' AND ROUTINE_NAME = 'app_total' UNION ALL SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'owned' AND EVENT_NAME = 'app_event'");
    expect(await definers(target)).toEqual([{ definer: 'app@%' }, { definer: 'app@%' }, { definer: 'app@%' }]);
    // Every object works on the target.
    expect(await select(target, 'SELECT (SELECT COUNT(*) FROM owned.ghost_view) AS ghosts, (SELECT COUNT(*) FROM owned.app_view) AS apps, owned.app_total() AS total')).toEqual([{ ghosts: '2', apps: '3', total: 60 }]);
    const verified = await verify(source, target, 'owned');
    expect(verified).toMatchObject({ ok: true, differences: [] });
    for (const object of GHOSTS) expect(verified.notes?.filter((note) => note.startsWith(`${object}: DEFINER \`ghost\`@\`%\` is not on the target`))).toHaveLength(1);
    // A definer changed by hand, to an account the target has: a difference, named.
    await sql(target, "ALTER DEFINER = 'root'@'127.0.0.1' SQL SECURITY DEFINER VIEW owned.app_view AS SELECT id, v FROM owned.t");
    const changed = await verify(source, target, 'owned');
    expect(changed.differences).toEqual([{ object: 'view owned.app_view', kind: 'different', detail: expect.stringContaining('DEFINER `app`@`%` on the source, `root`@`127.0.0.1` on the target') }]);

    const copied = await copy(source, withUsers, 'owned', { users: true });
    expect(copied.warnings ?? []).toEqual([]);
    expect(copied.accounts?.copied).toEqual(expect.arrayContaining(["'app'@'%'", "'ghost'@'%'"]));
    expect(dump(withUsers, 'owned')).toBe(dump(source, 'owned'));
    expect(await verify(source, withUsers, 'owned', { users: true })).toMatchObject({ ok: true, differences: [] });
  }, 120_000);
});

describe('events and sequences through the mover', () => {
  it('a sequence continues where the source would after a restart; events keep ENABLED and DISABLED', async () => {
    await sql(
      source,
      `CREATE DATABASE timed; USE timed;
       CREATE SEQUENCE seq START WITH 1 INCREMENT BY 1 CACHE 10;
       CREATE TABLE tickets (id BIGINT PRIMARY KEY DEFAULT NEXTVAL(seq), label VARCHAR(20) NOT NULL) ENGINE=InnoDB;
       INSERT INTO tickets (label) VALUES ('a'), ('b'), ('c');
       SELECT NEXTVAL(seq);
       CREATE EVENT on_event ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' ON COMPLETION PRESERVE ENABLE DO INSERT INTO tickets (label) VALUES ('tick');
       CREATE EVENT off_event ON SCHEDULE EVERY 1 DAY STARTS '2030-06-01 12:00:00' ENDS '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM tickets WHERE label = 'tick';`,
    );
    const target = await newServer();
    await copy(source, target, 'timed');
    expect(dump(target, 'timed')).toBe(dump(source, 'timed'));
    expect(await verify(source, target, 'timed')).toMatchObject({ ok: true, differences: [] });
    const statuses = (server: MariaDbServer) => select(server, "SELECT EVENT_NAME AS name, STATUS AS status FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'timed' ORDER BY EVENT_NAME");
    expect(await statuses(target)).toEqual([{ name: 'off_event', status: 'DISABLED' }, { name: 'on_event', status: 'ENABLED' }]);
    expect(await statuses(target)).toEqual(await statuses(source));
    // The source hands out from its cache (5) until its table is flushed: then from the stored state, as the target does.
    await sql(source, 'FLUSH TABLES timed.seq');
    const [[fromSource], [fromTarget]] = [await select(source, 'SELECT NEXTVAL(timed.seq) AS n'), await select(target, 'SELECT NEXTVAL(timed.seq) AS n')];
    expect(Number(fromSource?.n)).toBeGreaterThan(5);
    expect(fromTarget).toEqual(fromSource);
    await Promise.all([sql(source, "INSERT INTO timed.tickets (label) VALUES ('after')"), sql(target, "INSERT INTO timed.tickets (label) VALUES ('after')")]);
    expect(await select(target, 'SELECT * FROM timed.tickets ORDER BY id')).toEqual(await select(source, 'SELECT * FROM timed.tickets ORDER BY id'));
    // By hand on the target: an event's status and the sequence's state.
    await sql(target, 'ALTER EVENT timed.on_event DISABLE; SELECT SETVAL(timed.seq, 500)');
    const verified = await verify(source, target, 'timed');
    expect(verified.differences).toEqual([
      { object: 'event timed.on_event', kind: 'different', detail: expect.stringContaining('status ENABLED on the source, DISABLED on the target') },
      { object: 'sequence timed.seq', kind: 'different', detail: expect.stringMatching(/next_not_cached_value \d+ on the source, 501 on the target/) },
    ]);
  }, 120_000);
});

describe('refused before anything is written', () => {
  it('a target login lacking ALTER, CREATE VIEW and TRIGGER: one ValidationError naming them', async () => {
    const target = await newServer();
    await sql(
      target,
      `CREATE USER 'migrator'@'%' IDENTIFIED BY 'm1grate-pw';
       GRANT CREATE, DROP, INSERT, DELETE, SELECT, REFERENCES, CREATE ROUTINE, ALTER ROUTINE, EVENT ON sakila.* TO 'migrator'@'%';
       GRANT SUPER ON *.* TO 'migrator'@'%';
       -- To see that the definers (root@127.0.0.1) exist here, and so keep them.
       GRANT SELECT ON mysql.user TO 'migrator'@'%';`,
    );
    const [before, databases] = [await binlogAt(target), await databasesOn(target)];
    const error = await refusal(new MysqlDataMover().copy(endpoint(source, 'sakila'), endpoint(target, 'sakila', 'migrator', 'm1grate-pw'), { deferIndexes: true }));
    expect(error.issues).toEqual([
      {
        path: 'target.privileges',
        message: expect.stringMatching(/^the target login 'migrator'@'%' lacks ALTER \(.*\), CREATE VIEW \(.*\), TRIGGER \(.*\) on `sakila`\.\*$/),
        fix: "GRANT ALTER, CREATE VIEW, TRIGGER ON `sakila`.* TO 'migrator'@'%'",
      },
    ]);
    expect(await databasesOn(target)).toEqual(databases);
    expect(databases).not.toContain('sakila');
    expect(await binlogAt(target)).toBe(before);
    // Granted them, the same login copies it exactly.
    await sql(target, "GRANT ALTER, CREATE VIEW, TRIGGER ON sakila.* TO 'migrator'@'%'");
    const report = await new MysqlDataMover().copy(endpoint(source, 'sakila'), endpoint(target, 'sakila', 'migrator', 'm1grate-pw'), { deferIndexes: true });
    expect(report.warnings ?? []).toEqual([]);
    expect(dump(target, 'sakila')).toBe(dump(source, 'sakila'));
    expect(await verify(source, target, 'sakila')).toMatchObject({ ok: true, differences: [] });
  }, 120_000);

  it('a 2 MB row of a table with a BIT column, which goes by INSERT, over a target max_allowed_packet of 1M', async () => {
    await sql(
      source,
      `CREATE DATABASE packet; USE packet;
       CREATE TABLE flagged (id INT PRIMARY KEY, bits BIT(8) NOT NULL, body LONGTEXT NOT NULL) ENGINE=InnoDB;
       INSERT INTO flagged VALUES (1, b'101', REPEAT('x', 2 * 1024 * 1024)), (2, b'1', 'small');
       CREATE TABLE plain (id INT PRIMARY KEY, body LONGTEXT NOT NULL) ENGINE=InnoDB;
       INSERT INTO plain VALUES (1, REPEAT('y', 2 * 1024 * 1024));`,
    );
    const target = await newServer(['--max-allowed-packet=1M']);
    const [before, databases] = [await binlogAt(target), await databasesOn(target)];
    const error = await refusal(copy(source, target, 'packet'));
    const row = error.issues.find((issue) => issue.path === 'target.packet.flagged');
    expect(row?.message).toMatch(/^its largest row makes an INSERT of about 2097\d{3} bytes \(2\.0 MiB\), over the target's max_allowed_packet of 1048576 \(1\.0 MiB\): its BIT or spatial columns go by INSERT$/);
    // The table without BIT goes by LOAD DATA, which max_allowed_packet does not bound.
    expect(error.issues.map((issue) => issue.path)).not.toContain('target.packet.plain');
    expect(await databasesOn(target)).toEqual(databases);
    expect(await binlogAt(target)).toBe(before);
  }, 120_000);

  it('a resumed copy whose target now has a view named like a source table', async () => {
    await sql(
      source,
      `CREATE DATABASE renamed; USE renamed;
       CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL) ENGINE=InnoDB;
       CREATE TABLE notes (line VARCHAR(40) NOT NULL) ENGINE=InnoDB;
       INSERT INTO notes VALUES ('one'), ('two');`,
    );
    await sql(source, 'INSERT INTO renamed.items VALUES ?', [Array.from({ length: 5000 }, (_, index) => [index + 1, `item ${index + 1}`])]);
    const target = await newServer();
    const checkpointPath = checkpointIn('renamed');
    const controller = new AbortController();
    const first = await copy(source, target, 'renamed', { chunkRows: 1000, concurrency: 1, checkpointPath, signal: controller.signal, onProgress: () => controller.abort() }).catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(first)).toBe(true);
    // Someone puts a view where the copy's table was.
    await sql(target, "DROP TABLE renamed.notes; CREATE VIEW renamed.notes AS SELECT 'not a table' AS line");
    const tables = (server: MariaDbServer) => select(server, "SELECT TABLE_NAME AS name, TABLE_TYPE AS type, TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'renamed' ORDER BY TABLE_NAME");
    const [before, shape] = [await binlogAt(target), await tables(target)];
    const resumed = await refusal(copy(source, target, 'renamed', { chunkRows: 1000, checkpointPath }));
    expect(resumed.issues).toEqual([
      { path: 'target.renamed.notes', message: "the source's table renamed.notes would be written over the target's view of the same name", fix: "drop or rename the target's view renamed.notes, or pass replaceExisting: true" },
    ]);
    // Without the checkpoint the database is someone's: refused as a whole.
    const fresh = await refusal(copy(source, target, 'renamed', { chunkRows: 1000 }));
    expect(fresh.issues).toEqual([expect.objectContaining({ path: 'target.renamed', message: 'database renamed exists with tables' })]);
    expect(await binlogAt(target)).toBe(before);
    expect(await tables(target)).toEqual(shape);
    // Replaced, it is the source's again.
    await copy(source, target, 'renamed', { chunkRows: 1000, replaceExisting: true });
    expect(dump(target, 'renamed')).toBe(dump(source, 'renamed'));
  }, 120_000);
});

describe('awkward tables', () => {
  it('a keyless table with duplicate rows, a composite key, and every byte value in a BLOB and a latin1 VARCHAR', async () => {
    await sql(
      source,
      `CREATE DATABASE shapes; USE shapes;
       CREATE TABLE keyless (a INT NULL, b VARCHAR(10) NULL) ENGINE=InnoDB;
       INSERT INTO keyless VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, 'y'), (2, 'y'), (NULL, NULL), (NULL, NULL), (3, '');
       CREATE TABLE composite (region CHAR(2) NOT NULL, id INT NOT NULL, at DATE NOT NULL, amount DECIMAL(10,2) NULL, PRIMARY KEY (region, id, at), KEY by_amount (amount)) ENGINE=InnoDB;
       CREATE TABLE bytes (id INT PRIMARY KEY, b BLOB NULL, s VARCHAR(300) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL, c CHAR(1) CHARACTER SET latin1 NULL) ENGINE=InnoDB;`,
    );
    const composite = Array.from({ length: 3000 }, (_, index) => [['eu', 'us', 'ap'][index % 3], Math.floor(index / 3), `2024-0${1 + (index % 9)}-1${index % 10}`, index % 7 === 0 ? null : (index * 1.25).toFixed(2)]);
    await sql(source, 'INSERT INTO shapes.composite VALUES ?', [composite]);
    // One row per byte value, and rows with all 256 in order and reversed.
    const all = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    const statements = Array.from({ length: 256 }, (_, byte) => `(${byte}, X'${byte.toString(16).padStart(2, '0')}', CONVERT(X'${byte.toString(16).padStart(2, '0')}' USING latin1), CONVERT(X'${byte.toString(16).padStart(2, '0')}' USING latin1))`);
    statements.push(`(256, X'${all.toString('hex')}', CONVERT(X'${all.toString('hex')}' USING latin1), NULL)`, `(257, X'${Buffer.from(all).reverse().toString('hex')}', CONVERT(X'${Buffer.from(all).reverse().toString('hex')}' USING latin1), '')`);
    await sql(source, `INSERT INTO shapes.bytes VALUES ${statements.join(', ')}`);
    const hex = (server: MariaDbServer) => select(server, 'SELECT id, HEX(b) AS b, HEX(s) AS s, HEX(c) AS c, LENGTH(s) AS length FROM shapes.bytes ORDER BY id');
    const expected = await hex(source);
    expect(expected[256]).toEqual({ id: 256, b: all.toString('hex').toUpperCase(), s: all.toString('hex').toUpperCase(), c: null, length: 256 });
    const multiset = (server: MariaDbServer) => select(server, 'SELECT a, b, COUNT(*) AS n FROM shapes.keyless GROUP BY a, b ORDER BY a, b');
    for (const loadData of [true, false]) {
      const target = await newServer();
      const report = await copy(source, target, 'shapes', { loadData, chunkRows: 100, concurrency: 3 });
      expect(report.items).toBe(8 + 3000 + 258);
      expect(dump(target, 'shapes')).toBe(dump(source, 'shapes'));
      expect(await hex(target)).toEqual(expected);
      expect(await multiset(target)).toEqual(await multiset(source));
      expect(await verify(source, target, 'shapes', { chunkRows: 100 })).toMatchObject({ ok: true, differences: [] });
      // By hand: one duplicate fewer, one byte changed in the latin1 text, one composite row's amount.
      await sql(target, "DELETE FROM shapes.keyless WHERE a = 1 LIMIT 1; UPDATE shapes.bytes SET s = CONVERT(X'FE' USING latin1) WHERE id = 255; UPDATE shapes.composite SET amount = 0 WHERE region = 'us' AND id = 500");
      const verified = await verify(source, target, 'shapes', { chunkRows: 100 });
      expect(verified.differences).toEqual([
        { object: 'shapes.bytes chunk id 200..', kind: 'different', detail: expect.stringMatching(/^58 rows \(checksum \d+\) on the source, 58 \(checksum \d+\) on the target$/) },
        { object: 'shapes.composite', kind: 'different', detail: expect.stringMatching(/^3000 rows .* 3000 /) },
        { object: 'shapes.keyless', kind: 'different', detail: expect.stringMatching(/^8 rows \(checksum \d+\) on the source, 7 /) },
      ]);
    }
  }, 120_000);
});
