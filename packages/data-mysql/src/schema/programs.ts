/**
 * Stored programs: routines (procedures, functions, MariaDB packages), triggers and events. Each is
 * read with SHOW CREATE, which gives its statement and the session it was created under (sql_mode,
 * character_set_client, collation_connection, the database's collation, and for events time_zone),
 * and is created on the target under exactly that session (see sessions.ts).
 */
import { ArmadaError } from '@armada/core';
import type { Connection } from '../sql.js';
import { qualified, rows } from '../sql.js';
import { compareObjects, setting, textDifference } from './compare.js';
import { definerOf, definerPolicy, withCheckedDefiner, withoutDefiner } from './definers.js';
import { type CreationSettings, TargetSessions, creationFailed } from './sessions.js';
import type { CompareResult, ObjectCopyContext, SchemaObjectKind } from './types.js';

export type RoutineType = 'PROCEDURE' | 'FUNCTION' | 'PACKAGE' | 'PACKAGE BODY';

interface StoredProgram extends CreationSettings {
  name: string;
  /** `function shop.f`, `trigger shop.orders_audit`: how reports and errors name it. */
  object: string;
  /** The CREATE statement as SHOW CREATE prints it, DEFINER included. */
  statement: string;
  sqlMode: string;
  databaseCollation: string;
  /** `user`@`host`, whatever quoting the statement has. */
  definer: string | undefined;
}

export interface StoredRoutine extends StoredProgram {
  type: RoutineType;
}

export interface StoredTrigger extends StoredProgram {
  table: string;
  timing: string;
  event: string;
  /** Its place among the triggers of the same table, timing and event (1 runs first). */
  actionOrder: number;
}

export interface StoredEvent extends StoredProgram {
  timeZone: string;
  /** ENABLED, DISABLED or SLAVESIDE_DISABLED. */
  status: string;
}

/**
 * SHOW CREATE of one program. The statement is NULL when the login may not see the body (MySQL
 * without SHOW_ROUTINE, not the definer): copying a program without its body is not possible.
 */
async function showCreate(connection: Connection, what: string, database: string, name: string, object: string) {
  const [row] = await rows<Record<string, string | null>>(connection, `SHOW CREATE ${what} ${qualified(database, name)}`);
  const key = row ? Object.keys(row).find((column) => column.startsWith('Create ') || column === 'SQL Original Statement') : undefined;
  const statement = row && key ? row[key] : null;
  if (!row || statement === null || statement === undefined) {
    throw new ArmadaError('Unknown', `Cannot read the definition of ${object}: SHOW CREATE ${what} gives none to this login (it needs SHOW ROUTINE, or SELECT on mysql.proc, or to be the definer).`);
  }
  return {
    statement: String(statement),
    sqlMode: String(row.sql_mode ?? ''),
    characterSetClient: String(row.character_set_client),
    collationConnection: String(row.collation_connection),
    databaseCollation: String(row['Database Collation']),
    definer: definerOf(String(statement)),
    ...(row.time_zone ? { timeZone: String(row.time_zone) } : {}),
  };
}

/** The statement to send: DEFINER kept when the target has that account, left out (and reported) otherwise. */
function definerChecked(program: StoredProgram, context: ObjectCopyContext): string {
  return withCheckedDefiner(program.object, program.statement, program.definer, context);
}

const settingsDiffer = (source: StoredProgram, target: StoredProgram) => [
  ...setting('sql_mode', source.sqlMode, target.sqlMode),
  ...setting('character_set_client', source.characterSetClient, target.characterSetClient),
  ...setting('collation_connection', source.collationConnection, target.collationConnection),
  ...setting('database collation', source.databaseCollation, target.databaseCollation),
];

/** Both sides read alike, then paired; the target's accounts tell a reported definer from a changed one. */
async function compareKind<T extends StoredProgram>(kind: SchemaObjectKind<T>, source: Connection, target: Connection, database: string, differ: (source: T, target: T) => string[]): Promise<CompareResult> {
  const [onSource, onTarget, targetHasAccount] = await Promise.all([kind.read(source, database), kind.read(target, database), definerPolicy(target, [])]);
  return compareObjects(onSource, onTarget, differ, targetHasAccount);
}

const definitionDiffers = (source: string, target: string) => (source === target ? [] : [textDifference(source, target)]);

export const routines: SchemaObjectKind<StoredRoutine> = {
  kind: 'routine',
  async read(source, database) {
    // By type then name: a PACKAGE comes before its PACKAGE BODY (MariaDB's Oracle mode).
    const listed = await rows<{ name: string; type: RoutineType }>(source, 'SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME', [database]);
    const found: StoredRoutine[] = [];
    for (const { name, type } of listed) {
      const object = `${type.toLowerCase()} ${database}.${name}`;
      found.push({ name, type, object, ...(await showCreate(source, type, database, name, object)) });
    }
    return found;
  },
  async create(database, objects, context) {
    const sessions = new TargetSessions(context);
    try {
      for (const routine of objects) {
        const statement = definerChecked(routine, context);
        // The DROP runs under the routine's sql_mode too: DROP PACKAGE parses only in Oracle mode on MariaDB 10.11.
        await sessions.run(database, routine, [`DROP ${routine.type} IF EXISTS ${qualified(database, routine.name)}`, statement]).catch((error: unknown) => {
          throw creationFailed(routine.object, error);
        });
      }
    } finally {
      await sessions.close();
    }
  },
  compare(source, target, database) {
    return compareKind(routines, source, target, database, (left, right) => [
      ...definitionDiffers(withoutDefiner(left.statement), withoutDefiner(right.statement)),
      ...settingsDiffer(left, right),
    ]);
  },
};

