/**
 * Retries of retryable errors (throttling, 5xx, eventual consistency) with exponential backoff and
 * jitter, within a budget of attempts and of elapsed time. Built on p-retry.
 */
import pRetry, { AbortError } from 'p-retry';
import { ArmadaError, CancelledError, ThrottledError, toArmadaError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** First backoff; each later one doubles, up to `maxDelayMs`, randomised by up to 2x. */
  minDelayMs: number;
  maxDelayMs: number;
  /** No retry starts after this much time since the first attempt. */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 8, minDelayMs: 200, maxDelayMs: 10_000, maxElapsedMs: 300_000 };

export interface RetryOptions extends Partial<RetryPolicy> {
  signal?: AbortSignal;
  /** Called before each retry, with the error that caused it. */
  onRetry?: (error: ArmadaError, attempt: number) => void;
  /** Provider id, to tag unknown errors. */
  provider?: string;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function withRetries<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy = { ...DEFAULT_RETRY_POLICY, ...options };
  if (options.signal?.aborted) throw new CancelledError();
  try {
    return await pRetry(
      async (attempt) => {
        try {
          return await operation(attempt);
        } catch (error) {
          const armadaError = toArmadaError(error, options.provider);
          // p-retry retries any Error; only ours that say so are worth another attempt.
          if (!armadaError.retryable) throw new AbortError(armadaError);
          throw armadaError;
        }
      },
      {
        retries: Math.max(0, policy.maxAttempts - 1),
        minTimeout: policy.minDelayMs,
        maxTimeout: policy.maxDelayMs,
        factor: 2,
        randomize: true,
        maxRetryTime: policy.maxElapsedMs,
        ...(options.signal ? { signal: options.signal } : {}),
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft === 0) return;
          const armadaError = toArmadaError(error, options.provider);
          options.onRetry?.(armadaError, attemptNumber);
          // Honour the API's own "retry after", on top of the backoff.
          if (ThrottledError.isInstance(armadaError) && armadaError.retryAfterMs) await sleep(armadaError.retryAfterMs, options.signal);
        },
      },
    );
  } catch (error) {
    if (options.signal?.aborted && !ArmadaError.isInstance(error)) throw new CancelledError();
    throw error instanceof AbortError ? error.originalError : error;
  }
}

export { sleep };
