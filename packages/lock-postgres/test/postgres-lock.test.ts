/**
 * The PostgreSQL lock between two real processes on a real server (the machine's PostgreSQL,
 * `ARMADA_TEST_POSTGRES_URL` to use another): refused with the holder as the server names it,
 * waited for, released by the server when the holder is killed; and what an unreachable server says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConnectionError, LockedError } from '@armada/core';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresLock } from '../src/index.js';

const url = process.env.ARMADA_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const holderScript = fileURLToPath(new URL('./fixtures/hold-lock.ts', import.meta.url));
// Each run its own namespace: runs sharing the server never see each other's locks.
const namespace = `armada-test-${process.pid}-${Date.now()}`;
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

async function holder(environment: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', holderScript, url, namespace, environment], { stdio: ['pipe', 'pipe', 'inherit'] });
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

describe('the PostgreSQL lock, between two processes', () => {
  const lock = () => postgresLock({ connection: url, namespace, pollMs: 100 });

  it('refuses a second run, naming the holder from the server, and lets other environments be', async () => {
    const other = await holder('shop');
    const error = await lock().acquire('shop', { operation: 'destroy' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockedError);
    const locked = error as LockedError;
    expect(locked.holder).toMatchObject({ operation: 'apply', owner: expect.stringContaining(`pid ${other.pid}`), since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(locked.message).toMatch(new RegExp(`^Environment "shop" is locked by .*pid ${other.pid}.* \\(apply, since `));
    await (await lock().acquire('another-shop', { operation: 'apply' })).release();
  });

  it('waits for the holder to finish, then takes it; a killed holder loses it at once', async () => {
    const first = await holder('shop');
    const waited: unknown[] = [];
    const taking = lock().acquire('shop', { operation: 'apply', waitMs: 30_000, onWait: (holding) => waited.push(holding) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.stdin?.end();
    const lease = await taking;
    expect(waited).toHaveLength(1);
    await lease.release();

    const second = await holder('shop');
    second.kill('SIGKILL');
    // The server ends the session when its connection drops, and the lock with it.
    const after = await lock().acquire('shop', { operation: 'apply', waitMs: 30_000 });
    expect(after.holder.owner).toContain(`pid ${process.pid}`);
    await after.release();
  });

  it('says which server it cannot reach, without its password', async () => {
    const error = await postgresLock({ connection: 'postgres://armada:s3cret@127.0.0.1:1/postgres' })
      .acquire('shop', { operation: 'apply' })
      .catch((caught: unknown) => caught);
    expect(ConnectionError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/^Cannot reach the lock server at 127\.0\.0\.1:1: /);
    expect((error as Error).message).not.toContain('s3cret');
  });
});
