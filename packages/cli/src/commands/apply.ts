/** `armada apply <spec>`: plan, ask, execute with live progress, write the state file. */
import { buildSteps, executePlan, writeStateFile } from '@armada/core';
import type { Command } from 'commander';
import { approve } from '../approve.js';
import { ExitCode } from '../exit-codes.js';
import { preparePlan, showPlan, type PreparedPlan } from '../planning.js';
import { createProgress } from '../progress.js';
import { executionToJSON, renderInstances, summariseExecution } from '../render.js';
import { withCommonOptions, type CliRuntime, type CommonOptions, type Session } from '../session.js';

export interface ApproveOptions extends CommonOptions {
  yes?: boolean;
  autoApprove?: boolean;
}

/** --yes and its alias --auto-approve, for apply and destroy. */
export function withApproveOptions(command: Command): Command {
  return command.option('-y, --yes', 'do not ask for approval').option('--auto-approve', 'the same as --yes');
}

export function executionExitCode(status: 'succeeded' | 'failed' | 'cancelled'): ExitCode {
  return status === 'succeeded' ? ExitCode.Success : status === 'cancelled' ? ExitCode.Interrupted : ExitCode.Failure;
}

export function registerApply(program: Command, runtime: CliRuntime): void {
  withCommonOptions(
    withApproveOptions(
      program
        .command('apply')
        .description('make the cloud match the spec: plan, ask, execute, record the state file')
        .argument('<spec>', 'environment spec (.yaml, .yml or .json)'),
    ),
  ).action(
    runtime.action<ApproveOptions>(async (session, options, [specPath]) => {
      const prepared = await preparePlan(session, specPath as string, { lockFor: 'apply' });
      try {
        return await applyPrepared(session, options, prepared);
      } finally {
        await prepared.lease?.release();
      }
    }),
  );
}

async function applyPrepared(session: Session, options: ApproveOptions, prepared: PreparedPlan): Promise<ExitCode> {
  showPlan(session, prepared);
  const { spec, provider, plan, statePath } = prepared;
  if (prepared.changes) {
    const approved = await approve(session, `Apply these changes to "${spec.name}" on ${provider.id}?`, options.yes === true || options.autoApprove === true);
    if (!approved) {
      session.note('Not applied; nothing was changed.');
      return ExitCode.NotApproved;
    }
  }
  const progress = createProgress(session, buildSteps(plan).size);
  const signal = session.signal;
  const execution = await executePlan(plan, { provider, onEvent: progress.onEvent, ...(signal ? { signal } : {}) });
  progress.finish();
  // Written whatever the outcome: the cache then knows what this run made.
  await writeStateFile(statePath, { environment: spec.name, provider: plan.provider, resources: execution.resources });
  session.setResult({ execution: executionToJSON(execution) });
  const paint = (style: Parameters<typeof session.style>[0], text: string) => session.style(style, text);
  if (prepared.changes) session.print(summariseExecution(execution, paint));
  const instances = renderInstances(execution.resources);
  if (instances.length > 0 && execution.status === 'succeeded') session.print(['Instances:', ...instances].join('\n'));
  session.note(session.styleErr('dim', `State written to ${session.displayPath(statePath)}.`));
  return executionExitCode(execution.status);
}
