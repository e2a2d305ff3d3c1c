/**
 * The one-call paths: policies, plan, execute. Each step is also exported on its own for callers
 * who want to show the plan and ask before applying.
 */
import { ValidationError } from './errors.js';
import { evaluatePolicies, type PolicyReport, type PolicyRule } from './policies/engine.js';
import { builtInRules } from './policies/rules.js';
import { executePlan, type ExecuteOptions, type ExecutionResult } from './execute/executor.js';
import { withRetries, type RetryPolicy } from './execute/retry.js';
import { plan as makePlan, planDestroy } from './plan/planner.js';
import type { Plan } from './plan/types.js';
import type { ProviderV1 } from './provider.js';
import { localLock, type EnvironmentLock } from './lock.js';
import type { EnvironmentSpec } from './spec/schema.js';
import { driftNotes, readStateFile, writeStateFile } from './state.js';

/** The lock a changing run takes (see lock.ts). */
export interface LockOptions {
  /** Default: `localLock()`, shared by the runs of this machine. `false`: none (the caller locks). */
  lock?: EnvironmentLock | false;
  /** How long to wait for a lock another run holds before refusing with LockedError (default 2 minutes). */
  lockWaitMs?: number;
}

const DEFAULT_LOCK_WAIT_MS = 120_000;
let machineLock: EnvironmentLock | undefined;

/** What a lock is taken on: the environment on its provider and region (the same name elsewhere is another environment). */
export function lockKey(provider: Pick<ProviderV1, 'id' | 'region'>, environment: string): string {
  return `${provider.id}/${provider.region}/${environment}`;
}

/** Runs `run` holding the environment's lock (released however `run` ends). */
export async function withEnvironmentLock<T>(
  options: LockOptions & { provider: ProviderV1; signal?: AbortSignal },
  environment: string,
  operation: string,
  run: () => Promise<T>,
): Promise<T> {
  if (options.lock === false) return run();
  const lock = options.lock ?? (machineLock ??= localLock());
  const lease = await lock.acquire(lockKey(options.provider, environment), {
    operation,
    waitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    return await run();
  } finally {
    await lease.release();
  }
}

export interface ApplyEnvironmentOptions extends ExecuteOptions, LockOptions {
  spec: EnvironmentSpec;
  /** Policy rules run on the spec and the plan. Default: every built-in rule. */
  rules?: readonly PolicyRule[];
  /** Where to keep the local state cache; read for drift notes, rewritten after the run. */
  statePath?: string;
}

export interface ApplyEnvironmentResult {
  plan: Plan;
  policies: PolicyReport;
  execution: ExecutionResult;
}

/**
 * The provider's own check of credentials and region (`verify`), retried like every other call:
 * one throttled DescribeRegions must not end a run before it starts. A wrong token or region is
 * not retryable and comes at once.
 */
export async function verifyProvider(provider: ProviderV1, options: { signal?: AbortSignal; retry?: Partial<RetryPolicy> } = {}): Promise<void> {
  const check = provider.verify;
  if (!check) return;
  const signal = options.signal ? { signal: options.signal } : {};
  await withRetries(() => Promise.resolve(check.call(provider, signal)), { ...options.retry, provider: provider.id, ...signal });
}

/** Refuses a plan that breaks a policy with severity error, listing every violation. */
export function assertPolicies(report: PolicyReport): void {
  if (report.ok) return;
  throw new ValidationError(`${report.errors.length} policy violation(s) block apply:`, {
    issues: report.errors.map((violation) => ({
      path: violation.path,
      message: `${violation.message} [${violation.rule}]`,
      ...(violation.fix ? { fix: violation.fix } : {}),
    })),
  });
}

export async function applyEnvironment(options: ApplyEnvironmentOptions): Promise<ApplyEnvironmentResult> {
  return withEnvironmentLock(options, options.spec.name, 'apply', () => applyLocked(options));
}

async function applyLocked(options: ApplyEnvironmentOptions): Promise<ApplyEnvironmentResult> {
  const { spec, provider, rules = builtInRules } = options;
  await verifyProvider(provider, { ...(options.signal ? { signal: options.signal } : {}), ...(options.retry ? { retry: options.retry } : {}) });
  const plan = await makePlan({ spec, provider, ...(options.signal ? { signal: options.signal } : {}), ...(options.retry ? { retry: options.retry } : {}) });
  if (options.statePath) plan.notes.push(...driftNotes(plan, await readStateFile(options.statePath)));
  const policies = evaluatePolicies({ spec, plan }, rules);
  assertPolicies(policies);
  const execution = await executePlan(plan, options);
  if (options.statePath) {
    await writeStateFile(options.statePath, { environment: spec.name, provider: plan.provider, resources: execution.resources });
  }
  return { plan, policies, execution };
}

export async function destroyEnvironment(
  options: ExecuteOptions & LockOptions & { environment: string; statePath?: string },
): Promise<{ plan: Plan; execution: ExecutionResult }> {
  return withEnvironmentLock(options, options.environment, 'destroy', () => destroyLocked(options));
}

async function destroyLocked(options: ExecuteOptions & { environment: string; statePath?: string }): Promise<{ plan: Plan; execution: ExecutionResult }> {
  const plan = await planDestroy({
    environment: options.environment,
    provider: options.provider,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
  });
  const execution = await executePlan(plan, options);
  if (options.statePath) {
    await writeStateFile(options.statePath, { environment: options.environment, provider: plan.provider, resources: execution.resources });
  }
  return { plan, execution };
}
