/** `armada destroy <spec>`: delete everything the environment owns (found by its ownership tags). */
import { buildSteps, executePlan, planDestroy, verifyProvider, writeStateFile, type ProviderV1 } from '@armada/core';
import type { Command } from 'commander';
import { approve } from '../approve.js';
import { ExitCode } from '../exit-codes.js';
import { createProgress } from '../progress.js';
import { executionToJSON, planToJSON, renderPlan, summariseExecution } from '../render.js';
import { lockEnvironment } from '../planning.js';
import { withCommonOptions, type CliRuntime, type Session } from '../session.js';
import { loadSpecShape, providerFor, statePathFor } from '../spec.js';
import { executionExitCode, withApproveOptions, type ApproveOptions } from './apply.js';

export function registerDestroy(program: Command, runtime: CliRuntime): void {
  withCommonOptions(
    withApproveOptions(
      program
        .command('destroy')
        .description("delete every resource the spec's environment owns, dependents first")
        .argument('<spec>', 'environment spec: its name, provider and region say what to destroy'),
    ),
  ).action(
    runtime.action<ApproveOptions>(async (session, options, [specPath]) => {
      // Only the shape: a spec that now breaks a policy, or lost a key file, can still be destroyed.
      const { spec } = await loadSpecShape(session, specPath as string);
      const { provider } = await providerFor(session, spec);
      const lease = await lockEnvironment(session, provider, spec.name, 'destroy');
      try {
        return await destroyLocked(session, options, spec, provider);
      } finally {
        await lease.release();
      }
    }),
  );
}

async function destroyLocked(session: Session, options: ApproveOptions, spec: { name: string }, provider: ProviderV1): Promise<ExitCode> {
  const signal = session.signal;
  session.note(session.styleErr('dim', `Looking for what "${spec.name}" owns on ${provider.id} (${provider.region})...`));
  await verifyProvider(provider, signal ? { signal } : {});
  const plan = await planDestroy({ environment: spec.name, provider, ...(signal ? { signal } : {}) });
  const statePath = statePathFor(session, spec.name);
  const count = plan.summary.delete;
  session.setResult({ plan: planToJSON(plan), changes: count > 0, stateFile: statePath });
  session.print(
    count > 0
      ? renderPlan(plan, (style, text) => session.style(style, text))
      : `Nothing to destroy: "${spec.name}" owns nothing on ${provider.id} (${provider.region}).`,
  );
  if (count > 0) {
    const approved = await approve(session, `Destroy all ${count} resource(s) of "${spec.name}" on ${provider.id}? This cannot be undone.`, options.yes === true || options.autoApprove === true);
    if (!approved) {
      session.note('Not destroyed; nothing was changed.');
      return ExitCode.NotApproved;
    }
  }
  const progress = createProgress(session, buildSteps(plan).size);
  const execution = await executePlan(plan, { provider, onEvent: progress.onEvent, ...(signal ? { signal } : {}) });
  progress.finish();
  await writeStateFile(statePath, { environment: spec.name, provider: plan.provider, resources: execution.resources });
  session.setResult({ execution: executionToJSON(execution) });
  if (count > 0) session.print(summariseExecution(execution, (style, text) => session.style(style, text)));
  session.note(session.styleErr('dim', `State written to ${session.displayPath(statePath)}.`));
  return executionExitCode(execution.status);
}
