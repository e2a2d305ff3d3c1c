/**
 * One change to an environment at a time. Two applies (or an apply and a destroy) of the same
 * environment at once would each plan from what they saw and then undo each other's work, so
 * every changing run holds the environment's lock: `applyEnvironment` and `destroyEnvironment`
 * take one (a machine-wide `localLock()` unless told otherwise), and a second run waits for it
 * up to `waitMs`, then refuses, naming who holds it and since when.
 *
 * The interface is small so that a team can share one lock across machines: `@armada/lock-postgres`
 * holds a PostgreSQL advisory lock, and anything with "take it, or tell me who has it" will do.
 */
import { hostname, tmpdir, userInfo } from 'node:os';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, ConflictError, type ArmadaErrorOptions } from './errors.js';

/** Who holds a lock: enough for a person to find them. */
export interface LockHolder {
  /** `user@host`, and the process id where it is known. */
  owner: string;
  /** What they are doing: `apply`, `destroy`, ... */
  operation: string;
  /** When they took it (ISO 8601). */
  since: string;
}

/** A lock held: release it when the run is over (also when it failed). */
export interface LockLease {
  readonly holder: LockHolder;
  release(): Promise<void>;
}

export interface AcquireOptions {
  operation: string;
  /** How long to wait for a lock someone else holds (default 0: refuse at once). */
  waitMs?: number;
  /** Called once, when the lock is found held and the wait begins (to say so). */
  onWait?: (holder: LockHolder | undefined) => void;
  signal?: AbortSignal;
}

export interface EnvironmentLock {
  /** Takes the environment's lock, or throws LockedError naming its holder once `waitMs` has passed. */
  acquire(environment: string, options: AcquireOptions): Promise<LockLease>;
}

/** The environment's lock is held by someone else (after waiting, if asked to). */
export class LockedError extends ConflictError {
  readonly holder: LockHolder | undefined;
  constructor(environment: string, holder: LockHolder | undefined, options: ArmadaErrorOptions & { waitedMs?: number } = {}) {
    const who = holder ? `${holder.owner} (${holder.operation}, since ${holder.since})` : 'another run (its holder could not be read)';
    const waited = options.waitedMs ? ` after waiting ${Math.round(options.waitedMs / 1000)} s` : '';
    super(`Environment "${environment}" is locked by ${who}${waited}: one change at a time. Wait for it to finish, or pass a longer lock wait.`, {
      ...options,
      retryable: false,
    });
    this.name = 'LockedError';
    this.holder = holder;
  }
}

/** This process as a lock holder. */
export function currentHolder(operation: string): LockHolder {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the host and pid still say who.
  }
  return { owner: `${user}@${hostname()} pid ${process.pid}`, operation, since: new Date().toISOString() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One try at a lock: taken, held by someone (who, if known), or worth trying again at once (a stale lock was cleared). */
export type LockAttempt = { lease: LockLease } | { holder: LockHolder | undefined } | { again: true };

/** Tries `attempt` until it takes the lock or `waitMs` runs out, then throws LockedError naming the holder. */
export async function waitForLock(environment: string, options: AcquireOptions, attempt: () => Promise<LockAttempt>, pollMs = 200): Promise<LockLease> {
  const started = Date.now();
  let told = false;
  for (;;) {
    if (options.signal?.aborted) throw new CancelledError(`Cancelled while waiting for the lock of environment "${environment}".`);
    const result = await attempt();
    if ('lease' in result) return result.lease;
    if ('again' in result) continue;
    const waited = Date.now() - started;
    if (waited >= (options.waitMs ?? 0)) throw new LockedError(environment, result.holder, { waitedMs: waited });
    if (!told) {
      told = true;
      options.onWait?.(result.holder);
    }
    await sleep(Math.min(pollMs, (options.waitMs ?? 0) - waited));
  }
}

/** Whether a process of this machine still runs (signal 0 tests without signalling). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface LockFile extends LockHolder {
  host: string;
  pid: number;
}

/**
 * A lock for the runs of one machine: a file per environment, created exclusively (O_EXCL), that
 * holds its holder. A lock whose process is gone (killed, crashed) is stale and is taken over;
 * one held on another host (a shared directory) is never taken over. `directory` defaults to
 * `armada-locks` under the system's temporary directory, shared by every run of this machine.
 */
export function localLock(options: { directory?: string } = {}): EnvironmentLock {
  const directory = options.directory ?? join(tmpdir(), 'armada-locks');
  const pathOf = (environment: string) => join(directory, `${encodeURIComponent(environment)}.lock`);

  const read = async (path: string): Promise<LockFile | undefined> => {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as LockFile;
    } catch {
      return undefined; // gone, or half written (its writer is between open and write)
    }
  };

  return {
    async acquire(environment, acquireOptions) {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      const path = pathOf(environment);
      const mine: LockFile = { ...currentHolder(acquireOptions.operation), host: hostname(), pid: process.pid };
      return waitForLock(environment, acquireOptions, async () => {
        try {
          const handle = await open(path, 'wx', 0o600);
          try {
            await handle.writeFile(JSON.stringify(mine));
          } finally {
            await handle.close();
          }
          const lease: LockLease = {
            holder: mine,
            async release() {
              const current = await read(path);
              if (current?.pid === mine.pid && current.host === mine.host && current.since === mine.since) await unlink(path).catch(() => undefined);
            },
          };
          return { lease };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const holder = await read(path);
        if (holder && holder.host === hostname() && !running(holder.pid)) {
          // Stale: its run is gone. Moved away first, so that of two runs taking it over only one does.
          const aside = `${path}.stale-${process.pid}`;
          const cleared = await rename(path, aside).then(
            () => true,
            () => false,
          );
          if (!cleared) return { holder };
          await unlink(aside).catch(() => undefined);
          return { again: true };
        }
        return { holder };
      });
    },
  };
}

/** A lock that never refuses: for tests and for callers that lock around Armada themselves. */
export const noLock: EnvironmentLock = {
  async acquire(_environment, options) {
    return { holder: currentHolder(options.operation), release: async () => undefined };
  },
};
