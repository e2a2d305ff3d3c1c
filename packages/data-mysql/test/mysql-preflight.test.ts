/**
 * The preflight on real MariaDB servers: a restricted target login gets one error naming every
 * privilege it lacks, and nothing is written on either server (their binary logs do not move);
 * the same privileges given through a default role pass, and are then enough for the statements
 * the copy runs. A row over the target's max_allowed_packet is refused for INSERT, not for
 * LOAD DATA LOCAL (which, as seen here, a 1 MB limit does not stop); a target view named like a
 * source table, and a storage engine the target lacks, are refused.
 */
import { ValidationError, type DataEndpoint } from '@armada/core';
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { Readable } from 'node:stream';
import { createConnection, type QueryOptions } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CopyIntent, Grants, parseGrant, preflightMysql } from '../src/preflight.js';
import { type Connection, connectTo, rows } from '../src/sql.js';
import { tablePlans } from '../src/tables.js';

let source: MariaDbServer;
let target: MariaDbServer;
let small: MariaDbServer;
const asRoot = (server: MariaDbServer) => createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true });
const endpoint = (server: MariaDbServer, user = 'root', password?: string): DataEndpoint => ({ host: server.host, port: server.port, user, ...(password ? { password } : {}) });

async function run(server: MariaDbServer, sql: string): Promise<void> {
  const connection = await asRoot(server);
  try {
    await connection.query(sql);
  } finally {
    await connection.end();
  }
}

/** The intent a copy of these databases would have, read from the source as the mover does. */
async function intentFor(connection: Connection, databases: string[], overrides: Partial<CopyIntent> = {}): Promise<CopyIntent> {
  const tables = (await Promise.all(databases.map((database) => tablePlans(connection, database)))).flat();
  const count = async (sql: string) => Number((await rows<{ n: number }>(connection, sql, [databases]))[0]?.n ?? 0) > 0;
  return {
    databases,
    tables,
    has: {
      views: await count("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE = 'VIEW'"),
      routines: await count('SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (?)'),
      triggers: await count('SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (?)'),
      events: await count('SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (?)'),
      sequences: await count("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE = 'SEQUENCE'"),
      versioned: tables.some((plan) => plan.kind === 'versioned'),
    },
    keptDefiners: [],
    replaceExisting: false,
    users: false,
    loadData: true,
    deferIndexes: true,
    skipTargetBinlog: true,
    ...overrides,
  };
}

/** Runs the preflight with these logins; the thrown ValidationError, or undefined. */
async function preflight(sourceLogin: DataEndpoint, targetLogin: DataEndpoint, databases: string[], overrides: Partial<CopyIntent> = {}) {
  const from = await connectTo(sourceLogin, 'source');
  const to = await connectTo(targetLogin, 'target');
  try {
    const intent = await intentFor(from, databases, overrides);
    const report = await preflightMysql(from, to, { source: sourceLogin, target: targetLogin }, intent);
    return { report, error: undefined };
  } catch (error) {
    if (!ValidationError.isInstance(error)) throw error;
    return { report: undefined, error };
  } finally {
    await Promise.all([from.end(), to.end()]);
  }
}

const binlogAt = async (server: MariaDbServer) => {
  const connection = await asRoot(server);
  const [[status]] = (await connection.query('SHOW MASTER STATUS')) as unknown as [[{ File: string; Position: number }]];
  await connection.end();
  return `${status.File}:${status.Position}`;
};

