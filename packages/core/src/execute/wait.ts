/**
 * Waiters: poll until a resource reaches a state, with bounded exponential backoff and jitter, and
 * a timeout whose message says what was awaited and what to do. A NotFound while polling is
 * eventual consistency (a new id not yet visible), so it counts as "not yet", not as a failure.
 */
import { ArmadaError, CancelledError, NotFoundError, TimeoutError } from '../errors.js';
import { sleep } from './retry.js';

export interface WaitOptions {
  /** What is awaited, for the timeout message: "instance i-0abc to be running". */
  description: string;
  timeoutMs?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** What to do about a timeout. */
  hint?: string;
  provider?: string;
}

export type ProbeResult<T> = { done: true; value: T } | { done: false; state?: string };

/**
 * Calls `probe` until it reports done. Returns its value, or throws a TimeoutError naming the last
 * state seen.
 */
export async function waitUntil<T>(probe: () => Promise<ProbeResult<T>>, options: WaitOptions): Promise<T> {
  const { timeoutMs = 600_000, minDelayMs = 250, maxDelayMs = 15_000 } = options;
  const started = performance.now();
  let lastState = 'not seen yet';
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw new CancelledError(`Cancelled while waiting for ${options.description}.`);
    try {
      const result = await probe();
      if (result.done) return result.value;
      if (result.state) lastState = result.state;
    } catch (error) {
      if (NotFoundError.isInstance(error)) lastState = 'not found (not visible yet)';
      else if (ArmadaError.isRetryable(error)) lastState = `retrying after ${(error as ArmadaError).code}`;
      else throw error;
    }
    const elapsed = performance.now() - started;
    if (elapsed >= timeoutMs) {
      throw new TimeoutError(
        `Timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${options.description} (last state: ${lastState}). ` +
          (options.hint ?? 'Raise the wait timeout if the cloud is slow today, or check the resource in the provider console.'),
        { timeoutMs, ...(options.provider ? { provider: options.provider } : {}) },
      );
    }
    // Exponential backoff, but never more than an eighth of the time already waited: a resource
    // that becomes ready is noticed within 1/8 of its own wait, however long that was, with a
    // number of polls that grows only with the logarithm of the wait. Jitter (0.5x to 1x) keeps
    // many waiters from polling in step.
    const bound = Math.max(minDelayMs, Math.min(maxDelayMs, minDelayMs * 2 ** attempt, elapsed / 8));
    const delay = Math.min(Math.max(minDelayMs, bound * (0.5 + Math.random() * 0.5)), timeoutMs - elapsed);
    await sleep(Math.max(0, delay), options.signal);
  }
}
