/**
 * The data mover plugin interface, version 1 (MySQL, Redis): copy or replicate a live source into
 * a target, verify, and cut over. The source is only ever read, except being made read-only at
 * cutover when the caller asks.
 */
import type { ValidationIssue } from './errors.js';

/** Where a data store listens. The password is a secret: never logged, never checkpointed. */
export interface DataEndpoint {
  host: string;
  port: number;
  user?: string;
  password?: string;
  /** Databases (MySQL) or database indexes (Redis) to move; absent: all user data. */
  databases?: Array<string | number>;
  /**
   * Where the other server of a replication reaches this one, when that is not `host:port`:
   * Armada connects through a tunnel (`host` is then a loopback forward), while the replica goes
   * its own way (the store's private address over a site-to-site link, or a forward on the
   * replica's own loopback that the runbook keeps up). Replication names the source to the
   * target by it, and the target to the source. Default: `host` and `port`.
   */
  peer?: { host: string; port: number };
}

export interface TransferProgress {
  phase: string;
  /** Rows (MySQL) or keys (Redis) copied so far. */
  items: number;
  bytes: number;
  /** How many items there are in all, when the mover knows (same unit as `items`). */
  totalItems?: number;
  /** Share of the work done, 0 to 1, when the mover measures it otherwise (MySQL: chunks done). */
  fraction?: number;
  /** The pieces the mover splits the work into (MySQL: primary-key chunks), done and in all. */
  parts?: { done: number; total: number };
  bytesPerSecond?: number;
  etaSeconds?: number;
}

export interface CopyOptions {
  /** Replace data already on the target. Without it, a non-empty target is refused. */
  replaceExisting?: boolean;
  /** Where to keep the resume checkpoint (no secrets are written to it). */
  checkpointPath?: string;
  concurrency?: number;
  /** Throttle: at most this many bytes per second on average, to spare a live source. Default: as fast as it goes. */
  maxBytesPerSecond?: number;
  signal?: AbortSignal;
  onProgress?: (progress: TransferProgress) => void;
}

export interface CopyReport {
  items: number;
  bytes: number;
  durationMs: number;
  resumed: boolean;
  /**
   * What the copy did not carry over exactly, though it was not an error (objects whose DEFINER
   * became the target's login, tables read outside the snapshot). Shown in the migration report.
   */
  warnings?: string[];
}

/** One thing that differs between source and target, named by object. */
export interface VerifyDifference {
  /** The object: `shop.orders`, `shop.orders chunk id 1..5000`, `view shop.big_orders`, `user 'app'@'%'`. */
  object: string;
  /** `missing` on the target, `extra` on the target (only there), or `different`. */
  kind: 'missing' | 'extra' | 'different';
  /** What differs, for people: `5000 rows (checksum ...) on the source, 4999 on the target`. */
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  /** How many objects and chunks were compared; verify never says ok having compared nothing. */
  compared: number;
  /** The first difference found, named precisely (table and chunk, or key). */
  firstDifference?: string;
  /** Every difference found, by object (a mover may stop listing after many). */
  differences?: VerifyDifference[];
  /** Known, reported changes that are not differences (a DEFINER the target has no account for). */
  notes?: string[];
}

/** Where a replica stands against its source. */
export interface ReplicationLag {
  /** True when the replica has applied everything the source has written so far. */
  caughtUp: boolean;
  /** For people: `0 s behind`, `1,204 bytes behind`. */
  lag: string;
}

/** A running replication from a source into a target, started by `DataMoverV1.replicate`. */
export interface DataReplication {
  status(): Promise<ReplicationLag>;
  /**
   * The switch: the source stops taking writes (made read-only), the target applies everything up
   * to the source's last write, stops replicating and takes writes. The write downtime is from the
   * first to the last of these. Idempotent: on a target already promoted it reports that.
   */
  cutover(options?: { signal?: AbortSignal }): Promise<{ writeDowntimeMs: number | null; alreadyPromoted: boolean }>;
  close(): Promise<void>;
}

export interface ReplicateOptions {
  /** The copy this replication continues from (MySQL starts at its binlog position). */
  after?: CopyReport;
  replaceExisting?: boolean;
  signal?: AbortSignal;
}

/** What `DataMoverV1.check` is asked about: the copy as the migration will run it. */
export interface CheckOptions {
  /** The copy may replace what the target holds; without it, a target holding data is a problem. */
  replaceExisting?: boolean;
  mode?: 'copy' | 'replicate';
  /** The mover's own copy options (`databaseMap`, `users`, ...), as the migration passes them to copy. */
  options?: Record<string, unknown>;
  signal?: AbortSignal;
}

export interface DataMoverV1 {
  readonly specificationVersion: 'v1';
  /** Registry id: `mysql`, `redis`. */
  readonly id: string;
  /**
   * Optional, for preflight: every problem a copy from `source` to `target` would meet before its
   * first write (unreachable, credentials refused, privileges missing, the target holding data,
   * source and target the same server), found by reading only: nothing is written or locked on
   * either side. `target` undefined: only the source is checked (the target does not exist yet).
   * Paths start with `source` or `target`.
   */
  check?(source: DataEndpoint, target: DataEndpoint | undefined, options?: CheckOptions): Promise<ValidationIssue[]>;
  copy(source: DataEndpoint, target: DataEndpoint, options?: CopyOptions): Promise<CopyReport>;
  verify(source: DataEndpoint, target: DataEndpoint, options?: { sample?: number; signal?: AbortSignal }): Promise<VerifyReport>;
  /**
   * Optional, for near-zero downtime: make the target a replica of the source and wait until it
   * has caught up. Called again on a target already replicating from this source (a resumed run),
   * it attaches to the running replication instead of starting over.
   */
  replicate?(source: DataEndpoint, target: DataEndpoint, options?: ReplicateOptions): Promise<DataReplication>;
  /** Whether `replicate` continues from a copy (MySQL: from its binlog position) or makes its own (Redis: a full sync). */
  readonly replicationStartsFrom?: 'copy' | 'empty';
}

export type DataMover = DataMoverV1;
