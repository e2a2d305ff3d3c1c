/**
 * Views, routines, triggers, events and sequences copied by the schema modules between two real
 * MariaDB servers started by the test: each case is checked against the source without the
 * modules' own compare (mysqldump of both sides, calling the functions, NEXTVAL), then compare() is
 * shown to pass, and to name each difference made by hand on the target.
 */
import { execFileSync } from 'node:child_process';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection, type Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ObjectCopyContext, definerPolicy, events, routines, sequences, triggers, views } from '../src/schema/index.js';
import { dependencyOrder, viewsRead } from '../src/schema/views.js';
import { connectTo, rows } from '../src/sql.js';

let source: MariaDbServer;
let target: MariaDbServer;
let sourceConnection: Connection;
let targetConnection: Connection;
const warnings: string[] = [];
/** The character sets of the target connections the modules opened for themselves. */
const opened: string[] = [];
const endpoint = (server: MariaDbServer) => ({ host: server.host, port: server.port, user: 'root' });
const dump = (server: MariaDbServer, database = 'shop') =>
  execFileSync('mysqldump', ['--no-defaults', '-h', server.host, '-P', String(server.port), '-u', 'root', '--no-data', '--routines', '--triggers', '--events', '--skip-dump-date', '--skip-comments', '--databases', database], { encoding: 'utf8' });
const connect = (server: MariaDbServer, charset?: string) => createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true, ...(charset ? { charset } : {}) });

/** Tables and rows: what the mover copies before and around the objects (made on both sides alike). */
const TABLES = `
  CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
  CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2) NOT NULL, note VARCHAR(50) NULL);
  CREATE TABLE shop.audit (id INT AUTO_INCREMENT PRIMARY KEY, message VARCHAR(100) NOT NULL);
  INSERT INTO shop.orders VALUES (1, 50, 'small'), (2, 300, 'big'), (3, 900, NULL);
`;

async function populateSource(): Promise<void> {
  const connection = await connect(source);
  await connection.query(TABLES);
  await connection.query(`
    CREATE USER 'app'@'%';
    CREATE USER 'ghost'@'%';
    GRANT SELECT ON shop.* TO 'ghost'@'%';
    USE shop;
    SET sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT');
    CREATE FUNCTION joined(a VARCHAR(50), b VARCHAR(50)) RETURNS VARCHAR(100) DETERMINISTIC RETURN a || b;
    SET sql_mode = 'ANSI_QUOTES';
    CREATE FUNCTION order_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM "orders");
    SET sql_mode = DEFAULT;
    CREATE DEFINER='app'@'%' PROCEDURE app_proc(OUT n INT) SELECT COUNT(*) INTO n FROM orders;
    CREATE DEFINER='ghost'@'%' PROCEDURE ghost_proc(OUT n INT) SELECT MAX(id) INTO n FROM orders;
    CREATE DEFINER='app'@'%' SQL SECURITY INVOKER VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100;
    CREATE VIEW a_top AS SELECT id, total FROM big_orders WHERE total > 500;
    CREATE VIEW z_top_count AS SELECT COUNT(*) AS n FROM a_top;
    CREATE VIEW uses_function AS SELECT id, joined(note, '!') AS shout FROM orders;
    CREATE DEFINER='ghost'@'%' SQL SECURITY DEFINER VIEW ghost_view AS SELECT id FROM orders;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (message) VALUES (CONCAT('second ', NEW.id));
    CREATE TRIGGER orders_audit_first AFTER INSERT ON orders FOR EACH ROW PRECEDES orders_audit INSERT INTO audit (message) VALUES (CONCAT('first ', NEW.id));
    CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' ON COMPLETION PRESERVE ENABLE COMMENT 'clears the audit' DO DELETE FROM audit;
    CREATE EVENT paused ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' ENDS '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM audit WHERE id < 10;
    SET time_zone = '+02:00';
    CREATE EVENT at_noon_plus_two ON SCHEDULE AT '2031-06-01 12:00:00' ON COMPLETION PRESERVE DO INSERT INTO audit (message) VALUES ('noon');
    SET time_zone = DEFAULT;
    CREATE SEQUENCE order_ids START WITH 100 INCREMENT BY 10 CACHE 5;
    SELECT NEXTVAL(order_ids), NEXTVAL(order_ids), NEXTVAL(order_ids);
    CREATE SEQUENCE tickets START WITH 1 MAXVALUE 3 CYCLE CACHE 0;
    SELECT NEXTVAL(tickets), NEXTVAL(tickets), NEXTVAL(tickets), NEXTVAL(tickets);
  `);
  // A routine written from a latin1 client: its body is stored as that client sent it.
  const latin1 = await connect(source, 'latin1');
  await latin1.query("CREATE FUNCTION shop.greeting() RETURNS VARCHAR(40) CHARSET utf8mb4 DETERMINISTIC RETURN 'Grüße, café'");
  await latin1.end();
  // The database's collation changed after its programs were made: they keep the old one.
  await connection.query('ALTER DATABASE shop COLLATE utf8mb4_bin');
  await connection.end();
}

