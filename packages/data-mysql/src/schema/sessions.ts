/**
 * Creating a view or stored program under the session it was created under on the source. The
 * server parses a program's body with the sql_mode of its CREATE (`a || b` is CONCAT under
 * PIPES_AS_CONCAT and OR without it; "x" is a name under ANSI_QUOTES and a string without), keeps
 * its character_set_client and collation_connection (string literals in the body are in them), and
 * the database's collation at that time (the default for its string parameters). SHOW CREATE
 * prints each of them; a copy made under the target's own defaults would parse another program.
 */
import { ArmadaError } from '@armada/core';
import type { Connection } from '../sql.js';
import { quoteName, rows, withSession } from '../sql.js';
import type { ObjectCopyContext } from './types.js';

export interface CreationSettings {
  /** Views store none (their text is printed already resolved). */
  sqlMode?: string;
  characterSetClient: string;
  collationConnection: string;
  /** The database's default collation when the program was created (routines, triggers, events). */
  databaseCollation?: string;
  /** Events: what their schedule's times mean. */
  timeZone?: string;
}

/** Client character sets whose text mysql2's utf8mb4 connection sends as the same bytes. */
const UTF8 = new Set(['utf8mb4', 'utf8mb3', 'utf8']);
const NON_ASCII = /[^\t\n\r\x20-\x7e]/;

/** A driver error's own message, with its code: what a person needs to see why the server refused. */
export const serverMessage = (error: unknown) => {
  const failure = error as { sqlMessage?: string; message?: string; code?: string };
  return `${failure.sqlMessage ?? failure.message ?? String(error)}${failure.code ? ` (${failure.code})` : ''}`;
};

/** A collation name as the server printed it: letters, digits and underscores only, so never quoted. */
const collationName = (name: string) => {
  if (!/^\w+$/.test(name)) throw new ArmadaError('Unknown', `Unexpected collation name ${JSON.stringify(name)}.`);
  return name;
};

export const creationFailed = (object: string, error: unknown) => new ArmadaError('Unknown', `Could not create ${object} on the target: ${serverMessage(error)}`, { cause: error });

/**
 * Runs CREATE statements on the target, each under the settings of its object. One per `create`
 * call: it opens a connection for each non-UTF-8 client character set that has non-ASCII text to
 * send (mysql2 encodes a statement in its connection's character set, and the server reads the
 * bytes in character_set_client, so `SET character_set_client = latin1` alone would store the
 * UTF-8 bytes of 'é' as two latin1 characters), and closes them in `close`.
 */
export class TargetSessions {
  private readonly byCharset = new Map<string, Connection>();
  private readonly collations = new Map<string, string>();

  constructor(private readonly context: ObjectCopyContext) {}

  private async connectionFor(settings: CreationSettings, statements: string[]): Promise<Connection> {
    const charset = settings.characterSetClient.toLowerCase();
    if (UTF8.has(charset) || !statements.some((statement) => NON_ASCII.test(statement))) return this.context.target;
    let connection = this.byCharset.get(charset);
    if (!connection) {
      connection = await this.context.openTarget(charset);
      this.byCharset.set(charset, connection);
    }
    return connection;
  }

  private async databaseCollation(connection: Connection, database: string): Promise<string | undefined> {
    if (!this.collations.has(database)) {
      const [schema] = await rows<{ collation: string }>(connection, 'SELECT DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
      if (schema) this.collations.set(database, schema.collation);
    }
    return this.collations.get(database);
  }

  /**
   * Runs `statements` in `database` under `settings`; the session is put back after. The server's
   * error is thrown as it is (callers name the object, and views look at its code).
   */
  async run(database: string, settings: CreationSettings, statements: string[]): Promise<void> {
    const connection = await this.connectionFor(settings, statements);
    // SHOW CREATE prints the object's own name unqualified: it is created in the current database.
    await connection.query(`USE ${quoteName(database)}`);
    // As mysqldump does: the database's collation of the program's time, for the moment of its CREATE.
    const current = settings.databaseCollation ? await this.databaseCollation(connection, database) : undefined;
    const switchCollation = settings.databaseCollation !== undefined && current !== undefined && current.toLowerCase() !== settings.databaseCollation.toLowerCase();
    if (switchCollation) await connection.query(`ALTER DATABASE ${quoteName(database)} COLLATE ${collationName(String(settings.databaseCollation))}`);
    try {
      const session: Record<string, string> = { character_set_client: settings.characterSetClient, collation_connection: settings.collationConnection };
      if (settings.sqlMode !== undefined) session.sql_mode = settings.sqlMode;
      if (settings.timeZone !== undefined) session.time_zone = settings.timeZone;
      await withSession(connection, session, async () => {
        for (const statement of statements) await connection.query(statement);
      });
    } finally {
      if (switchCollation && current) await connection.query(`ALTER DATABASE ${quoteName(database)} COLLATE ${collationName(current)}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.byCharset.values()].map((connection) => connection.end().catch(() => undefined)));
    this.byCharset.clear();
  }
}
