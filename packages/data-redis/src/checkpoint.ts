/** The copy's checkpoint: strategy, source, target and where each database stands. No secrets. */
import { readFile } from 'node:fs/promises';

export interface Checkpoint {
  version: 1;
  /** Absent in checkpoints written before the rdb strategy: those are scan checkpoints. */
  strategy?: 'rdb' | 'scan';
  source: string;
  target: string;
  databases: Record<string, { cursor: string; done: boolean; keys: number; bytes: number }>;
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