async function prepareTarget(): Promise<void> {
  const connection = await connect(target);
  await connection.query(`${TABLES} ALTER DATABASE shop COLLATE utf8mb4_bin; CREATE USER 'app'@'%';`);
  // A database whose view reads a table the target does not have.
  await connection.query('CREATE DATABASE broken');
  await connection.end();
}

/** The copy, in the mover's order, as a resumed copy would run it too. */
async function copyObjects(context: ObjectCopyContext): Promise<void> {
  await sequences.create('shop', await sequences.read(context.source, 'shop'), context);
  await routines.create('shop', await routines.read(context.source, 'shop'), context);
  await views.create('shop', await views.read(context.source, 'shop'), context);
  await triggers.create('shop', await triggers.read(context.source, 'shop'), context);
  await events.create('shop', await events.read(context.source, 'shop'), context);
}

const contextFor = async (): Promise<ObjectCopyContext> => ({
  source: sourceConnection,
  target: targetConnection,
  openTarget: (charset) => {
    opened.push(charset);
    return connectTo(endpoint(target), 'target', { charset });
  },
  keepsDefiner: await definerPolicy(targetConnection, []),
  warn: (message) => warnings.push(message),
});

const value = async (connection: Connection, sql: string) => Object.values((await rows<Record<string, unknown>>(connection, sql))[0] ?? {})[0];
const both = async (sql: string) => [await value(sourceConnection, sql), await value(targetConnection, sql)];

