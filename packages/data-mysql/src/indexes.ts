/**
 * Secondary indexes built after the load. A table is created without its secondary keys (and the
 * foreign keys that would need them), loaded, then given them back in one `ALTER TABLE` per table:
 * InnoDB then builds each index by sorting, instead of inserting every row into every index.
 *
 * The keys come from the source's own `SHOW CREATE TABLE` lines, so the result is the same text.
 * The final build compares with what the target already has, so it is idempotent: a resumed copy
 * adds only what is missing, whichever mode its first run used.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { qualified } from './sql.js';

/** A key or foreign key left out of `CREATE TABLE`, added back after the load. */
export interface DeferredPart {
  kind: 'index' | 'foreign';
  name: string;
  /** The definition as `SHOW CREATE TABLE` printed it: `KEY \`by_customer\` (\`customer_id\`)`. */
  definition: string;
}

/** What the source says about a table, to know which keys must stay in `CREATE TABLE`. */
export interface KeyFacts {
  /** Index name → its columns, in order. */
  indexColumns: Map<string, string[]>;
  /** Column lists that foreign keys of other tables (or this one) reference here. */
  referenced: string[][];
  /** The AUTO_INCREMENT column, if any: InnoDB needs an index starting with it at all times. */
  autoIncrement?: string;
  hasPrimaryKey: boolean;
}