describe('SHOW GRANTS, read as the server does', () => {
  it('parses privileges, objects and grant option, and skips role and proxy lines', () => {
    expect(parseGrant('GRANT SELECT, INSERT, CREATE, DROP ON `shop\\_%`.* TO `m`@`%`')).toMatchObject({ grantee: 'm@%', database: 'shop\\_%', privileges: new Set(['SELECT', 'INSERT', 'CREATE', 'DROP']), grantOption: false });
    expect(parseGrant("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION")).toMatchObject({ database: '*', privileges: new Set(['ALL']), grantOption: true });
    expect(parseGrant('GRANT SELECT (`id`, `name`), UPDATE ON `shop`.`items` TO `w`@`%`')).toMatchObject({ database: 'shop', table: 'items', privileges: new Set(['UPDATE']) });
    expect(parseGrant('GRANT `ddl` TO `m`@`%`')).toBeUndefined();
    expect(parseGrant('GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION')).toBeUndefined();
    expect(parseGrant('GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `m`@`%`')).toBeUndefined();
  });

  it('counts only the first database grant that matches, per grantee, and adds up the roles', () => {
    const grants = new Grants("'u'@'%'", [
      'GRANT USAGE ON *.* TO `u`@`%`',
      'GRANT SELECT ON `s%`.* TO `u`@`%`',
      'GRANT INSERT ON `shop`.* TO `u`@`%`',
      'GRANT DELETE ON `shop`.* TO `role`',
      'GRANT UPDATE ON `shop`.`items` TO `u`@`%`',
    ]);
    // The exact name comes first; the pattern's SELECT does not add to it (the server agrees: seen on MariaDB 10.11).
    expect([...grants.on('shop')].sort()).toEqual(['DELETE', 'INSERT', 'USAGE']);
    expect([...grants.on('shop', 'items')].sort()).toEqual(['DELETE', 'INSERT', 'UPDATE', 'USAGE']);
    expect(grants.holdsOn('stock', 'SELECT')).toBe(true);
    expect(grants.holdsOn('xshop', 'SELECT')).toBe(false);
    expect(new Grants("'u'@'%'", ['GRANT SELECT ON `shop\\_%`.* TO `u`@`%`']).holdsOn('shopXeu', 'SELECT')).toBe(false);
  });
});

