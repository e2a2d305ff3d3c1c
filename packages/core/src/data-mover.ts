/**
 * The data mover plugin interface, version 1 (MySQL, Redis): copy or replicate a live source into
 * a target, verify, and cut over. The source is only ever read, except being made read-only at
 * cutover when the caller asks.
 */

/** Where a data store listens. The password is a secret: never logged, never checkpointed. */
export interface DataEndpoint {
  host: string;
  port: number;
  user?: string;
  password?: string;
  /** Databases (MySQL) or database indexes (Redis) to move; absent: all user data. */
  databases?: Array<string | number>;
}

export interface TransferProgress {
  phase: string;
  items: number;
  bytes: number;
  totalItems?: number;
  bytesPerSecond?: number;
  etaSeconds?: number;
}

export interface CopyOptions {
  /** Replace data already on the target. Without it, a non-empty target is refused. */
  replaceExisting?: boolean;
  /** Where to keep the resume checkpoint (no secrets are written to it). */
  checkpointPath?: string;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: TransferProgress) => void;
}

export interface CopyReport {
  items: number;
  bytes: number;
  durationMs: number;
  resumed: boolean;
}

export interface VerifyReport {
  ok: boolean;
  compared: number;
  /** The first difference found, named precisely (table and chunk, or key). */
  firstDifference?: string;
}

export interface DataMoverV1 {
  readonly specificationVersion: 'v1';
  /** Registry id: `mysql`, `redis`. */
  readonly id: string;
  copy(source: DataEndpoint, target: DataEndpoint, options?: CopyOptions): Promise<CopyReport>;
  verify(source: DataEndpoint, target: DataEndpoint, options?: { sample?: number; signal?: AbortSignal }): Promise<VerifyReport>;
}

export type DataMover = DataMoverV1;
