/**
 * The bad-day suite: a provider applies one environment (the story's) many times, each on a fresh
 * backend, under throttling, eventual consistency and lost responses together, and after each run
 * the backend itself (not the provider) is counted: exactly what a correct apply leaves, no orphan
 * of any kind; the re-plan is empty; a fault-free re-apply does nothing.
 *
 * Each run has its own seed, named in the test's title, so a failing one can be replayed alone.
 */
import { applyEnvironment, executePlan, isEmptyPlan, plan, type EnvironmentSpec, type ProviderV1, type RetryPolicy } from '@armada/core';
import { describe, expect, it } from 'vitest';
import { NO_FAULTS, type FaultControl, type FaultSettings } from './faults.js';

export interface FaultedBackend {
  provider: ProviderV1;
  faults: FaultControl & { readonly lostCalls?: number };
  /** What the backend holds, counted by the backend (an emulator's own tables), by kind. */
  inventory(): Record<string, number> | Promise<Record<string, number>>;
  close?(): Promise<void>;
}

export interface AppliesUnderFaultsOptions {
  /** Shown in the suite's title. */
  name: string;
  /** The environment to apply (the story's, with the provider selection switched). */
  spec(): Promise<EnvironmentSpec>;
  /** A fresh backend per run; `seed` drives its fault injector. */
  start(seed: number): Promise<FaultedBackend>;
  /** The backend's inventory after a correct apply: everything the environment needs, nothing more. */
  expected: Record<string, number>;
  /** Default 20. */
  runs?: number;
  /** Default: a fifth of calls throttled, 400 ms eventual consistency, one change in ten loses its response. */
  faults?: Partial<FaultSettings>;
  retry?: Partial<RetryPolicy>;
  /** Per run. Default 60 s. */
  timeoutMs?: number;
}

export const BAD_DAY: Partial<FaultSettings> = { throttleRate: 0.2, eventualConsistencyMs: 400, lostResponseRate: 0.1 };

export function describeAppliesUnderFaults(options: AppliesUnderFaultsOptions): void {
  const runs = options.runs ?? 20;
  const retry: Partial<RetryPolicy> = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 20, ...options.retry };
  const seeds = Array.from({ length: runs }, (_, index) => index + 1);

  describe(`applies under faults: ${options.name}`, () => {
    let lost = 0;
    it.each(seeds)('seed %i: the apply succeeds and leaves exactly the environment, re-plan empty, re-apply a no-op', { timeout: options.timeoutMs ?? 60_000 }, async (seed) => {
      const backend = await options.start(seed);
      try {
        const spec = await options.spec();
        backend.faults.configure({ ...BAD_DAY, ...options.faults });
        const { execution } = await applyEnvironment({ spec, provider: backend.provider, retry, lock: false });
        expect(execution.failed.map((failure) => `${failure.step} ${failure.address}: [${failure.error.code}] ${failure.error.message}`)).toEqual([]);
        expect(execution.status).toBe('succeeded');
        // The faults really happened (a run that met none would prove nothing).
        expect(backend.faults.throttledCalls).toBeGreaterThan(0);
        lost += backend.faults.lostCalls ?? 0;

        backend.faults.configure(NO_FAULTS);
        expect(await backend.inventory()).toEqual(options.expected);
        const replanned = await plan({ spec, provider: backend.provider, retry });
        expect(replanned.actions.filter((action) => action.type !== 'noop').map((action) => `${action.type} ${action.address}`)).toEqual([]);
        expect(isEmptyPlan(replanned)).toBe(true);
        const reapplied = await executePlan(replanned, { provider: backend.provider, retry });
        expect(reapplied.done).toEqual([]);
        expect(await backend.inventory()).toEqual(options.expected);
      } finally {
        await backend.close?.();
      }
    });

    it.skipIf(runs < 5)('lost responses were injected in those runs', () => {
      expect(lost).toBeGreaterThan(0);
    });
  });
}