/**
 * FOLLOWS / PRECEDES name another trigger, which may not exist yet when this one is created; the
 * triggers are created in their ACTION_ORDER instead, each after the ones before it, which gives the
 * same order without the clause.
 */
const withoutOrderClause = (statement: string) => statement.replace(/(\bFOR\s+EACH\s+ROW)\s+(?:FOLLOWS|PRECEDES)\s+(?:`(?:[^`]|``)+`|"(?:[^"]|"")+"|[\w$]+)/i, '$1');

export const triggers: SchemaObjectKind<StoredTrigger> = {
  kind: 'trigger',
  async read(source, database) {
    const listed = await rows<{ name: string; table: string; timing: string; event: string; actionOrder: number | string | null }>(
      source,
      `SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS \`table\`, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event, ACTION_ORDER AS actionOrder
       FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, TRIGGER_NAME`,
      [database],
    );
    const found: StoredTrigger[] = [];
    for (const entry of listed) {
      const object = `trigger ${database}.${entry.name}`;
      found.push({ name: entry.name, table: entry.table, timing: entry.timing, event: entry.event, actionOrder: Number(entry.actionOrder ?? 0), object, ...(await showCreate(source, 'TRIGGER', database, entry.name, object)) });
    }
    return found;
  },
  async create(database, objects, context) {
    // All of them dropped first: a trigger recreated while a later one of its table is still there would run after it.
    for (const trigger of objects) await context.target.query(`DROP TRIGGER IF EXISTS ${qualified(database, trigger.name)}`);
    const ordered = [...objects].sort((left, right) => `${left.table}\u0000${left.timing}\u0000${left.event}`.localeCompare(`${right.table}\u0000${right.timing}\u0000${right.event}`) || left.actionOrder - right.actionOrder);
    const sessions = new TargetSessions(context);
    try {
      for (const trigger of ordered) {
        await sessions.run(database, trigger, [withoutOrderClause(definerChecked(trigger, context))]).catch((error: unknown) => {
          throw creationFailed(trigger.object, error);
        });
      }
    } finally {
      await sessions.close();
    }
  },
  compare(source, target, database) {
    const definition = (trigger: StoredTrigger) => withoutOrderClause(withoutDefiner(trigger.statement));
    return compareKind(triggers, source, target, database, (left, right) => [
      ...definitionDiffers(definition(left), definition(right)),
      ...setting('table', left.table, right.table),
      ...setting('action order', left.actionOrder, right.actionOrder),
      ...settingsDiffer(left, right),
    ]);
  },
};

/** The statement without ENABLE / DISABLE [ON SLAVE]: the status is compared on its own, by name. */
const withoutStatus = (statement: string) => statement.replace(/(\bON\s+COMPLETION\s+(?:NOT\s+)?PRESERVE)\s+(?:ENABLE|DISABLE\s+ON\s+(?:SLAVE|REPLICA)|DISABLE)\b/i, '$1');

/** The server's SYSTEM time zone and its offset now: what an event under time_zone SYSTEM is scheduled in. */
async function systemZone(connection: Connection): Promise<string> {
  const [zone] = await rows<{ name: string; minutes: string | number }>(connection, "SELECT @@system_time_zone AS name, TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', 'SYSTEM')) AS minutes");
  return `${zone?.name} (UTC${Number(zone?.minutes) >= 0 ? '+' : ''}${Number(zone?.minutes) / 60} h now)`;
}

export const events: SchemaObjectKind<StoredEvent> = {
  kind: 'event',
  async read(source, database) {
    const listed = await rows<{ name: string; status: string }>(source, 'SELECT EVENT_NAME AS name, STATUS AS status FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME', [database]);
    const found: StoredEvent[] = [];
    for (const entry of listed) {
      const object = `event ${database}.${entry.name}`;
      const shown = await showCreate(source, 'EVENT', database, entry.name, object);
      found.push({ name: entry.name, status: entry.status, object, ...shown, timeZone: shown.timeZone ?? 'SYSTEM' });
    }
    return found;
  },
  async create(database, objects, context) {
    if (objects.some((event) => event.timeZone.toUpperCase() === 'SYSTEM')) {
      const [sourceZone, targetZone] = [await systemZone(context.source), await systemZone(context.target)];
      if (sourceZone !== targetZone) {
        context.warn(`events of ${database} under time_zone SYSTEM: their schedule times are read in the target's system time zone, ${targetZone}, not the source's, ${sourceZone}`);
      }
    }
    const sessions = new TargetSessions(context);
    try {
      for (const event of objects) {
        // The STARTS / ENDS / AT times SHOW CREATE EVENT prints are in the event's time_zone: created under it, they are the same instants.
        await sessions.run(database, event, [`DROP EVENT IF EXISTS ${qualified(database, event.name)}`, definerChecked(event, context)]).catch((error: unknown) => {
          throw creationFailed(event.object, error);
        });
        const [exists] = await rows(context.target, 'SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = ?', [database, event.name]);
        // A one-time event whose time has passed, ON COMPLETION NOT PRESERVE: the server drops it as it is created (note 1588).
        if (!exists) context.warn(`${event.object}: not kept by the target: its time is past and it is ON COMPLETION NOT PRESERVE, so the server dropped it on creation`);
      }
    } finally {
      await sessions.close();
    }
  },
  compare(source, target, database) {
    return compareKind(events, source, target, database, (left, right) => [
      ...definitionDiffers(withoutStatus(withoutDefiner(left.statement)), withoutStatus(withoutDefiner(right.statement))),
      ...setting('status', left.status, right.status),
      ...setting('time_zone', left.timeZone, right.timeZone),
      ...settingsDiffer(left, right),
    ]);
  },
};
