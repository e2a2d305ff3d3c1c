/** The copy's checkpoint: strategy, source, target and where each database stands. No secrets. */
import { readFile } from 'node:fs/promises';
import type { SourcePosition } from './consistency.js';

export interface Checkpoint {
  version: 1;
  /** Absent in checkpoints written before the rdb strategy: those are scan checkpoints. */
  strategy?: 'rdb' | 'scan';
  source: string;
  target: string;
  databases: Record<string, { cursor: string; done: boolean; keys: number; bytes: number }>;
  /**
   * rdb: the source's replication id and offset when the snapshot the finished databases came
   * from was taken (its `+FULLRESYNC <replid> <offset>`). A resumed copy keeps those databases only
   * if a new snapshot has the same id and offset. Absent in checkpoints from before it was recorded
   * (and in scan checkpoints): a resumed rdb copy then copies everything again.
   */
  snapshot?: { replid: string; offset: number };
  /**
   * scan: the source's replication position when the first run began (consistency.ts). A resumed
   * scan copy continues from its cursors only while the source is still there; the copy's report
   * says when it moved during the copy.
   */
  scanFrom?: SourcePosition;
}

export async function readCheckpoint(path: string | undefined): Promise<Checkpoint | undefined> {
  if (!path) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Checkpoint;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
