/**
 * Tables as the copy and verify see them: which columns carry data (generated ones are computed by
 * the target; INVISIBLE ones are named, since `SELECT *` leaves them out), how each is read so it
 * arrives exact (FLOAT through DOUBLE's text, which round-trips, where FLOAT's own text does not),
 * the key that cuts a table into chunks, and whether the table is in the snapshot at all
 * (non-transactional engines are not).
 */
import { type Connection, quoteName, rows } from './sql.js';

export interface ColumnPlan {
  name: string;
  /** information_schema's DATA_TYPE: `int`, `float`, `varchar`, ... */
  dataType: string;
  /** A generated column (VIRTUAL or STORED): its value is computed, never written. */
  generated: boolean;
  nullable: boolean;
}

export type TableKind = 'table' | 'versioned';

export interface TablePlan {
  database: string;
  table: string;
  /** `versioned`: WITH SYSTEM VERSIONING, copied whole with its history rows. */
  kind: TableKind;
  engine: string;
  /** In the InnoDB snapshot. Other engines (MyISAM, Aria, MEMORY...) are read under the read lock. */
  transactional: boolean;
  /** The columns written, in order: every stored, non-generated one, invisible ones and a versioned table's period included. */
  columns: string[];
  /** The same columns as read from the source, one expression each (FLOAT as DOUBLE). */
  selectList: string[];
  /** The same columns' types and nullability (checksum.ts encodes each by its type). */
  columnFacts: Array<{ dataType: string; nullable: boolean }>;
  /** The single integer primary key column, when there is one: chunks are ranges of it. */
  intKey?: string;
  /** The primary key columns (for ordering whole-table reads). */
  key: string[];
  /** The source's estimate of its rows (information_schema), for `deferIndexes: 'auto'`. */
  rowsEstimate: number;
  /** No column whose text form LOAD DATA would misread (BIT, spatial, vector). */
  loadable: boolean;
}

const NOT_LOADABLE = new Set(['bit', 'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'vector']);
/** Engines whose tables a consistent-snapshot transaction sees as of its start. */
const TRANSACTIONAL = new Set(['innodb', 'rocksdb', 'tokudb']);

/**
 * How a column is read so that its value arrives exact. FLOAT's text has 6 significant digits and
 * loses bits (mysqldump too); cast to DOUBLE, whose text the server prints with as many digits as
 * it takes to round-trip, it is exact, and the target rounds it back to the same FLOAT.
 */
export const readExpression = (column: ColumnPlan) => (column.dataType === 'float' ? `CAST(${quoteName(column.name)} AS DOUBLE)` : quoteName(column.name));

/** The period columns of a system-versioned table: named in its CREATE TABLE, or MariaDB's implicit ROW_START/ROW_END. */
export function periodColumns(createTable: string): [string, string] {
  const period = /PERIOD FOR SYSTEM_TIME \(`((?:[^`]|``)+)`, `((?:[^`]|``)+)`\)/.exec(createTable);
  return period?.[1] && period[2] ? [period[1].replaceAll('``', '`'), period[2].replaceAll('``', '`')] : ['ROW_START', 'ROW_END'];
}

export interface SourceTable {
  name: string;
  kind: TableKind;
  engine: string;
  rowsEstimate: number;
}

/** Base and system-versioned tables of a database (views and sequences are schema objects of their own). */
export async function listTables(connection: Connection, database: string): Promise<SourceTable[]> {
  const listed = await rows<{ name: string; type: string; engine: string | null; rowsEstimate: string | null }>(
    connection,
    "SELECT TABLE_NAME AS name, TABLE_TYPE AS type, ENGINE AS engine, TABLE_ROWS AS rowsEstimate FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
    [database],
  );
  return listed.map((entry) => ({ name: entry.name, kind: entry.type === 'SYSTEM VERSIONED' ? 'versioned' : 'table', engine: entry.engine ?? '', rowsEstimate: Number(entry.rowsEstimate ?? 0) }));
}

/**
 * The plan of every table of a database. `tables`: the database's tables when the caller has
 * listed them already (else they are listed here); `createTables` maps a table to its `SHOW
 * CREATE TABLE` text (only versioned tables need it, for their period columns).
 */
export async function tablePlans(connection: Connection, database: string, known: { tables?: SourceTable[]; createTables?: Map<string, string> } = {}): Promise<TablePlan[]> {
  const { createTables } = known;
  const tables = known.tables ?? (await listTables(connection, database));
  const columns = await rows<{ tableName: string; name: string; key: string; type: string; generated: string; extra: string; nullable: string }>(
    connection,
    'SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, COLUMN_KEY AS `key`, DATA_TYPE AS type, IS_GENERATED AS generated, EXTRA AS extra, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION',
    [database],
  );
  const byTable = new Map<string, typeof columns>();
  for (const column of columns) byTable.set(column.tableName, [...(byTable.get(column.tableName) ?? []), column]);
  return tables.map((entry): TablePlan => {
    const own = byTable.get(entry.name) ?? [];
    const plans: ColumnPlan[] = own.map((column) => ({ name: column.name, dataType: column.type.toLowerCase(), generated: column.generated === 'ALWAYS' || /GENERATED/i.test(column.extra), nullable: column.nullable === 'YES' }));
    let written = plans.filter((column) => !column.generated);
    if (entry.kind === 'versioned') {
      // The period columns are generated (AS ROW START/END), yet carry the history: written with
      // system_versioning_insert_history. Implicit ones are not in information_schema at all.
      const period = periodColumns(createTables?.get(entry.name) ?? '');
      written = [...written.filter((column) => !period.includes(column.name)), ...period.map((name) => ({ name, dataType: 'timestamp', generated: false, nullable: false }))];
    }
    const key = own.filter((column) => column.key === 'PRI' && (entry.kind !== 'versioned' || !/GENERATED/i.test(column.extra)));
    const intKey = entry.kind === 'table' && key.length === 1 && /int$/.test(key[0]?.type ?? '') ? key[0]?.name : undefined;
    return {
      database,
      table: entry.name,
      kind: entry.kind,
      engine: entry.engine,
      transactional: TRANSACTIONAL.has(entry.engine.toLowerCase()),
      columns: written.map((column) => column.name),
      selectList: written.map(readExpression),
      columnFacts: written.map((column) => ({ dataType: column.dataType, nullable: column.nullable })),
      key: key.map((column) => column.name),
      rowsEstimate: entry.rowsEstimate,
      loadable: written.every((column) => !NOT_LOADABLE.has(column.dataType)),
      ...(intKey ? { intKey } : {}),
    };
  });
}

/** `FROM db.table`, with `FOR SYSTEM_TIME ALL` on a versioned table so its history is read too. */
export const fromClause = (plan: TablePlan) => `${quoteName(plan.database)}.${quoteName(plan.table)}${plan.kind === 'versioned' ? ' FOR SYSTEM_TIME ALL' : ''}`;