describe('MySQL preflight', () => {
  beforeAll(async () => {
    [source, target, small] = await Promise.all([startMariaDbServer(), startMariaDbServer(), startMariaDbServer({ args: ['--max-allowed-packet=1M'] })]);
    await run(
      source,
      `CREATE DATABASE shop;
       CREATE TABLE shop.categories (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL) ENGINE=InnoDB;
       CREATE TABLE shop.items (id INT PRIMARY KEY, category INT NOT NULL, name VARCHAR(50) NOT NULL, KEY by_category (category),
         CONSTRAINT item_category FOREIGN KEY (category) REFERENCES shop.categories (id)) ENGINE=InnoDB;
       INSERT INTO shop.categories VALUES (1, 'tools'); INSERT INTO shop.items VALUES (1, 1, 'hammer');
       CREATE VIEW shop.cheap AS SELECT id, name FROM shop.items;
       CREATE PROCEDURE shop.restock() SELECT COUNT(*) FROM shop.items;
       CREATE FUNCTION shop.item_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM shop.items);
       CREATE TRIGGER shop.named BEFORE INSERT ON shop.items FOR EACH ROW SET NEW.name = TRIM(NEW.name);
       CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM shop.items WHERE id < 0;
       CREATE DATABASE shop_big; CREATE TABLE shop_big.blobs (id INT PRIMARY KEY, body LONGTEXT NOT NULL) ENGINE=InnoDB;
       INSERT INTO shop_big.blobs VALUES (1, REPEAT('x', 2 * 1024 * 1024)), (2, 'small');
       CREATE USER 'reader'@'%' IDENTIFIED BY 'r3ad-pw'; GRANT SELECT ON shop.* TO 'reader'@'%';`,
    );
    await run(target, "CREATE USER 'migrator'@'%' IDENTIFIED BY 'm1grate-pw'; GRANT CREATE, DROP, INSERT, DELETE, SELECT, REFERENCES ON `shop`.* TO 'migrator'@'%';");
  });

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop(), small?.stop()]);
  });

  it('names every privilege a restricted target login lacks, in one error, and writes nothing', async () => {
    const before = [await binlogAt(source), await binlogAt(target)];
    const { error } = await preflight(endpoint(source), endpoint(target, 'migrator', 'm1grate-pw'), ['shop']);
    expect(error).toBeDefined();
    const onShop = error?.issues.find((issue) => issue.path === 'target.privileges' && issue.message.includes('`shop`.*'));
    for (const privilege of ['ALTER', 'CREATE VIEW', 'CREATE ROUTINE', 'ALTER ROUTINE', 'TRIGGER', 'EVENT']) expect(onShop?.message).toContain(`${privilege} (`);
    // What it has is not asked for.
    for (const privilege of ['INSERT', 'DELETE', 'REFERENCES']) expect(onShop?.message).not.toContain(`${privilege} (`);
    expect(onShop?.fix).toBe("GRANT ALTER, CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT ON `shop`.* TO 'migrator'@'%'");
    // The target logs its binary log and does not trust function creators: triggers and functions need SUPER.
    const global = error?.issues.find((issue) => issue.path === 'target.privileges' && issue.message.includes('on the server'));
    expect(global?.fix).toBe("GRANT SUPER ON *.* TO 'migrator'@'%'");
    expect(error?.message).toContain('before anything was written');
    // Nothing written: no database on the target, and neither binary log has moved.
    const connection = await asRoot(target);
    const [databases] = (await connection.query("SHOW DATABASES LIKE 'shop'")) as unknown as [unknown[]];
    await connection.end();
    expect(databases).toEqual([]);
    expect([await binlogAt(source), await binlogAt(target)]).toEqual(before);
  });

  it('passes once the privileges come through a default role, and they are enough for what the copy runs', async () => {
    await run(
      target,
      `CREATE ROLE copier; GRANT ALTER, CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT ON \`shop\`.* TO copier; GRANT SUPER ON *.* TO copier;
       GRANT copier TO 'migrator'@'%'; SET DEFAULT ROLE copier FOR 'migrator'@'%';`,
    );
    const login = endpoint(target, 'migrator', 'm1grate-pw');
    const { error, report } = await preflight(endpoint(source), login, ['shop']);
    expect(error?.issues).toBeUndefined();
    // SUPER lets it keep the load out of the binary log: nothing to say.
    expect(report?.notes).toEqual([]);
    // The statements a copy runs, as this login: each one allowed.
    const connection = await connectTo(login, 'target');
    try {
      for (const statement of [
        'CREATE DATABASE IF NOT EXISTS shop',
        'CREATE TABLE IF NOT EXISTS shop.categories (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL) ENGINE=InnoDB',
        'CREATE TABLE IF NOT EXISTS shop.items (id INT PRIMARY KEY, category INT NOT NULL, name VARCHAR(50) NOT NULL) ENGINE=InnoDB',
        "INSERT INTO shop.categories VALUES (1, 'tools')",
        "INSERT INTO shop.items VALUES (1, 1, 'hammer')",
        'DELETE FROM shop.items WHERE id >= 2',
        'ALTER TABLE shop.items ADD KEY by_category (category), ADD CONSTRAINT item_category FOREIGN KEY (category) REFERENCES shop.categories (id)',
        'CREATE OR REPLACE VIEW shop.cheap AS SELECT id, name FROM shop.items',
        'DROP PROCEDURE IF EXISTS shop.restock',
        'CREATE PROCEDURE shop.restock() SELECT COUNT(*) FROM shop.items',
        'DROP FUNCTION IF EXISTS shop.item_count',
        'CREATE FUNCTION shop.item_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM shop.items)',
        'DROP TRIGGER IF EXISTS shop.named',
        'CREATE TRIGGER shop.named BEFORE INSERT ON shop.items FOR EACH ROW SET NEW.name = TRIM(NEW.name)',
        'CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM shop.items WHERE id < 0',
        'SET SESSION sql_log_bin = 0',
      ]) {
        await expect(connection.query(statement).then(() => statement)).resolves.toBe(statement);
      }
    } finally {
      await connection.end();
      await run(target, 'DROP DATABASE shop');
    }
  });

  it('names what a SELECT-only source login cannot read or lock', async () => {
    const { error } = await preflight(endpoint(source, 'reader', 'r3ad-pw'), endpoint(target), ['shop']);
    const found = error?.issues.filter((issue) => issue.path === 'source.privileges') ?? [];
    expect(found.find((issue) => issue.message.includes('`shop`.*'))?.fix).toBe("GRANT SHOW VIEW, TRIGGER, EVENT ON `shop`.* TO 'reader'@'%'");
    expect(found.find((issue) => issue.message.includes('`mysql`.`proc`'))?.fix).toBe("GRANT SELECT ON `mysql`.`proc` TO 'reader'@'%'");
    expect(found.find((issue) => issue.message.includes('on the server'))?.fix).toBe("GRANT RELOAD, BINLOG MONITOR ON *.* TO 'reader'@'%'");
  });

  it('refuses a row over the target max_allowed_packet when it goes by INSERT, naming the table and both sizes', async () => {
    const { error } = await preflight(endpoint(source), endpoint(small), ['shop_big'], { loadData: false });
    const row = error?.issues.find((issue) => issue.path === 'target.shop_big.blobs');
    expect(row?.message).toMatch(/largest row makes an INSERT of about 2097\d{3} bytes \(2\.0 MiB\), over the target's max_allowed_packet of 1048576 \(1\.0 MiB\)/);
    expect(row?.fix).toMatch(/^SET GLOBAL max_allowed_packet = 4194304 on the target, or let the copy use LOAD DATA LOCAL/);
    // Batches of 1 MiB of values do not fit a 1 MiB packet either, whatever the rows.
    expect(error?.issues.find((issue) => issue.path === 'target.max_allowed_packet')?.message).toContain('INSERT batches of 1048576 bytes');
  });

  it('lets LOAD DATA LOCAL carry that row: the 1 MiB limit does not bound it, and INSERT is refused', async () => {
    const { error } = await preflight(endpoint(source), endpoint(small), ['shop_big'], { loadData: true });
    expect(error?.issues).toBeUndefined();
    await run(small, 'CREATE DATABASE shop_big; CREATE TABLE shop_big.blobs (id INT PRIMARY KEY, body LONGTEXT NOT NULL) ENGINE=InnoDB');
    const connection = await connectTo(endpoint(small), 'target');
    try {
      const body = Buffer.concat([Buffer.from('1\t'), Buffer.alloc(2 * 1024 * 1024, 'x'), Buffer.from('\n')]);
      const pieces = function* () {
        for (let at = 0; at < body.length; at += 256 * 1024) yield body.subarray(at, at + 256 * 1024);
      };
      const sql = "LOAD DATA LOCAL INFILE 'chunk' INTO TABLE shop_big.blobs FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (id, body)";
      await connection.query({ sql, infileStreamFactory: () => Readable.from(pieces()) } as QueryOptions);
      expect(await rows(connection, 'SELECT id, LENGTH(body) AS bytes FROM shop_big.blobs')).toEqual([{ id: 1, bytes: 2097152 }]);
      // The same row as an INSERT: the server drops the connection.
      await expect(connection.query('INSERT INTO shop_big.blobs VALUES (2, ?)', ['y'.repeat(2 * 1024 * 1024)])).rejects.toThrow();
    } finally {
      await connection.end().catch(() => undefined);
      await run(small, 'DROP DATABASE shop_big');
    }
  });

  it('refuses a target view named like a source table, unless the database is replaced', async () => {
    await run(target, 'CREATE DATABASE shop; CREATE VIEW shop.items AS SELECT 1 AS id');
    try {
      const { error } = await preflight(endpoint(source), endpoint(target), ['shop']);
      expect(error?.issues).toEqual([
        { path: 'target.shop.items', message: "the source's table shop.items would be written over the target's view of the same name", fix: "drop or rename the target's view shop.items, or pass replaceExisting: true" },
      ]);
      expect((await preflight(endpoint(source), endpoint(target), ['shop'], { replaceExisting: true })).error?.issues).toBeUndefined();
    } finally {
      await run(target, 'DROP DATABASE shop');
    }
  });

  it('refuses tables whose storage engine the target lacks', async () => {
    // ARCHIVE ships as a plugin: installed on the source only, the two servers differ honestly.
    await run(source, "INSTALL SONAME 'ha_archive'; CREATE DATABASE logs; CREATE TABLE logs.visits (at DATETIME NOT NULL, page VARCHAR(100) NOT NULL) ENGINE=ARCHIVE;");
    const connection = await asRoot(target);
    const [engines] = (await connection.query("SELECT ENGINE FROM information_schema.ENGINES WHERE ENGINE = 'ARCHIVE' AND SUPPORT IN ('YES', 'DEFAULT')")) as unknown as [unknown[]];
    await connection.end();
    expect(engines).toEqual([]);
    const { error } = await preflight(endpoint(source), endpoint(target), ['logs']);
    expect(error?.issues).toEqual([{ path: 'target.engines.ARCHIVE', message: 'the target has no ARCHIVE storage engine, which logs.visits uses', fix: "INSTALL SONAME 'ha_archive' on the target (if the server ships it), or change the tables' engine on the source" }]);
  });
});
