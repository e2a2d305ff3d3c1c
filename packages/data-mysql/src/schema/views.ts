/**
 * Views, created in dependency order: a view that reads another view can only be created after it
 * (creating them by name fails on the `employees` sample schema, where `current_dept_emp` reads
 * `dept_emp_latest_date`). MariaDB has no VIEW_TABLE_USAGE, so the order comes from the names in
 * SHOW CREATE VIEW, which prints every table and view it reads backticked; views still failing for
 * a missing table are tried again after the others, until a round makes no progress.
 */
import { ArmadaError } from '@armada/core';
import type { Connection } from '../sql.js';
import { qualified, quoteName, rows } from '../sql.js';
import { compareObjects, setting, textDifference } from './compare.js';
import { definerOf, definerPolicy, withCheckedDefiner, withoutDefiner } from './definers.js';
import { TargetSessions, serverMessage } from './sessions.js';
import type { SchemaObjectKind } from './types.js';

export interface StoredView {
  name: string;
  /** `view shop.v`. */
  object: string;
  /** CREATE ... VIEW as SHOW CREATE VIEW prints it, DEFINER included. */
  statement: string;
  characterSetClient: string;
  collationConnection: string;
  definer: string | undefined;
}

/** Errors that mean "something this view reads is not there (yet)": ER_NO_SUCH_TABLE, ER_VIEW_INVALID. */
const NOT_THERE_YET = new Set([1146, 1356]);

/**
 * The views of `viewNames` this one reads. Every backticked name counts except those after a dot
 * (columns, and tables of another database) and aliases after AS, and `db`.`name` counts when db
 * is this database; a table read is printed alone or qualified, so `t`.`column` adds nothing. Too
 * many names (an alias without AS) only add an order that is not needed (a cycle falls back to
 * retrying).
 */
export function viewsRead(statement: string, database: string, viewNames: Set<string>, self: string): Set<string> {
  const body = statement.slice(statement.search(/\sAS\s/i) + 1);
  const found = new Set<string>();
  const names = /`((?:[^`]|``)*)`/g;
  const chain: Array<{ name: string; end: number }> = [];
  const flush = () => {
    const [first, second] = chain;
    if (first && chain.length === 1) found.add(first.name);
    if (first && second && first.name === database) found.add(second.name);
    chain.length = 0;
  };
  for (const match of body.matchAll(names)) {
    // A name after AS is an alias given here, not something read.
    if (/\sAS\s+$/i.test(body.slice(Math.max(0, match.index - 8), match.index))) continue;
    const name = String(match[1]).replaceAll('``', '`');
    const previous = chain[chain.length - 1];
    // Part of a dotted chain when only a dot separates it from the previous name.
    if (previous && body.slice(previous.end, match.index) === '.') chain.push({ name, end: match.index + match[0].length });
    else {
      flush();
      chain.push({ name, end: match.index + match[0].length });
    }
  }
  flush();
  return new Set([...found].filter((name) => name !== self && viewNames.has(name)));
}

/** The views in an order where each comes after those it reads (by name among equals); a cycle keeps name order. */
export function dependencyOrder(views: StoredView[], database: string): StoredView[] {
  const names = new Set(views.map((view) => view.name));
  const reads = new Map(views.map((view) => [view.name, viewsRead(view.statement, database, names, view.name)]));
  const pending = [...views].sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  const placed = new Set<string>();
  const ordered: StoredView[] = [];
  while (pending.length > 0) {
    const ready = pending.findIndex((view) => [...(reads.get(view.name) ?? [])].every((name) => placed.has(name)));
    const [next] = pending.splice(Math.max(ready, 0), 1);
    if (!next) break;
    placed.add(next.name);
    ordered.push(next);
  }
  return ordered;
}

/** The CREATE as CREATE OR REPLACE: a resumed copy replaces what an earlier run made. */
const orReplace = (statement: string) => (/^\s*CREATE\s+OR\s+REPLACE\b/i.test(statement) ? statement : statement.replace(/^\s*CREATE\s+/i, 'CREATE OR REPLACE '));

/**
 * The text both servers print alike. SHOW CREATE VIEW leaves out the database of names in the
 * connection's current database (MariaDB: `zz` there, `shop`.`zz` from elsewhere), so that
 * qualifier is taken out of both; and DEFINER is compared on its own.
 */
const comparable = (view: StoredView, database: string) => withoutDefiner(view.statement).replaceAll(`${quoteName(database)}.`, '');

export const views: SchemaObjectKind<StoredView> = {
  kind: 'view',
  async read(source, database) {
    const listed = await rows<{ name: string }>(source, "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW' ORDER BY TABLE_NAME", [database]);
    const found: StoredView[] = [];
    for (const { name } of listed) {
      const [row] = await rows<Record<string, string | null>>(source, `SHOW CREATE VIEW ${qualified(database, name)}`);
      const statement = row?.['Create View'];
      if (!row || !statement) throw new ArmadaError('Unknown', `Cannot read the definition of view ${database}.${name}: SHOW CREATE VIEW gives none to this login (it needs SHOW VIEW).`);
      found.push({ name, object: `view ${database}.${name}`, statement, characterSetClient: String(row.character_set_client), collationConnection: String(row.collation_connection), definer: definerOf(statement) });
    }
    return found;
  },
  async create(database, objects, context) {
    const sessions = new TargetSessions(context);
    const statementOf = new Map<StoredView, string>();
    for (const view of objects) {
      const statement = withCheckedDefiner(view.object, view.statement, view.definer, context);
      statementOf.set(view, orReplace(statement));
    }
    try {
      let pending = dependencyOrder(objects, database);
      const failures = new Map<StoredView, unknown>();
      while (pending.length > 0) {
        const retry: StoredView[] = [];
        for (const view of pending) {
          try {
            await sessions.run(database, view, [String(statementOf.get(view))]);
            failures.delete(view);
          } catch (error) {
            if (!NOT_THERE_YET.has((error as { errno?: number }).errno ?? 0)) throw new ArmadaError('Unknown', `Could not create ${view.object} on the target: ${serverMessage(error)}`, { cause: error });
            failures.set(view, error);
            retry.push(view);
          }
        }
        // No view of this round was created: those left read something that will not appear.
        if (retry.length === pending.length) break;
        pending = retry;
      }
      if (failures.size > 0) {
        const named = [...failures].map(([view, error]) => `${view.object}: ${serverMessage(error)}`);
        throw new ArmadaError('Unknown', `Could not create ${failures.size === 1 ? 'a view' : `${failures.size} views`} on the target, each reading a table or view that is not there: ${named.join('; ')}`, { cause: failures.values().next().value });
      }
    } finally {
      await sessions.close();
    }
  },
  async compare(source: Connection, target: Connection, database: string) {
    const [onSource, onTarget, targetHasAccount] = await Promise.all([views.read(source, database), views.read(target, database), definerPolicy(target, [])]);
    return compareObjects(onSource, onTarget, (left, right) => {
      const [leftText, rightText] = [comparable(left, database), comparable(right, database)];
      return [
        ...(leftText === rightText ? [] : [textDifference(leftText, rightText)]),
        ...setting('character_set_client', left.characterSetClient, right.characterSetClient),
        ...setting('collation_connection', left.collationConnection, right.collationConnection),
      ];
    }, targetHasAccount);
  },
};
