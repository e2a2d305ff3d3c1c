/**
 * What plan and apply share: load and check the spec, reach the provider, plan, note drift from
 * the state file, and run the policies on the plan.
 */
import {
  builtInRules,
  driftNotes,
  evaluatePolicies,
  isEmptyPlan,
  plan as makePlan,
  verifyProvider,
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
}

export async function preparePlan(session: Session, specPath: string): Promise<PreparedPlan> {
  const { spec } = await loadCheckedSpec(session, specPath);
  const { provider } = await providerFor(session, spec);
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
