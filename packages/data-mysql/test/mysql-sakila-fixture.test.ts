/**
 * The Sakila fixture loads on MariaDB 10.11 as the other tests expect it: every table with the row
 * counts of Sakila 1.5, its views (each of which resolves), procedures, functions and triggers, the FULLTEXT
 * index of film_text, and, unwrapped from MySQL's version comments, the spatial address.location.
 * The employees schema fixture loads beside it, with its view on a view.
 */
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { loadSakila, runClient } from './fixtures/sakila/load.js';

let server: MariaDbServer;
let connection: Connection;
const query = async <T>(sql: string) => (await connection.query<RowDataPacket[]>(sql))[0] as unknown as T[];

const ROWS: Record<string, number> = {
  actor: 200, address: 603, category: 16, city: 600, country: 109, customer: 599, film: 1000, film_actor: 5462, film_category: 1000,
  film_text: 1000, inventory: 4581, language: 6, payment: 16044, rental: 16044, staff: 2, store: 2,
};

beforeAll(async () => {
  server = await startMariaDbServer();
  await loadSakila(server);
  connection = await createConnection({ host: server.host, port: server.port, user: 'root', database: 'sakila' });
});

afterAll(async () => {
  await connection?.end();
  await server?.stop();
});

describe('Sakila fixture', () => {
  it('has every table with its rows', async () => {
    const tables = await query<{ name: string }>("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sakila' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME");
    expect(tables.map((table) => table.name)).toEqual(Object.keys(ROWS));
    const counts: Record<string, number> = {};
    for (const name of Object.keys(ROWS)) counts[name] = Number((await query<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${name}\``))[0]?.n);
    expect(counts).toEqual(ROWS);
    // Ids with gaps: rental ids always had five; version 1.3 dropped five payments (1.2 had 16049).
    expect(await query('SELECT (SELECT MAX(payment_id) FROM payment) AS payment, (SELECT MAX(rental_id) FROM rental) AS rental')).toEqual([{ payment: 16049, rental: 16049 }]);
  });

  it('has its views, routines and triggers, and each view resolves', async () => {
    const views = await query<{ name: string }>("SELECT TABLE_NAME AS name FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'sakila' ORDER BY TABLE_NAME");
    expect(views.map((view) => view.name)).toEqual(['actor_info', 'customer_list', 'film_list', 'nicer_but_slower_film_list', 'sales_by_film_category', 'sales_by_store', 'staff_list']);
    // LIMIT 0: each view resolves its tables and columns without computing its rows (the film lists take seconds).
    for (const { name } of views) expect(await query(`SELECT * FROM \`${name}\` LIMIT 0`)).toEqual([]);
    const routines = await query<{ name: string; type: string }>("SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'sakila' ORDER BY ROUTINE_NAME");
    expect(routines).toEqual([
      { name: 'film_in_stock', type: 'PROCEDURE' },
      { name: 'film_not_in_stock', type: 'PROCEDURE' },
      { name: 'get_customer_balance', type: 'FUNCTION' },
      { name: 'inventory_held_by_customer', type: 'FUNCTION' },
      { name: 'inventory_in_stock', type: 'FUNCTION' },
      { name: 'rewards_report', type: 'PROCEDURE' },
    ]);
    const triggers = await query<{ name: string; table: string }>("SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS `table` FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'sakila' ORDER BY TRIGGER_NAME");
    expect(triggers).toEqual([
      { name: 'customer_create_date', table: 'customer' },
      { name: 'del_film', table: 'film' },
      { name: 'ins_film', table: 'film' },
      { name: 'payment_date', table: 'payment' },
      { name: 'rental_date', table: 'rental' },
      { name: 'upd_film', table: 'film' },
    ]);
    expect(await query('SELECT inventory_in_stock(1) AS inStock')).toEqual([{ inStock: 1 }]);
  });

  it('has the FULLTEXT index of film_text and the spatial address.location', async () => {
    const indexes = await query<{ table: string; name: string; type: string }>(
      "SELECT DISTINCT TABLE_NAME AS `table`, INDEX_NAME AS name, INDEX_TYPE AS type FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'sakila' AND INDEX_TYPE IN ('FULLTEXT', 'SPATIAL') ORDER BY TABLE_NAME",
    );
    expect(indexes).toEqual([
      { table: 'address', name: 'idx_location', type: 'SPATIAL' },
      { table: 'film_text', name: 'idx_title_description', type: 'FULLTEXT' },
    ]);
    expect(await query("SELECT COUNT(*) AS n FROM film_text WHERE MATCH (title, description) AGAINST ('drama')")).toEqual([{ n: expect.any(Number) }]);
    expect(await query('SELECT ST_AsText(location) AS at, ST_SRID(location) AS srid FROM address WHERE address_id = 1')).toEqual([{ at: 'POINT(-112.8185647 49.6999986)', srid: 0 }]);
  });
});

describe('employees schema fixture', () => {
  it('loads its tables, views (one on another) and routines', async () => {
    await runClient(server, await readFile(new URL('./fixtures/employees/employees-schema.sql', import.meta.url), 'utf8'));
    const objects = await query<{ name: string; type: string }>("SELECT TABLE_NAME AS name, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'employees' ORDER BY TABLE_NAME");
    expect(objects.filter((entry) => entry.type === 'VIEW').map((entry) => entry.name)).toEqual(['current_dept_emp', 'dept_emp_latest_date', 'v_full_departments', 'v_full_employees']);
    expect(objects.filter((entry) => entry.type === 'BASE TABLE')).toHaveLength(6);
    const uses = await query<{ view: string; table: string }>("SELECT VIEW_NAME AS view, TABLE_NAME AS `table` FROM information_schema.VIEW_TABLE_USAGE WHERE VIEW_SCHEMA = 'employees' AND VIEW_NAME = 'current_dept_emp' ORDER BY TABLE_NAME").catch(() => undefined);
    // VIEW_TABLE_USAGE is MariaDB 11.2+; where it is missing the definition says it.
    if (uses) expect(uses.map((entry) => entry.table)).toContain('dept_emp_latest_date');
    else expect(String((await query<Record<string, string>>('SHOW CREATE VIEW employees.current_dept_emp'))[0]?.['Create View'])).toContain('`dept_emp_latest_date`');
    expect(await query("SELECT COUNT(*) AS n FROM employees.departments")).toEqual([{ n: 9 }]);
    expect(await query("SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'employees'")).toEqual([{ n: 7 }]);
  });
});