const KEY_LINE = /^ {2}(UNIQUE )?KEY `((?:[^`]|``)+)` /;
const FOREIGN_LINE = /^ {2}CONSTRAINT `((?:[^`]|``)+)` FOREIGN KEY /;
const unquote = (name: string) => name.replaceAll('``', '`');
const startsWith = (columns: string[], prefix: string[]) => prefix.length > 0 && prefix.every((column, index) => columns[index] === column);

/**
 * Why a key stays in `CREATE TABLE`: a key the AUTO_INCREMENT column needs; a unique key of a
 * table without a primary key (InnoDB would make it the clustered index, so adding it later
 * rebuilds the table); a key another table's foreign key points at. FULLTEXT and SPATIAL keys
 * never match KEY_LINE: adding the first FULLTEXT key later rebuilds the table too.
 */
function mustStay(name: string, unique: boolean, facts: KeyFacts): boolean {
  const columns = facts.indexColumns.get(name) ?? [];
  if (facts.autoIncrement !== undefined && columns[0] === facts.autoIncrement) return true;
  if (unique && !facts.hasPrimaryKey) return true;
  return facts.referenced.some((referenced) => startsWith(columns, referenced));
}

/** `CREATE TABLE` without the deferrable keys and foreign keys, and those parts. */
export function splitCreateTable(createTable: string, facts: KeyFacts): { create: string; deferred: DeferredPart[] } {
  const lines = createTable.split('\n');
  const end = lines.findIndex((line, index) => index > 0 && line.startsWith(')'));
  if (end < 0) return { create: createTable, deferred: [] };
  const kept: string[] = [];
  const deferred: DeferredPart[] = [];
  // The server prints keys unique ones first, FULLTEXT last, and otherwise in the order they were
  // added: a key kept after a deferred one of its class would end up printed before it.
  const deferredClasses = new Set<string>();
  let reordered = false;
  for (const line of lines.slice(1, end)) {
    const definition = line.trim().replace(/,$/, '');
    const key = KEY_LINE.exec(line);
    const foreign = FOREIGN_LINE.exec(line);
    const keyClass = /^ {2}UNIQUE KEY /.test(line) ? 'unique' : /^ {2}(?:SPATIAL |VECTOR )?KEY /.test(line) ? 'plain' : undefined;
    if (key?.[2] !== undefined && !mustStay(unquote(key[2]), key[1] !== undefined, facts)) {
      deferred.push({ kind: 'index', name: unquote(key[2]), definition });
      deferredClasses.add(keyClass ?? '');
    }
    // Foreign keys go with their indexes: kept in CREATE, InnoDB would make an index of its own for them.
    else if (foreign?.[1] !== undefined) deferred.push({ kind: 'foreign', name: unquote(foreign[1]), definition });
    else {
      if (keyClass !== undefined && deferredClasses.has(keyClass)) reordered = true;
      kept.push(`  ${definition}`);
    }
  }
  // Deferring would change the table's definition (its keys' order): it keeps them all instead.
  if (reordered || !deferred.some((part) => part.kind === 'index')) return { create: createTable, deferred: [] };
  return { create: [lines[0], kept.join(',\n'), ...lines.slice(end)].join('\n'), deferred };
}

/** The source's facts for every table of a database, in three queries. */
export async function keyFacts(source: Connection, database: string): Promise<Map<string, KeyFacts>> {
  const query = async <T>(sql: string) => (await source.query<RowDataPacket[]>(sql, [database]))[0] as unknown as T[];
  const indexes = await query<{ tableName: string; name: string; column: string }>(
    'SELECT TABLE_NAME AS tableName, INDEX_NAME AS name, COLUMN_NAME AS `column` FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX',
  );
  const references = await query<{ tableName: string; constraintName: string; column: string }>(
    "SELECT REFERENCED_TABLE_NAME AS tableName, CONCAT_WS('`.`', TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME) AS constraintName, REFERENCED_COLUMN_NAME AS `column` FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_SCHEMA = ? ORDER BY constraintName, POSITION_IN_UNIQUE_CONSTRAINT",
  );
  const autoIncrements = await query<{ tableName: string; column: string }>(
    "SELECT TABLE_NAME AS tableName, COLUMN_NAME AS `column` FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND EXTRA LIKE '%auto_increment%'",
  );
  const facts = new Map<string, KeyFacts>();
  const of = (table: string): KeyFacts => {
    let found = facts.get(table);
    if (!found) facts.set(table, (found = { indexColumns: new Map(), referenced: [], hasPrimaryKey: false }));
    return found;
  };
  for (const entry of indexes) {
    const table = of(entry.tableName);
    table.indexColumns.set(entry.name, [...(table.indexColumns.get(entry.name) ?? []), entry.column]);
    if (entry.name === 'PRIMARY') table.hasPrimaryKey = true;
  }
  const referenced = new Map<string, { table: string; columns: string[] }>();
  for (const entry of references) {
    const constraint = referenced.get(entry.constraintName) ?? { table: entry.tableName, columns: [] };
    constraint.columns.push(entry.column);
    referenced.set(entry.constraintName, constraint);
  }
  for (const constraint of referenced.values()) of(constraint.table).referenced.push(constraint.columns);
  for (const entry of autoIncrements) of(entry.tableName).autoIncrement = entry.column;
  return facts;
}

/**
 * Adds back what the target's table lacks, in one statement (one sorted build per index, one pass
 * over the table). Foreign keys are added with FOREIGN_KEY_CHECKS = 0 on the session, which makes
 * them metadata only (the data came from a consistent source).
 */
export async function buildDeferred(writer: Connection, database: string, table: string, deferred: DeferredPart[]): Promise<number> {
  if (deferred.length === 0) return 0;
  const [indexes] = await writer.query<RowDataPacket[]>('SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table]);
  const [foreign] = await writer.query<RowDataPacket[]>('SELECT CONSTRAINT_NAME AS name FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?', [database, table]);
  const present = new Set([...indexes.map((row) => `index:${row.name}`), ...foreign.map((row) => `foreign:${row.name}`)]);
  const missing = deferred.filter((part) => !present.has(`${part.kind}:${part.name}`));
  if (missing.length === 0) return 0;
  await writer.query(`ALTER TABLE ${qualified(database, table)} ${missing.map((part) => `ADD ${part.definition}`).join(', ')}`);
  return missing.length;
}
