/**
 * Replication for near-zero downtime: after a copy, the target becomes a replica of the source
 * from the binary log position the copy's snapshot recorded, catches up while the source keeps
 * serving, and at cutover the source is made read-only, the target drains to the source's final
 * position, stops replicating and is promoted. The write downtime is measured from the moment the
 * source stopped taking writes to the moment the target took them.
 *
 * `read_only` stops every account without SUPER (application accounts); run applications as such.
 */
import { type CopyReport, type DataEndpoint, type DataReplication, type ReplicateOptions, TimeoutError, ValidationError } from '@armada/core';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';

type Row = Record<string, string | number | null>;

async function open(endpoint: DataEndpoint, role: string): Promise<Connection> {
  try {
    return await createConnection({ host: endpoint.host, port: endpoint.port, user: endpoint.user ?? 'root', password: endpoint.password ?? '' });
  } catch (error) {
    throw new ValidationError(`Cannot reach the ${role} MySQL at ${endpoint.host}:${endpoint.port}: ${(error as { code?: string }).code ?? (error as Error).message}.`);
  }
}

const first = async (connection: Connection, sql: string): Promise<Row | undefined> => ((await connection.query<RowDataPacket[]>(sql))[0] as Row[])[0];

export interface BinlogPosition {
  file: string;
  position: number;
}

export interface MysqlReplicationStatus {
  running: boolean;
  secondsBehind: number | null;
  lastError: string | null;
}

export class MysqlReplication {
  private constructor(
    private readonly source: Connection,
    private readonly target: Connection,
  ) {}

