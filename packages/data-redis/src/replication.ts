/**
 * Replication for near-zero downtime: the target becomes a replica of the source (REPLICAOF), is
 * waited for until its link is up and it has caught up, and at cutover the source's writes are
 * paused (CLIENT PAUSE WRITE), the replica drains to the source's offset and is promoted
 * (REPLICAOF NO ONE). The write downtime is measured from the pause to the promotion.
 *
 * REPLICAOF replaces the target's data, so a target that holds keys is refused unless the caller
 * says to replace it.
 */
import { ArmadaError, type DataEndpoint, type DataReplication, type ReplicateOptions, TimeoutError, ValidationError } from '@armada/core';
import { Redis } from 'ioredis';

function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

async function connect(endpoint: DataEndpoint): Promise<Redis> {
  const client = new Redis({ host: endpoint.host, port: endpoint.port, ...(endpoint.password ? { password: endpoint.password } : {}), lazyConnect: true, maxRetriesPerRequest: 2, retryStrategy: () => null });
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    return client;
  } catch (error) {
    client.disconnect();
    throw new ValidationError(`Cannot reach Redis at ${endpoint.host}:${endpoint.port}: ${(cause ?? (error as Error)).message}`);
  }
}

export interface ReplicationStatus {
  linkUp: boolean;
  syncing: boolean;
  /** Bytes of replication stream the replica has not applied yet. */
  lagBytes: number;
}

export interface CutoverReport {
  /** From pausing the source's writes to the promoted target accepting them. */
  writeDowntimeMs: number;
  /** The replication offset both sides agreed on. */
  offset: number;
}

export class RedisReplication {
  private constructor(
    private readonly source: Redis,
    private readonly target: Redis,
    readonly sourceEndpoint: DataEndpoint,
    readonly targetEndpoint: DataEndpoint,
  ) {}

  /** Starts replication and waits until the replica's link is up and the first sync is done. */
  static async start(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: { replaceExisting?: boolean; timeoutMs?: number } = {}): Promise<RedisReplication> {
    const source = await connect(sourceEndpoint);
    const target = await connect(targetEndpoint);
    try {
      const keys = Number(await target.dbsize());
      const others = [...(await target.info('keyspace')).matchAll(/^db(\d+):keys=(\d+)/gm)].filter((match) => match[1] !== '0');
      if ((keys > 0 || others.length > 0) && !options.replaceExisting) {
        throw new ValidationError(`The target Redis at ${targetEndpoint.host}:${targetEndpoint.port} holds data, which REPLICAOF would replace.`, {
          issues: [{ path: 'target', message: 'the target holds keys', fix: 'empty it, or pass replaceExisting: true' }],
        });
      }
      if (sourceEndpoint.password) await target.config('SET', 'masterauth', sourceEndpoint.password);
      // The replica reaches the source its own way (peer), which may not be how Armada does (a tunnel).
      const seenFromTarget = sourceEndpoint.peer ?? sourceEndpoint;
      await target.call('REPLICAOF', seenFromTarget.host, String(seenFromTarget.port));
      const replication = new RedisReplication(source, target, sourceEndpoint, targetEndpoint);
      await replication.waitUntil((status) => status.linkUp && !status.syncing, options.timeoutMs ?? 300_000, 'the replica to finish its first sync');
      return replication;
    } catch (error) {
      source.disconnect();
      target.disconnect();
      throw error;
    }
  }

  /** A replication already running on the target from this source (a resumed run); undefined if there is none. */
  static async attach(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint): Promise<RedisReplication | undefined> {
    const target = await connect(targetEndpoint);
    const info = await target.info('replication');
    const seenFromTarget = sourceEndpoint.peer ?? sourceEndpoint;
    if (field(info, 'role') !== 'slave' || field(info, 'master_host') !== seenFromTarget.host || Number(field(info, 'master_port')) !== seenFromTarget.port) {
      target.disconnect();
      return undefined;
    }
    return new RedisReplication(await connect(sourceEndpoint), target, sourceEndpoint, targetEndpoint);
  }

  /** Whether the target still replicates (false once promoted). */
  async replicating(): Promise<boolean> {
    return field(await this.target.info('replication'), 'role') === 'slave';
  }

