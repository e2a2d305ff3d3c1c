/**
 * Whether the source changed between two moments, from two counters it keeps of its writes:
 * `rdb_changes_since_last_save` (INFO persistence: every write counts, whether or not a replica
 * was ever attached; reset by a save, which moves `rdb_last_save_time`), and the replication
 * stream's `master_repl_offset` (moved by every write once a replication backlog exists, and by
 * connected replicas' PINGs every `repl-ping-replica-period`) with its `master_replid` (new after
 * a restart or failover). Equal positions prove nothing was written in between; different ones
 * mean something may have been, so a check built on them only ever errs towards copying again.
 *
 * A `scan` copy reads a live source key by key, so it is one point-in-time state only if the
 * source took no writes while it ran: the mover records the position at the start, says in the
 * report when it moved, and a resumed scan copy continues from its cursors only when the source is
 * provably unchanged since the first run began, and starts over otherwise.
 */
import type { Redis } from 'ioredis';

export interface SourcePosition {
  replid: string;
  offset: number;
  /** rdb_changes_since_last_save */
  changes: number;
  /** rdb_last_save_time (seconds) */
  lastSave: number;
}

/** The source's write counters, or undefined when INFO does not give them (some proxies). */
export async function sourcePosition(source: Redis): Promise<SourcePosition | undefined> {
  const info = `${await source.info('replication').catch(() => '')}\n${await source.info('persistence').catch(() => '')}`;
  const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  const [replid, offset, changes, lastSave] = [field('master_replid'), field('master_repl_offset'), field('rdb_changes_since_last_save'), field('rdb_last_save_time')];
  if (!replid || offset === undefined || changes === undefined || lastSave === undefined) return undefined;
  return { replid, offset: Number(offset), changes: Number(changes), lastSave: Number(lastSave) };
}

export const samePosition = (left: SourcePosition | undefined, right: SourcePosition | undefined) =>
  left !== undefined && right !== undefined && left.replid === right.replid && left.offset === right.offset && left.changes === right.changes && left.lastSave === right.lastSave;

export const describePosition = (position: SourcePosition | undefined) => (position ? `offset ${position.offset}, ${position.changes} changes since save at ${position.lastSave}` : 'unknown');
