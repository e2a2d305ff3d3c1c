/** What one copy run works with, whichever the strategy, and its progress events. */
import type { DataEndpoint, Throttle } from '@armada/core';
import type { Redis } from 'ioredis';
import type { Checkpoint } from './checkpoint.js';
import type { RedisCopyOptions } from './options.js';

/** What one copy run works with, whichever the strategy. */
export interface Run {
  source: Redis;
  target: Redis;
  sourceEndpoint: DataEndpoint;
  targetEndpoint: DataEndpoint;
  options: RedisCopyOptions;
  databases: number[];
  mapped: (db: number) => number;
  occupied: number[];
  checkpoint: Checkpoint;
  saveCheckpoint: (value: unknown) => Promise<void>;
  totalKeys: number;
  started: number;
  items: number;
  bytes: number;
  bigKeys: number;
  /** `maxBytesPerSecond`, shared by both strategies and the big keys. */
  throttle: Throttle | undefined;
  /**
   * Fails the copy (an error naming what was evicted) the moment the target's `evicted_keys` has
   * grown since the copy started: a key the target evicts is a key lost. Set by the mover
   * (capacity.ts); both strategies call `check()` after each batch of writes.
   */
  evictions?: { check(): Promise<void> };
}

export function progress(run: Run, phase: string): void {
  const seconds = (performance.now() - run.started) / 1000;
  const { items, bytes, totalKeys } = run;
  run.options.onProgress?.({
    phase,
    items,
    bytes,
    totalItems: totalKeys,
    bytesPerSecond: seconds > 0 ? bytes / seconds : 0,
    ...(items > 0 && totalKeys > items ? { etaSeconds: ((totalKeys - items) * seconds) / items } : {}),
  });
}

/** Items and bytes copied so far, from the checkpoint's databases. */
export function recount(run: Run): void {
  const states = Object.values(run.checkpoint.databases);
  run.items = states.reduce((sum, state) => sum + state.keys, 0);
  run.bytes = states.reduce((sum, state) => sum + state.bytes, 0);
}