  async status(): Promise<ReplicationStatus> {
    const [sourceInfo, targetInfo] = await Promise.all([this.source.info('replication'), this.target.info('replication')]);
    const sourceOffset = Number(field(sourceInfo, 'master_repl_offset') ?? 0);
    const replicaOffset = Number(field(targetInfo, 'slave_repl_offset') ?? 0);
    return {
      linkUp: field(targetInfo, 'master_link_status') === 'up',
      syncing: field(targetInfo, 'master_sync_in_progress') === '1',
      lagBytes: Math.max(0, sourceOffset - replicaOffset),
    };
  }

  private async waitUntil(done: (status: ReplicationStatus) => boolean, timeoutMs: number, what: string): Promise<ReplicationStatus> {
    const started = performance.now();
    for (;;) {
      const status = await this.status();
      if (done(status)) return status;
      if (performance.now() - started > timeoutMs) {
        throw new TimeoutError(`Timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what} (link ${status.linkUp ? 'up' : 'down'}, ${status.lagBytes} bytes behind).`, { timeoutMs });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Cutover: pause the source's writes, let the replica reach the source's offset, promote it.
   * The pause ends by itself after `maxPauseMs`, so a failed cutover never leaves the source frozen.
   */
  async cutover(options: { maxPauseMs?: number; sourceReadOnly?: boolean } = {}): Promise<CutoverReport> {
    const maxPauseMs = options.maxPauseMs ?? 10_000;
    const paused = performance.now();
    await this.source.call('CLIENT', 'PAUSE', String(maxPauseMs), 'WRITE');
    try {
      const offset = Number(field(await this.source.info('replication'), 'master_repl_offset') ?? 0);
      for (;;) {
        const replica = Number(field(await this.target.info('replication'), 'slave_repl_offset') ?? 0);
        if (replica >= offset) break;
        if (performance.now() - paused > maxPauseMs) throw new TimeoutError(`The replica did not reach offset ${offset} within the ${maxPauseMs} ms write pause; the source was left writable.`, { timeoutMs: maxPauseMs });
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await this.target.call('REPLICAOF', 'NO', 'ONE');
      const writeDowntimeMs = performance.now() - paused;
      if ((await this.target.info('replication')).includes('role:master') === false) throw new ArmadaError('Conflict', 'The target did not become a master after REPLICAOF NO ONE.');
      if (options.sourceReadOnly) {
        // Asked for: the old source follows the new primary, read-only. A write still aimed at it
        // fails (READONLY) instead of being lost, and it stays in sync for a rollback.
        if (this.targetEndpoint.password) await this.source.config('SET', 'masterauth', this.targetEndpoint.password);
        const seenFromSource = this.targetEndpoint.peer ?? this.targetEndpoint;
        await this.source.call('REPLICAOF', seenFromSource.host, String(seenFromSource.port));
      }
      return { writeDowntimeMs, offset };
    } finally {
      // Writes the pause held back go on: to the new primary's replica (refused, when read-only was
      // asked for) or to the old source, which DNS stops pointing clients at.
      await this.source.call('CLIENT', 'UNPAUSE').catch(() => undefined);
    }
  }

  close(): void {
    this.source.disconnect();
    this.target.disconnect();
  }
}

/**
 * `RedisDataMover.replicate`: REPLICAOF makes its own full sync, so no copy comes first; on a
 * resumed run the replication already running is attached. At cutover the old source is left a
 * read-only replica of the new primary, so a write still aimed at it fails instead of being lost.
 */
export async function replicateRedis(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: ReplicateOptions & { timeoutMs?: number } = {}): Promise<DataReplication> {
  const replication =
    (await RedisReplication.attach(sourceEndpoint, targetEndpoint)) ??
    (await RedisReplication.start(sourceEndpoint, targetEndpoint, { ...(options.replaceExisting ? { replaceExisting: true } : {}), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) }));
  return {
    async status() {
      const status = await replication.status();
      return { caughtUp: status.linkUp && !status.syncing && status.lagBytes === 0, lag: `${status.lagBytes.toLocaleString('en-US')} bytes behind` };
    },
    async cutover() {
      if (!(await replication.replicating())) return { writeDowntimeMs: null, alreadyPromoted: true };
      const { writeDowntimeMs } = await replication.cutover({ sourceReadOnly: true });
      return { writeDowntimeMs, alreadyPromoted: false };
    },
    close: async () => replication.close(),
  };
}
