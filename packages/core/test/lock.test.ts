/**
 * One change at a time: the local lock between two real processes (held, refused with its holder,
 * waited for, taken over from a killed holder). applyEnvironment taking it: testkit's lock test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LockedError, localLock } from '../src/index.js';

const holderScript = fileURLToPath(new URL('./fixtures/hold-lock.ts', import.meta.url));
const directories: string[] = [];
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function lockDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'armada-lock-test-'));
  directories.push(directory);
  return directory;
}

/** Another process holding the lock of `environment`; resolves with it once it says so. */
async function holder(directory: string, environment: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', holderScript, directory, environment], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('held')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code} before holding the lock`)));
  });
  return child;
}

const exited = (child: ChildProcess) => new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

describe('the local lock, between two processes', () => {
  it('refuses a second run at once, naming the holder, its operation and since when', async () => {
    const directory = lockDirectory();
    const other = await holder(directory, 'shop');
    const error = await localLock({ directory }).acquire('shop', { operation: 'destroy' }).catch((caught: unknown) => caught);
    expect(LockedError.isInstance(error) && error instanceof LockedError).toBe(true);
    const locked = error as LockedError;
    expect(locked.holder).toMatchObject({ operation: 'apply', owner: expect.stringContaining(`pid ${other.pid}`) });
    expect(locked.message).toMatch(new RegExp(`^Environment "shop" is locked by .*pid ${other.pid} \\(apply, since \\d{4}-\\d\\d-\\d\\dT`));
    expect(locked.retryable).toBe(false);
    // Another environment is not locked.
    await (await localLock({ directory }).acquire('other-shop', { operation: 'apply' })).release();
  });

  it('waits for the holder to finish, saying so once, then takes the lock', async () => {
    const directory = lockDirectory();
    const other = await holder(directory, 'shop');
    const waited: unknown[] = [];
    const taking = localLock({ directory }).acquire('shop', { operation: 'apply', waitMs: 30_000, onWait: (holding) => waited.push(holding) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    other.stdin?.end(); // the other run finishes and releases
    const lease = await taking;
    expect(waited).toEqual([expect.objectContaining({ owner: expect.stringContaining(`pid ${other.pid}`) })]);
    expect(lease.holder.owner).toContain(`pid ${process.pid}`);
    await lease.release();
    expect(existsSync(join(directory, 'shop.lock'))).toBe(false);
  });

  it('takes over the lock of a run that was killed', async () => {
    const directory = lockDirectory();
    const other = await holder(directory, 'shop');
    other.kill('SIGKILL');
    await exited(other);
    const lease = await localLock({ directory }).acquire('shop', { operation: 'apply' });
    expect(lease.holder.owner).toContain(`pid ${process.pid}`);
    await lease.release();
  });
});
