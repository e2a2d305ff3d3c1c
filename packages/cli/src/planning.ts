/**
 * What plan and apply share: load and check the spec, reach the provider, plan, note drift from
 * the state file, and run the policies on the plan.
 */
import {
  builtInRules,
  driftNotes,
  evaluatePolicies,
  isEmptyPlan,
  localLock,
  lockKey,
  plan as makePlan,
  verifyProvider,
  type LockLease,
  type EnvironmentSpec,
  type Plan,
  type PolicyReport,
  type ProviderV1,
} from '@armada/core';
import { ViolationsError } from './errors.js';
import { planToJSON, renderPlan, renderViolations } from './render.js';
import type { Session } from './session.js';
import { loadCheckedSpec, providerFor, readState, statePathFor } from './spec.js';

export interface PreparedPlan {
  spec: EnvironmentSpec;
  provider: ProviderV1;
  plan: Plan;
  policies: PolicyReport;
  statePath: string;
  changes: boolean;
  /** The environment's lock, when the plan was made to be applied: released by the caller. */
  lease?: LockLease;
}

/** How long `armada apply` and `destroy` wait for another run of the same environment on this machine. */
const LOCK_WAIT_MS = 120_000;

/**
 * The environment's lock, for a run that will change it: taken before its plan is made, so that
 * no other run changes what the plan saw before it is applied. Says so while it waits.
 */
export async function lockEnvironment(session: Session, provider: ProviderV1, environment: string, operation: string): Promise<LockLease> {
  const signal = session.signal;
  return localLock().acquire(lockKey(provider, environment), {
    operation,
    waitMs: LOCK_WAIT_MS,
    ...(signal ? { signal } : {}),
    onWait: (holder) =>
      session.note(session.styleErr('dim', `Waiting for "${environment}": ${holder ? `${holder.owner} has it (${holder.operation}, since ${holder.since})` : 'another run has it'}...`)),
  });
}

export async function preparePlan(session: Session, specPath: string, options: { lockFor?: string } = {}): Promise<PreparedPlan> {
  const { spec } = await loadCheckedSpec(session, specPath);
  const { provider } = await providerFor(session, spec);
  const lease = options.lockFor ? await lockEnvironment(session, provider, spec.name, options.lockFor) : undefined;
  try {
    return { ...(await planFor(session, spec, provider)), ...(lease ? { lease } : {}) };
  } catch (error) {
    await lease?.release();
    throw error;
  }
}

async function planFor(session: Session, spec: EnvironmentSpec, provider: ProviderV1): Promise<PreparedPlan> {
  const signal = session.signal;
  session.note(session.styleErr('dim', `Planning "${spec.name}" on ${provider.id} (${provider.region})...`));
  // Credentials and region first: a wrong token is one clear error, before anything else is called.
  await verifyProvider(provider, signal ? { signal } : {});
  const plan = await makePlan({ spec, provider, ...(signal ? { signal } : {}) });
  const statePath = statePathFor(session, spec.name);
  plan.notes.push(...driftNotes(plan, await readState(session, statePath)));
  const policies = evaluatePolicies({ spec, plan }, builtInRules);
  return { spec, provider, plan, policies, statePath, changes: !isEmptyPlan(plan) };
}

/** Prints the plan and the policy findings; throws when a policy error blocks apply. */
export function showPlan(session: Session, prepared: PreparedPlan): void {
  const { plan, policies } = prepared;
  session.setResult({
    plan: planToJSON(plan),
    changes: prepared.changes,
    policies: { ok: policies.ok, violations: policies.violations },
    stateFile: prepared.statePath,
  });
  session.print(renderPlan(plan, (style, text) => session.style(style, text)));
  if (policies.warnings.length > 0) {
    session.note(`${policies.warnings.length} policy warning(s):`);
    session.note(renderViolations(policies.warnings, (style, text) => session.styleErr(style, text)));
  }
  if (!policies.ok) {
    throw new ViolationsError(`${policies.errors.length} policy violation(s); apply would be refused:`, policies.errors, 'PolicyViolation');
  }
}
