import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file so that readers see the old contents or the new, never half of either: write a
 * temporary file beside it, then rename. The temporary name is unique per write, so concurrent
 * writers in one process do not rename each other's file away. Mode 0600 by default: these files
 * (state, checkpoints, known hosts) are the operator's, not everyone's.
 */
export async function writeFileAtomic(path: string, contents: string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, contents, { mode });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Serialises writes of one file: each write starts after the previous one ended, so a snapshot
 * taken earlier never lands after a later one. A failed write is reported to its caller and does
 * not block the next. Without a path, writing does nothing (the caller asked for no file).
 */
export function serialJsonWriter(path: string | undefined, mode = 0o600): (value: unknown) => Promise<void> {
  if (path === undefined) return async () => undefined;
  let last: Promise<void> = Promise.resolve();
  return (value) => {
    // Serialised now, so later changes to the value do not leak into this write.
    const contents = `${JSON.stringify(value)}\n`;
    const write = last.then(() => writeFileAtomic(path, contents, mode));
    last = write.catch(() => undefined);
    return write;
  };
}
