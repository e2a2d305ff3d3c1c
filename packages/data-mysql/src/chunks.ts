/**
 * Chunks of a table, cut where its rows are: boundaries are read from the key itself (every
 * `chunkRows`-th key, one index range scan of `chunkRows` entries per boundary), so the cost grows
 * with the row count, never with the key range. Three rows with ids up to 1e10, or Snowflake-style
 * 64-bit ids, make one chunk, not billions.
 *
 * The ranges cover the whole key space: the first is open below, the last open above, so rows
 * written after the boundaries were read (a resumed copy's new snapshot) and rows present only on
 * a target (verify) still fall in exactly one chunk.
 */
import { type Connection, quoteName, rows } from './sql.js';
import type { TablePlan } from './tables.js';

/** [from, to) of the integer key, as decimal text; an absent end is open. */
export interface KeyRange {
  from?: string;
  to?: string;
}

/** Ranges of `plan.intKey`, every one holding about `chunkRows` rows of what `connection` sees. */
export async function keyRanges(connection: Connection, plan: TablePlan, chunkRows: number): Promise<KeyRange[]> {
  const key = plan.intKey;
  if (!key) return [{}];
  const from = `${quoteName(plan.database)}.${quoteName(plan.table)}`;
  const boundaries: string[] = [];
  // The first boundary is the chunkRows-th key from the start; each next one chunkRows further on.
  let sql = `SELECT ${quoteName(key)} AS k FROM ${from} ORDER BY ${quoteName(key)} LIMIT 1 OFFSET ?`;
  let values: unknown[] = [chunkRows];
  for (;;) {
    const [found] = await rows<{ k: string | number }>(connection, sql, values);
    if (found === undefined) break;
    boundaries.push(String(found.k));
    sql = `SELECT ${quoteName(key)} AS k FROM ${from} WHERE ${quoteName(key)} >= ? ORDER BY ${quoteName(key)} LIMIT 1 OFFSET ?`;
    values = [BigInt(found.k), chunkRows];
  }
  return rangesBetween(boundaries);
}

/** Boundaries b1 < b2 < ... → (-inf, b1), [b1, b2), ..., [bn, +inf). */
export function rangesBetween(boundaries: string[]): KeyRange[] {
  if (boundaries.length === 0) return [{}];
  const ranges: KeyRange[] = [{ to: boundaries[0] as string }];
  for (let index = 0; index < boundaries.length; index++) {
    const to = boundaries[index + 1];
    ranges.push(to === undefined ? { from: boundaries[index] as string } : { from: boundaries[index] as string, to });
  }
  return ranges;
}

/**
 * ` WHERE key >= ? AND key < ?` (either side left out when open), and its values. The values are
 * BigInts, which mysql2 sends as integer literals: compared with a BIGINT as strings they would be
 * compared as doubles, which cannot tell keys near 2^64 apart (and the key's index goes unused).
 */
export function rangeCondition(key: string | undefined, range: KeyRange | undefined): { sql: string; values: bigint[] } {
  if (!key || !range) return { sql: '', values: [] };
  const parts: string[] = [];
  const values: bigint[] = [];
  if (range.from !== undefined) {
    parts.push(`${quoteName(key)} >= ?`);
    values.push(BigInt(range.from));
  }
  if (range.to !== undefined) {
    parts.push(`${quoteName(key)} < ?`);
    values.push(BigInt(range.to));
  }
  return { sql: parts.length > 0 ? ` WHERE ${parts.join(' AND ')}` : '', values };
}

/** For people and error messages: `id 10000010001..10000015000`, `id ..5000`, `id 95001..`, or nothing for a whole table. */
export function describeRange(key: string | undefined, range: KeyRange | undefined): string {
  if (!key || !range || (range.from === undefined && range.to === undefined)) return '';
  const last = range.to === undefined ? '' : String(BigInt(range.to) - 1n);
  return `${key} ${range.from ?? ''}..${last}`;
}
