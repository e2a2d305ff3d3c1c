import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serialJsonWriter, writeFileAtomic } from '../src/files.js';

describe('atomic file writes', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'armada-files-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('survives many concurrent writers of one file, leaving one whole file, mode 0600, no temporaries', async () => {
    const path = join(directory, 'nested', 'state.json');
    await Promise.all(Array.from({ length: 50 }, (_, index) => writeFileAtomic(path, JSON.stringify({ index, padding: 'x'.repeat(10_000) }))));
    const written = JSON.parse(await readFile(path, 'utf8')) as { index: number };
    expect(written.index).toBeGreaterThanOrEqual(0);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(directory, 'nested'))).toEqual(['state.json']);
  });

  it('serialJsonWriter lands the last value called, whatever the order the writes finish in', async () => {
    const path = join(directory, 'checkpoint.json');
    const save = serialJsonWriter(path);
    const value = { done: [] as number[] };
    const writes: Promise<void>[] = [];
    for (let chunk = 0; chunk < 40; chunk++) {
      value.done.push(chunk);
      writes.push(save(value));
    }
    await Promise.all(writes);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ done: Array.from({ length: 40 }, (_, index) => index) });
  });

  it('serialJsonWriter without a path writes nothing', async () => {
    await serialJsonWriter(undefined)({ a: 1 });
    expect(await readdir(directory)).toEqual([]);
  });
});
