/**
 * A throttle for data transfers: at most `bytesPerSecond` on average, counted from the first byte,
 * so a copy spares a live source (its disk, its network, its replicas) at the price of time.
 * Workers that share one throttle share its rate.
 */
import { ValidationError } from '../errors.js';
import { sleep } from './retry.js';

export class Throttle {
  private started: number | undefined;
  private total = 0;

  constructor(readonly bytesPerSecond: number) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
      throw new ValidationError(`A throttle of ${bytesPerSecond} bytes per second cannot be kept.`, { issues: [{ path: 'maxBytesPerSecond', message: 'not a positive number', fix: 'give a rate in bytes per second, e.g. 10485760 for 10 MiB/s' }] });
    }
  }

  /** Counts `bytes` as moved; returns how long to wait before moving more keeps the average. */
  delayFor(bytes: number): number {
    const now = performance.now();
    this.started ??= now;
    this.total += bytes;
    return Math.max(0, this.started + (this.total / this.bytesPerSecond) * 1000 - now);
  }

  /** Counts `bytes` and waits as long as the rate asks. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const wait = this.delayFor(bytes);
    if (wait > 0) await sleep(wait, signal);
  }
}

/** The throttle a copy's options ask for, if any. */
export function throttleFor(options: { maxBytesPerSecond?: number | undefined }): Throttle | undefined {
  return options.maxBytesPerSecond === undefined ? undefined : new Throttle(options.maxBytesPerSecond);
}
