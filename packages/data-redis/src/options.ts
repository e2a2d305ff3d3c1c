/** The Redis mover's options and report. */
import type { CopyOptions, CopyReport } from '@armada/core';

/** `rdb`: from a PSYNC snapshot; `scan`: SCAN + DUMP/RESTORE; `auto`: `rdb`, else `scan`. */
export type RedisCopyStrategy = 'auto' | 'rdb' | 'scan';

export interface RedisCopyOptions extends CopyOptions {
  /** How to copy (default `auto`: the RDB snapshot when the source serves one, else SCAN). */
  strategy?: RedisCopyStrategy;
  /** Keys per SCAN batch, and (rdb) keys between two progress events (default 1000). */
  batchSize?: number;
  /**
   * Keys larger than this serialized (their DUMP payload) are copied in pieces from the live
   * source (default 8 MiB). `rdb` reads the size in the snapshot; `scan` DUMPs only keys under 4x
   * this by MEMORY USAGE (the rest go in pieces at once) and goes by the payload's size.
   */
  bigKeyBytes?: number;
  /** Source database -> target database (default: the same index). */
  databaseMap?: Record<number, number>;
  /** rdb: at most this many bytes of RESTOREs written and not yet answered (default 32 MiB). */
  maxInFlightBytes?: number;
}

export interface RedisCopyReport extends CopyReport {
  /** The strategy that did the copy. */
  strategy: 'rdb' | 'scan';
  /** Why `auto` fell back to `scan`, when it did. */
  fallbackReason?: string;
  /** Keys copied in pieces (larger than `bigKeyBytes`). */
  bigKeys: number;
  /**
   * Resumed: why what an earlier run had copied was emptied and copied again (the source changed
   * since that run's snapshot or start, so keeping it would mix two points in time).
   */
  restarted?: string;
}
