/**
 * An environment lock a team shares across machines: a PostgreSQL session-level advisory lock,
 * one per environment, held on a connection of its own for as long as the run lasts.
 *
 * Why an advisory lock: PostgreSQL releases it the moment the holding connection ends, so a run
 * that is killed (or a machine that goes away) leaves no stale lock behind, and no table has to
 * be created or cleaned. Who holds a lock is read from the server itself (`pg_locks` joined with
 * `pg_stat_activity`): the holder's connection carries its owner and operation in its
 * `application_name`, and its start time is when it took the lock.
 *
 * Keys: `pg_try_advisory_lock(hashtext(namespace), hashtext(environment))`. Two environment names
 * whose 32-bit hashes collide share a lock (they take turns; nothing worse).
 */
import { ArmadaError, ConnectionError, currentHolder, waitForLock, type AcquireOptions, type EnvironmentLock, type LockHolder, type LockLease } from '@armada/core';
import pg from 'pg';

export interface PostgresLockOptions {
  /** `postgres://user:password@host:5432/database`, or pg's client settings. */
  connection: string | pg.ClientConfig;
  /** Keeps the locks of two teams (or test runs) sharing a server apart (default `armada`). */
  namespace?: string;
  /** How often a waiting run tries again (default 500 ms). */
  pollMs?: number;
}

/** PostgreSQL's limit on application_name (NAMEDATALEN - 1 bytes). */
const APPLICATION_NAME_BYTES = 63;

/** `armada apply root@host pid 42`: how the holder's connection names itself, cut to fit. */
function applicationName(holder: LockHolder): string {
  let name = `armada ${holder.operation} ${holder.owner}`;
  while (Buffer.byteLength(name) > APPLICATION_NAME_BYTES) name = name.slice(0, -1);
  return name;
}

/** The server's address for messages: never its password. */
function whereOf(connection: string | pg.ClientConfig): string {
  if (typeof connection !== 'string') return `${connection.host ?? 'localhost'}:${connection.port ?? 5432}`;
  try {
    const url = new URL(connection);
    return `${url.hostname}:${url.port || 5432}`;
  } catch {
    return 'the PostgreSQL server';
  }
}

export function postgresLock(options: PostgresLockOptions): EnvironmentLock {
  const namespace = options.namespace ?? 'armada';
  const where = whereOf(options.connection);
  const settings = typeof options.connection === 'string' ? { connectionString: options.connection } : options.connection;

  return {
    async acquire(environment: string, acquireOptions: AcquireOptions): Promise<LockLease> {
      const holder = currentHolder(acquireOptions.operation);
      const client = new pg.Client({ ...settings, application_name: applicationName(holder) });
      try {
        await client.connect();
      } catch (error) {
        const message = (error as Error).message.replaceAll(/:[^:@/]*@/g, ':***@');
        throw new ConnectionError(`Cannot reach the lock server at ${where}: ${message}`, { cause: error });
      }
      // A lost connection loses the lock: the run must not go on believing it holds it.
      let lost: Error | undefined;
      client.on('error', (error) => {
        lost = error;
      });
      const keys = [namespace, environment];
      try {
        return await waitForLock(
          environment,
          acquireOptions,
          async () => {
            const taken = await client.query<{ taken: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS taken', keys);
            if (taken.rows[0]?.taken) {
              const lease: LockLease = {
                holder,
                async release() {
                  try {
                    if (!lost) await client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', keys);
                  } finally {
                    await client.end().catch(() => undefined);
                  }
                },
              };
              return { lease };
            }
            return { holder: await holderOf(client, keys) };
          },
          options.pollMs ?? 500,
        );
      } catch (error) {
        await client.end().catch(() => undefined);
        if (ArmadaError.isInstance(error)) throw error;
        throw new ConnectionError(`The lock server at ${where} failed: ${(error as Error).message}`, { cause: error });
      }
    },
  };
}

/** Who holds the advisory lock on `keys`, as the server sees it. */
async function holderOf(client: pg.Client, keys: string[]): Promise<LockHolder | undefined> {
  const found = await client.query<{ application_name: string; backend_start: Date; client_addr: string | null }>(
    `SELECT activity.application_name, activity.backend_start, host(activity.client_addr) AS client_addr
       FROM pg_locks AS locks JOIN pg_stat_activity AS activity ON activity.pid = locks.pid
      WHERE locks.locktype = 'advisory' AND locks.granted AND locks.classid = (hashtext($1)::bigint & 4294967295)::oid
        AND locks.objid = (hashtext($2)::bigint & 4294967295)::oid AND locks.objsubid = 2
      LIMIT 1`,
    keys,
  );
  const row = found.rows[0];
  if (!row) return undefined;
  const [, operation = 'unknown', ...owner] = row.application_name.split(' ');
  return {
    owner: `${owner.join(' ') || row.application_name}${row.client_addr ? ` (from ${row.client_addr})` : ''}`,
    operation,
    since: row.backend_start.toISOString(),
  };
}
