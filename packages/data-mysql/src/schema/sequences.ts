/**
 * MariaDB sequences (10.3+; MySQL has none, and lists none): SHOW CREATE SEQUENCE gives the
 * definition, the sequence's one-row table its state. A server hands out values from a cache and
 * writes only the first value past it (next_not_cached_value), so after a restart NEXTVAL returns
 * that value; the target is set to exactly it with SETVAL(seq, value, 0, cycle_count), whose third
 * argument 0 means "not used yet: the next NEXTVAL returns it" (checked on MariaDB 10.11: the
 * target's `SELECT * FROM seq` then equals the source's, also for a sequence run past its end or
 * one that has cycled).
 */
import { ArmadaError } from '@armada/core';
import type { Connection } from '../sql.js';
import { qualified, quoteName, rows } from '../sql.js';
import { compareObjects, setting, textDifference } from './compare.js';
import { creationFailed } from './sessions.js';
import type { SchemaObjectKind } from './types.js';

export interface StoredSequence {
  name: string;
  /** `sequence shop.order_ids`. */
  object: string;
  /** CREATE SEQUENCE as SHOW CREATE SEQUENCE prints it. */
  statement: string;
  /** Its table's one row, every value as the server's text: next_not_cached_value, cycle_count, ... */
  state: Record<string, string>;
  /** sequences have no DEFINER. */
  definer?: undefined;
}

const INTEGER = /^-?\d+$/;

async function stateOf(connection: Connection, database: string, name: string): Promise<Record<string, string>> {
  const [row] = await rows<Record<string, unknown>>(connection, `SELECT * FROM ${qualified(database, name)}`);
  return Object.fromEntries(Object.entries(row ?? {}).map(([column, value]) => [column, String(value)]));
}

const stateDifferences = (source: Record<string, string>, target: Record<string, string>) =>
  [...new Set([...Object.keys(source), ...Object.keys(target)])].flatMap((column) => setting(column, source[column], target[column]));

export const sequences: SchemaObjectKind<StoredSequence> = {
  kind: 'sequence',
  async read(source, database) {
    const listed = await rows<{ name: string }>(source, "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE' ORDER BY TABLE_NAME", [database]);
    const found: StoredSequence[] = [];
    for (const { name } of listed) {
      const [row] = await rows<Record<string, string>>(source, `SHOW CREATE SEQUENCE ${qualified(database, name)}`);
      const statement = row?.['Create Table'];
      if (!statement) throw new ArmadaError('Unknown', `Cannot read the definition of sequence ${database}.${name}.`);
      found.push({ name, object: `sequence ${database}.${name}`, statement, state: await stateOf(source, database, name) });
    }
    return found;
  },
  async create(database, objects, context) {
    for (const sequence of objects) {
      const next = sequence.state.next_not_cached_value ?? '';
      const round = sequence.state.cycle_count ?? '0';
      if (!INTEGER.test(next) || !INTEGER.test(round)) throw new ArmadaError('Unknown', `Could not read the state of ${sequence.object} on the source: next_not_cached_value ${next}, cycle_count ${round}.`);
      try {
        // The name in SHOW CREATE SEQUENCE is unqualified; CREATE OR REPLACE: a resumed copy resets it.
        await context.target.query(`USE ${quoteName(database)}`);
        await context.target.query(sequence.statement.replace(/^\s*CREATE\s+(?:OR\s+REPLACE\s+)?SEQUENCE\b/i, 'CREATE OR REPLACE SEQUENCE'));
        await context.target.query(`SELECT SETVAL(${qualified(database, sequence.name)}, ${next}, 0, ${round})`);
      } catch (error) {
        throw creationFailed(sequence.object, error);
      }
      // SETVAL ignores a value "behind" the sequence (returns NULL): check it took, rather than trust it.
      const differences = stateDifferences(sequence.state, await stateOf(context.target, database, sequence.name));
      if (differences.length > 0) throw new ArmadaError('Unknown', `Could not set ${sequence.object} on the target to the source's state: ${differences.join('; ')}.`);
    }
  },
  async compare(source, target, database) {
    const [onSource, onTarget] = await Promise.all([sequences.read(source, database), sequences.read(target, database)]);
    return compareObjects(
      onSource,
      onTarget,
      (left, right) => {
        const [leftText, rightText] = [left.statement.replace(/^(CREATE SEQUENCE )`[^`]*`\./, '$1'), right.statement.replace(/^(CREATE SEQUENCE )`[^`]*`\./, '$1')];
        return [...(leftText === rightText ? [] : [textDifference(leftText, rightText)]), ...stateDifferences(left.state, right.state)];
      },
      () => true,
    );
  },
};
