/**
 * The copy's checkpoint, and what makes a resumed copy end in one point-in-time state.
 *
 * A resumed copy reads a new snapshot of the source. Chunks the first run finished came from the
 * old one, so each is checked against the new snapshot (the same multiset checksum verify uses, on
 * both servers) and copied again where the source changed in between; unfinished chunks are copied
 * from the new snapshot. The chunk boundaries are the first run's, kept in the checkpoint: they
 * partition the whole key space, so rows inserted since fall into exactly one chunk. The target
 * then holds the new snapshot's state, and the report's binlog position is the new snapshot's, where
 * replication continues from. A table whose definition changed in between, or that the source no
 * longer has, is refused: the target's rows were written for another table.
 *
 * The checkpoint holds no secrets: names, digests of definitions, key boundaries, chunk names.
 */
import { ValidationError } from '@armada/core';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export interface TableCheckpoint {
  /** SHA-256 of the source's SHOW CREATE TABLE (without its AUTO_INCREMENT counter). */
  definition: string;
  /** The chunk boundaries of the first run (see chunks.ts `rangesBetween`). */
  boundaries: string[];
}

export interface CopyCheckpoint {
  version: 2;
  source: string;
  target: string;
  /** `db.table` → its definition digest and boundaries. */
  tables: Record<string, TableCheckpoint>;
  /** Chunks copied (see copy.ts `chunkId`). */
  done: string[];
  /** With `users`: the accounts this copy creates (names only), so a resume does not refuse them. */
  accounts?: string[];
  /** Set when the copy ran to its end: a later run is a re-check against the source, not a continuation. */
  finished?: boolean;
}

export async function readCheckpoint(path: string | undefined): Promise<unknown> {
  if (!path) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ValidationError(`The copy's checkpoint ${path} cannot be read: ${(error as Error).message}.`, {
      issues: [{ path: 'checkpointPath', message: 'not a checkpoint this mover wrote', fix: 'remove it and copy again with replaceExisting: true' }],
    });
  }
}

/** The checkpoint to continue from, when it is this source's and target's; a fresh one otherwise. */
export function resumeFrom(previous: unknown, source: string, target: string): { checkpoint: CopyCheckpoint; resumed: boolean } {
  const fresh: CopyCheckpoint = { version: 2, source, target, tables: {}, done: [] };
  if (previous === undefined) return { checkpoint: fresh, resumed: false };
  const found = previous as Partial<CopyCheckpoint>;
  if (found.source !== source || found.target !== target) return { checkpoint: fresh, resumed: false };
  if (found.version !== 2) {
    throw new ValidationError('The checkpoint was written by an earlier version of the MySQL mover, which did not record its chunk boundaries: it cannot be resumed consistently.', {
      issues: [{ path: 'checkpointPath', message: `checkpoint version ${String(found.version)}`, fix: 'remove the checkpoint and copy again with replaceExisting: true' }],
    });
  }
  return { checkpoint: { ...fresh, ...found, version: 2 } as CopyCheckpoint, resumed: true };
}

/** The digest a table's definition is compared by; the AUTO_INCREMENT counter moves with every insert. */
export const definitionDigest = (createTable: string) => createHash('sha256').update(createTable.replace(/ AUTO_INCREMENT=\d+/, '')).digest('hex');

/**
 * Refuses a resume whose source tables changed shape or went away since the first run, naming each.
 * Tables new on the source are fine: they are copied whole from the new snapshot.
 */
export function checkTablesUnchanged(checkpoint: CopyCheckpoint, current: Map<string, string>): void {
  const issues: Array<{ path: string; message: string; fix: string }> = [];
  for (const [name, recorded] of Object.entries(checkpoint.tables)) {
    const digest = current.get(name);
    if (digest === undefined) issues.push({ path: `source.${name}`, message: `table ${name} was dropped on the source since the copy started`, fix: 'copy again from the start with replaceExisting: true' });
    else if (digest !== recorded.definition) issues.push({ path: `source.${name}`, message: `table ${name} changed its definition on the source since the copy started`, fix: 'copy again from the start with replaceExisting: true' });
  }
  if (issues.length > 0) throw new ValidationError('The source changed since this copy started: resuming would mix two schemas.', { issues });
}