describe('schema objects between real MariaDB servers', () => {
  beforeAll(async () => {
    [source, target] = await Promise.all([startMariaDbServer({ timeZone: 'America/New_York' }), startMariaDbServer({ timeZone: 'America/New_York' })]);
    await Promise.all([populateSource(), prepareTarget()]);
    sourceConnection = await connectTo(endpoint(source), 'source');
    targetConnection = await connectTo(endpoint(target), 'target');
    await targetConnection.query('SET SESSION FOREIGN_KEY_CHECKS = 0');
    await copyObjects(await contextFor());
  }, 120_000);
  afterAll(async () => {
    await Promise.all([sourceConnection?.end(), targetConnection?.end()]);
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('makes the target equal to the source (mysqldump of both), twice over: create is idempotent', async () => {
    // The ghost account is not on the target: its objects run as the copy's login there.
    const expected = dump(source).replaceAll('`ghost`@`%`', '`root`@`127.0.0.1`');
    expect(dump(target)).toBe(expected);
    await copyObjects(await contextFor());
    expect(dump(target)).toBe(expected);
    expect(dump(target)).toContain('CREATE DEFINER=`app`@`%` PROCEDURE');
  });

  it('keeps a DEFINER the target has, and reports one it lacks', async () => {
    const [definerOf] = await rows<{ definer: string }>(targetConnection, "SELECT DEFINER AS definer FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'big_orders'");
    expect(definerOf?.definer).toBe('app@%');
    // Two copies ran: each reported both objects.
    expect([...new Set(warnings)].sort()).toEqual([
      "procedure shop.ghost_proc: DEFINER `ghost`@`%` is not on the target; created with the copy's login as definer",
      "view shop.ghost_view: DEFINER `ghost`@`%` is not on the target; created with the copy's login as definer",
    ]);
    const [security] = await rows<{ security: string }>(targetConnection, "SELECT SECURITY_TYPE AS security FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'ghost_view'");
    expect(security?.security).toBe('DEFINER');
  });

  it('runs the functions as they run on the source: PIPES_AS_CONCAT, ANSI_QUOTES, latin1 text', async () => {
    expect(await both("SELECT shop.joined('ab', 'cd')")).toEqual(['abcd', 'abcd']);
    expect(await both('SELECT shop.order_count()')).toEqual([3, 3]);
    expect(await both('SELECT shop.greeting()')).toEqual(['Grüße, café', 'Grüße, café']);
    expect(await both('SELECT GROUP_CONCAT(shout ORDER BY id) FROM shop.uses_function')).toEqual(['small!,big!', 'small!,big!']);
    expect(await both('SELECT n FROM shop.z_top_count')).toEqual(['1', '1']);
    const settings = "SELECT CONCAT_WS('|', SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' AND ROUTINE_NAME = 'greeting'";
    const [onSource, onTarget] = await both(settings);
    expect(onTarget).toBe(onSource);
    expect(onTarget).toMatch(/\|latin1\|latin1_swedish_ci\|utf8mb4_unicode_ci$/);
    // Its text went over a latin1 connection (one per copy: two copies ran), not as UTF-8 bytes labelled latin1.
    expect(opened).toEqual(['latin1', 'latin1']);
    // The collation switched for the programs' CREATE is put back.
    expect(await value(targetConnection, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'")).toBe('utf8mb4_bin');
  });

  it('fires the triggers in the source order', async () => {
    for (const connection of [sourceConnection, targetConnection]) await connection.query('INSERT INTO shop.orders VALUES (10, 1, NULL)');
    const audit = 'SELECT GROUP_CONCAT(message ORDER BY id) FROM shop.audit';
    expect(await both(audit)).toEqual(['first 10,second 10', 'first 10,second 10']);
  });

  it('keeps events with their status, schedule and time zone', async () => {
    const listing = "SELECT GROUP_CONCAT(CONCAT_WS('|', EVENT_NAME, STATUS, TIME_ZONE, EXECUTE_AT, STARTS, ENDS, ON_COMPLETION, EVENT_COMMENT) ORDER BY EVENT_NAME SEPARATOR '\\n') FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'shop'";
    const [onSource, onTarget] = await both(listing);
    expect(onTarget).toBe(onSource);
    expect(String(onTarget).split('\n')).toEqual([
      'at_noon_plus_two|ENABLED|+02:00|2031-06-01 12:00:00|PRESERVE|',
      'nightly|ENABLED|SYSTEM|2030-01-01 03:00:00|PRESERVE|clears the audit',
      'paused|DISABLED|SYSTEM|2030-01-01 00:00:00|2031-01-01 00:00:00|PRESERVE|',
    ]);
  });

  it('gives the sequences the state the source restarts with', async () => {
    const state = (name: string) => `SELECT CONCAT_WS('|', next_not_cached_value, minimum_value, maximum_value, start_value, increment, cache_size, cycle_option, cycle_count) FROM shop.${name}`;
    expect(await both(state('order_ids'))).toEqual(['150|1|9223372036854775806|100|10|5|0|0', '150|1|9223372036854775806|100|10|5|0|0']);
    expect(await both(state('tickets'))).toEqual(['2|1|3|1|1|0|1|1', '2|1|3|1|1|0|1|1']);
    // FLUSH TABLES drops the source's cache, as a restart does: from there both hand out the same values.
    await sourceConnection.query('FLUSH TABLES shop.order_ids, shop.tickets');
    expect(await both('SELECT NEXTVAL(shop.order_ids)')).toEqual(['150', '150']);
    expect(await both('SELECT NEXTVAL(shop.tickets)')).toEqual(['2', '2']);
    expect(await both(state('order_ids'))).toEqual(['200|1|9223372036854775806|100|10|5|0|0', '200|1|9223372036854775806|100|10|5|0|0']);
  });

  it('compare() finds nothing to report but the DEFINER the target lacks', async () => {
    const results = await Promise.all([sequences, routines, views, triggers, events].map((kind) => kind.compare(sourceConnection, targetConnection, 'shop')));
    expect(results.map((result) => result.compared)).toEqual([2, 5, 5, 2, 3]);
    expect(results.flatMap((result) => result.differences)).toEqual([]);
    expect(results.flatMap((result) => result.notes)).toEqual([
      'procedure shop.ghost_proc: DEFINER `ghost`@`%` is not on the target; it has `root`@`127.0.0.1` there',
      'view shop.ghost_view: DEFINER `ghost`@`%` is not on the target; it has `root`@`127.0.0.1` there',
    ]);
  });

  it('fails naming the view when what it reads is not on the target', async () => {
    await sourceConnection.query('CREATE DATABASE broken');
    await sourceConnection.query('CREATE TABLE broken.only_on_source (id INT)');
    await sourceConnection.query('CREATE VIEW broken.reads_missing AS SELECT id FROM broken.only_on_source');
    await sourceConnection.query('CREATE VIEW broken.fine AS SELECT 1 AS one');
    const found = await views.read(sourceConnection, 'broken');
    await expect(views.create('broken', found, await contextFor())).rejects.toThrow(/^Could not create a view on the target, each reading a table or view that is not there: view broken\.reads_missing: Table 'broken\.only_on_source' doesn't exist \(ER_NO_SUCH_TABLE\)$/);
    // The others were made.
    expect(await value(targetConnection, 'SELECT one FROM broken.fine')).toBe(1);
  });

  it('compare() names every difference made by hand on the target', async () => {
    const byHand = await connect(target);
    await byHand.query(`
      USE shop;
      CREATE OR REPLACE VIEW a_top AS SELECT id, total FROM big_orders WHERE total > 400;
      CREATE OR REPLACE DEFINER='root'@'127.0.0.1' SQL SECURITY INVOKER VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100;
      DROP FUNCTION joined;
      DROP FUNCTION greeting;
      CREATE FUNCTION greeting() RETURNS VARCHAR(40) CHARSET utf8mb4 DETERMINISTIC RETURN 'Grüße, café';
      CREATE TRIGGER extra_trigger BEFORE UPDATE ON orders FOR EACH ROW SET NEW.note = 'x';
      ALTER EVENT nightly DISABLE;
      SELECT SETVAL(order_ids, 5000);
    `);
    await byHand.end();
    const results = await Promise.all([sequences, routines, views, triggers, events].map((kind) => kind.compare(sourceConnection, targetConnection, 'shop')));
    const found = results.flatMap((result) => result.differences);
    expect(found.map(({ object, kind }) => `${kind} ${object}`).sort()).toEqual([
      'different event shop.nightly',
      'different function shop.greeting',
      'different sequence shop.order_ids',
      'different view shop.a_top',
      'different view shop.big_orders',
      'extra trigger shop.extra_trigger',
      'missing function shop.joined',
    ]);
    const detail = (object: string) => found.find((difference) => difference.object === object)?.detail;
    // ALTER EVENT also records the database's collation of now: the server's doing, and a true difference.
    expect(detail('event shop.nightly')).toBe('status ENABLED on the source, DISABLED on the target; database collation utf8mb4_unicode_ci on the source, utf8mb4_bin on the target');
    expect(detail('function shop.greeting')).toMatch(/character_set_client latin1 on the source, utf8mb4 on the target/);
    expect(detail('sequence shop.order_ids')).toMatch(/^next_not_cached_value 200 on the source, \d+ on the target$/);
    expect(detail('view shop.a_top')).toMatch(/^definition differs at character \d+: .*500.* on the source, .*400.* on the target$/);
    expect(detail('view shop.big_orders')).toBe('DEFINER `app`@`%` on the source, `root`@`127.0.0.1` on the target');
  });

  it('orders views by what they read, also as MariaDB prints them in their own database', () => {
    const view = (name: string, body: string) => ({ name, object: `view shop.${name}`, statement: `CREATE ALGORITHM=UNDEFINED DEFINER=\`root\`@\`%\` SQL SECURITY DEFINER VIEW \`${name}\` AS ${body}`, characterSetClient: 'utf8mb4', collationConnection: 'utf8mb4_general_ci', definer: '`root`@`%`' });
    const names = new Set(['current_dept_emp', 'dept_emp_latest_date', 'id']);
    // Unqualified (SHOW CREATE VIEW from a session in `shop`): `id` as a column adds nothing.
    expect([...viewsRead('CREATE VIEW `current_dept_emp` AS select `l`.`id` AS `emp_no` from `dept_emp_latest_date` `l` join `other`.`id`', 'shop', names, 'current_dept_emp')]).toEqual(['dept_emp_latest_date']);
    expect([...viewsRead('CREATE VIEW `shop`.`x` AS select `shop`.`dept_emp_latest_date`.`id` AS `id` from `shop`.`dept_emp_latest_date`', 'shop', names, 'x')]).toEqual(['dept_emp_latest_date']);
    const ordered = dependencyOrder([view('current_dept_emp', 'select 1 from `shop`.`dept_emp_latest_date`'), view('dept_emp_latest_date', 'select 1 from `shop`.`dept_emp`')], 'shop');
    expect(ordered.map((entry) => entry.name)).toEqual(['dept_emp_latest_date', 'current_dept_emp']);
  });
});