  /** Points the target at the source from `from` (the copy report's binlog) and starts it. */
  static async start(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, from: BinlogPosition, options: { timeoutMs?: number } = {}): Promise<MysqlReplication> {
    const source = await open(sourceEndpoint, 'source');
    const target = await open(targetEndpoint, 'target');
    try {
      const logBin = await first(source, "SHOW VARIABLES LIKE 'log_bin'");
      if (String(logBin?.Value).toUpperCase() !== 'ON') {
        throw new ValidationError('The source has no binary log, so it cannot be replicated.', { issues: [{ path: 'source', message: 'log_bin is OFF', fix: 'start the source with log_bin (and a server_id), or copy without replication' }] });
      }
      const [sourceId, targetId] = await Promise.all([first(source, 'SELECT @@server_id AS id'), first(target, 'SELECT @@server_id AS id')]);
      if (sourceId?.id === targetId?.id) {
        throw new ValidationError('The source and the target have the same server_id.', { issues: [{ path: 'target', message: `both have server_id ${sourceId?.id}`, fix: 'give the target its own server_id' }] });
      }
      await target.query('STOP SLAVE').catch(() => undefined);
      // The replica reaches the source its own way (sourceEndpoint.peer), which may not be how
      // Armada does (a tunnel). A short connect retry: a dropped tunnel costs seconds, not a minute.
      const seenFromTarget = sourceEndpoint.peer ?? sourceEndpoint;
      await target.query('CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_LOG_FILE = ?, MASTER_LOG_POS = ?, MASTER_CONNECT_RETRY = 5', [
        seenFromTarget.host,
        seenFromTarget.port,
        sourceEndpoint.user ?? 'root',
        sourceEndpoint.password ?? '',
        from.file,
        from.position,
      ]);
      await target.query('START SLAVE');
      const replication = new MysqlReplication(source, target);
      const deadline = performance.now() + (options.timeoutMs ?? 60_000);
      for (;;) {
        const status = await replication.status();
        if (status.lastError) throw new ValidationError(`Replication failed on the target: ${status.lastError}`);
        if (status.running && status.secondsBehind !== null) return replication;
        if (performance.now() > deadline) throw new TimeoutError('Replication did not start within its timeout.', { timeoutMs: options.timeoutMs ?? 60_000 });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } catch (error) {
      await Promise.all([source.end(), target.end()].map((closing) => closing.catch(() => undefined)));
      throw error;
    }
  }

  /** A replication already running on the target from this source (a resumed run); undefined if there is none. */
  static async attach(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint): Promise<MysqlReplication | undefined> {
    const target = await open(targetEndpoint, 'target');
    const row = await first(target, 'SHOW SLAVE STATUS').catch(() => undefined);
    const seenFromTarget = sourceEndpoint.peer ?? sourceEndpoint;
    if (!row || row.Master_Host !== seenFromTarget.host || Number(row.Master_Port) !== seenFromTarget.port) {
      await target.end().catch(() => undefined);
      return undefined;
    }
    return new MysqlReplication(await open(sourceEndpoint, 'source'), target);
  }

  /** Whether the target still replicates (false once promoted). */
  async replicating(): Promise<boolean> {
    return (await first(this.target, 'SHOW SLAVE STATUS')) !== undefined;
  }

  async status(): Promise<MysqlReplicationStatus> {
    const row = await first(this.target, 'SHOW SLAVE STATUS');
    return {
      running: row?.Slave_IO_Running === 'Yes' && row?.Slave_SQL_Running === 'Yes',
      secondsBehind: row?.Seconds_Behind_Master === null || row?.Seconds_Behind_Master === undefined ? null : Number(row.Seconds_Behind_Master),
      lastError: row?.Last_SQL_Error || row?.Last_IO_Error ? String(row.Last_SQL_Error || row.Last_IO_Error) : null,
    };
  }

  /**
   * Cutover: the source stops taking writes (read_only), the target applies everything up to the
   * source's last position, stops replicating and is made writable.
   */
  async cutover(options: { timeoutMs?: number } = {}): Promise<{ writeDowntimeMs: number; position: BinlogPosition }> {
    const stopped = performance.now();
    await this.source.query('SET GLOBAL read_only = ON');
    const master = await first(this.source, 'SHOW MASTER STATUS');
    const position = { file: String(master?.File), position: Number(master?.Position) };
    const deadline = stopped + (options.timeoutMs ?? 60_000);
    for (;;) {
      const row = await first(this.target, 'SHOW SLAVE STATUS');
      if (row?.Last_SQL_Error) throw new ValidationError(`Replication failed during cutover: ${row.Last_SQL_Error}. The source is read-only: set read_only = OFF on it to roll back.`);
      if (row?.Relay_Master_Log_File === position.file && Number(row?.Exec_Master_Log_Pos) >= position.position) break;
      if (performance.now() > deadline) {
        throw new TimeoutError(`The target did not reach ${position.file}:${position.position} in time. The source is read-only: set read_only = OFF on it to roll back.`, { timeoutMs: options.timeoutMs ?? 60_000 });
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await this.target.query('STOP SLAVE');
    await this.target.query('RESET SLAVE ALL');
    await this.target.query('SET GLOBAL read_only = OFF');
    return { writeDowntimeMs: performance.now() - stopped, position };
  }

  async close(): Promise<void> {
    await Promise.all([this.source.end(), this.target.end()].map((closing) => closing.catch(() => undefined)));
  }
}

/**
 * `MysqlDataMover.replicate`: the target follows the source from the copy's binlog position (or,
 * on a resumed run, the replication already running is attached), and is waited for until it is
 * no second behind.
 */
export async function replicateMysql(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: ReplicateOptions & { timeoutMs?: number } = {}): Promise<DataReplication> {
  let replication = await MysqlReplication.attach(sourceEndpoint, targetEndpoint);
  if (!replication) {
    const binlog = (options.after as (CopyReport & { binlog?: BinlogPosition }) | undefined)?.binlog;
    if (!binlog) {
      throw new ValidationError('MySQL replication continues from a copy, and no copy with a binlog position was given.', {
        issues: [{ path: 'after', message: 'no binlog position', fix: 'copy first (with the source\'s binary log on): the copy report carries the position' }],
      });
    }
    replication = await MysqlReplication.start(sourceEndpoint, targetEndpoint, binlog, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  }
  const handle = replication;
  const deadline = performance.now() + (options.timeoutMs ?? 300_000);
  for (;;) {
    const status = await handle.status();
    if (status.lastError) throw new ValidationError(`Replication failed on the target: ${status.lastError}`);
    if (status.secondsBehind === 0 || !(await handle.replicating())) break;
    if (performance.now() > deadline) throw new TimeoutError(`The replica is still ${status.secondsBehind ?? '?'} s behind.`, { timeoutMs: options.timeoutMs ?? 300_000 });
    if (options.signal?.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    async status() {
      const status = await handle.status();
      return { caughtUp: status.secondsBehind === 0, lag: status.secondsBehind === null ? 'not replicating' : `${status.secondsBehind} s behind` };
    },
    async cutover() {
      if (!(await handle.replicating())) return { writeDowntimeMs: null, alreadyPromoted: true };
      const { writeDowntimeMs } = await handle.cutover();
      return { writeDowntimeMs, alreadyPromoted: false };
    },
    close: () => handle.close(),
  };
}
