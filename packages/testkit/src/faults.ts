/**
 * Fault injection shared by the in-memory cloud and the wire-level emulators: latency, a fraction
 * of calls throttled, eventual consistency, and chosen failures (before the call takes effect, or
 * after it, as a lost response).
 */
import { ConnectionError, ThrottledError } from '@armada/core';

/**
 * Portable operation names, so the conformance suite can aim a fault at "the instance create"
 * whatever the API calls it (RunInstances, POST /v2/droplets).
 */
export type PortableOperation =
  | 'createNetwork'
  | 'deleteNetwork'
  | 'createSubnet'
  | 'deleteSubnet'
  | 'createFirewall'
  | 'updateFirewall'
  | 'deleteFirewall'
  | 'createKeyPair'
  | 'deleteKeyPair'
  | 'createInstance'
  | 'updateInstance'
  | 'deleteInstance'
  | 'updateTags'
  | 'createDnsRecord'
  | 'updateDnsRecord'
  | 'deleteDnsRecord'
  | 'describe';

export interface FaultSettings {
  /** Added to every call. */
  latencyMs: number;
  /** Fraction (0 to 1) of calls that fail with a throttling error before taking effect. */
  throttleRate: number;
  /** New resources stay invisible to describe/list calls for this long. */
  eventualConsistencyMs: number;
  /**
   * Fraction (0 to 1) of the calls that change something (creates, updates, deletes; never a
   * describe) that take effect but whose response is lost: the client sees a connection error.
   */
  lostResponseRate: number;
}

export const NO_FAULTS: FaultSettings = { latencyMs: 0, throttleRate: 0, eventualConsistencyMs: 0, lostResponseRate: 0 };

/** What tests use to steer faults, whatever the backend (in-memory cloud or emulator). */
export interface FaultControl {
  configure(settings: Partial<FaultSettings>): void;
  /** The next call of `operation` takes effect but its response is lost (the client sees a timeout). */
  loseNextResponse(operation: PortableOperation): void;
  /** The next `times` calls of `operation` fail with `error` before taking effect. */
  failNext(operation: PortableOperation, error: Error, times?: number): void;
  reset(): void;
  /** Calls throttled so far, to prove the throttling tests really throttled. */
  readonly throttledCalls: number;
}

/** A small seeded generator (mulberry32), so a failing fault test can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** Thrown for a lost response: the call took effect, the client never heard. */
export class LostResponseError extends ConnectionError {
  constructor(operation: string) {
    super(`The response to ${operation} was lost (simulated timeout); the call may have taken effect.`);
  }
}

export class FaultInjector implements FaultControl {
  private settings: FaultSettings = { ...NO_FAULTS };
  private readonly random: () => number;
  private readonly scheduled: Array<{ operation: PortableOperation; error: Error; remaining: number }> = [];
  private readonly lost = new Set<PortableOperation>();
  private throttled = 0;
  private lostResponses = 0;
  private readonly makeThrottleError: (operation: string) => Error;

  constructor(options: { seed?: number; throttleError?: (operation: string) => Error } = {}) {
    this.random = seededRandom(options.seed ?? 42);
    this.makeThrottleError = options.throttleError ?? ((operation) => new ThrottledError(`Rate exceeded (simulated) on ${operation}.`));
  }

  get current(): Readonly<FaultSettings> {
    return this.settings;
  }

  get throttledCalls(): number {
    return this.throttled;
  }

  /** Responses lost by `lostResponseRate` so far. */
  get lostCalls(): number {
    return this.lostResponses;
  }

  configure(settings: Partial<FaultSettings>): void {
    this.settings = { ...this.settings, ...settings };
  }

  loseNextResponse(operation: PortableOperation): void {
    this.lost.add(operation);
  }

  failNext(operation: PortableOperation, error: Error, times = 1): void {
    this.scheduled.push({ operation, error, remaining: times });
  }

  reset(): void {
    this.settings = { ...NO_FAULTS };
    this.scheduled.length = 0;
    this.lost.clear();
    this.throttled = 0;
    this.lostResponses = 0;
  }

  /**
   * Runs one API call under the configured faults: latency, then throttling or a scheduled
   * failure (before the call), then the call, then a lost response (after it).
   */
  async run<T>(operation: PortableOperation, call: () => T | Promise<T>, label: string = operation): Promise<T> {
    if (this.settings.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.settings.latencyMs));
    const scheduled = this.scheduled.find((entry) => entry.operation === operation && entry.remaining > 0);
    if (scheduled) {
      scheduled.remaining--;
      throw scheduled.error;
    }
    if (this.settings.throttleRate > 0 && this.random() < this.settings.throttleRate) {
      this.throttled++;
      throw this.makeThrottleError(label);
    }
    const result = await call();
    if (this.lost.delete(operation)) throw new LostResponseError(label);
    if (operation !== 'describe' && this.settings.lostResponseRate > 0 && this.random() < this.settings.lostResponseRate) {
      this.lostResponses++;
      throw new LostResponseError(label);
    }
    return result;
  }

  /** Whether something created at `createdAt` (ms, performance.now()) is visible to describe calls yet. */
  isVisible(createdAt: number): boolean {
    return performance.now() - createdAt >= this.settings.eventualConsistencyMs;
  }
}
