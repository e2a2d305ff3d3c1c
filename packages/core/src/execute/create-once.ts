/**
 * Creates on APIs that take no idempotency token (EC2's CreateVpc, DigitalOcean, Neutron and Nova):
 * the executor repeats a create after a throttle, a lost reply or a later step that failed, and a
 * repeat that creates again leaves the first resource an orphan. A provider keeps one
 * `CreateAttempts` and goes through `once` for each such call:
 *
 * - what a create call of this run already returned is reused without a call (a list may not
 *   show it yet, and a later step of the same create may be what failed);
 * - else `find` (by ownership tags) is asked: once, or, when an earlier attempt got no reply (a
 *   ConnectionError: it may have taken effect), again every poll interval until the consistency
 *   window has passed, because what that attempt made may not be listed yet. A throttled attempt
 *   took no effect and costs no wait;
 * - else the create call runs, and what it came to is remembered.
 *
 * Keys name one create call of one run: `createKey(apply, address, what)`.
 */
import { CancelledError, ConnectionError } from '../errors.js';
import type { ApplyContext } from '../provider.js';
import type { ResourceAddress } from '../resources.js';
import { sleep } from './retry.js';

/** One create call of one run: the run's idempotency token for the address, and what is made for it (a resource may need several). */
export function createKey(apply: Pick<ApplyContext, 'idempotencyToken'>, address: ResourceAddress, what = 'create'): string {
  return `${apply.idempotencyToken(address)}/${what}`;
}

export interface CreateAttemptsOptions {
  /** How long something just made may be missing from the API's lists (its eventual consistency). */
  consistencyWindowMs: number;
  /** How often to look again within that window. */
  pollIntervalMs: number;
}

type Outcome = { made: unknown } | 'unanswered';

/**
 * `find`, asked again every `pollIntervalMs` until it finds something or `windowMs` has passed:
 * what was made a moment ago may not be listed yet. `windowMs` 0 asks once.
 */
export async function lookWithin<T>(find: () => Promise<T | undefined>, options: { windowMs: number; pollIntervalMs: number; signal?: AbortSignal }): Promise<T | undefined> {
  const deadline = performance.now() + options.windowMs;
  for (;;) {
    // Never go on to create something after the run was cancelled.
    if (options.signal?.aborted) throw new CancelledError('Cancelled while looking for what an earlier attempt made.');
    const found = await find();
    const left = deadline - performance.now();
    if (found !== undefined || left <= 0) return found;
    await sleep(Math.min(options.pollIntervalMs, left), options.signal);
  }
}

export class CreateAttempts {
  private readonly outcomes = new Map<string, Outcome>();

  constructor(private readonly options: CreateAttemptsOptions) {}

  /** What an earlier attempt of `key` made, or undefined (see the module comment). */
  async find<T>(key: string, find: () => Promise<T | undefined>, signal?: AbortSignal): Promise<T | undefined> {
    const earlier = this.outcomes.get(key);
    if (earlier !== undefined && earlier !== 'unanswered') return earlier.made as T;
    const windowMs = earlier === 'unanswered' ? this.options.consistencyWindowMs : 0;
    const found = await lookWithin(find, { windowMs, pollIntervalMs: this.options.pollIntervalMs, ...(signal ? { signal } : {}) });
    if (found !== undefined) this.outcomes.set(key, { made: found });
    return found;
  }

  /** Runs the create call and remembers what it came to: what it made, or that no reply came. */
  async remember<T>(key: string, create: () => Promise<T>): Promise<T> {
    try {
      const made = await create();
      this.outcomes.set(key, { made });
      return made;
    } catch (error) {
      if (ConnectionError.isInstance(error)) this.outcomes.set(key, 'unanswered');
      throw error;
    }
  }

  /** What an earlier attempt made, or what `create` makes now. */
  async once<T>(key: string, calls: { find: () => Promise<T | undefined>; create: () => Promise<T> }, signal?: AbortSignal): Promise<T> {
    return (await this.find(key, calls.find, signal)) ?? (await this.remember(key, calls.create));
  }
}
