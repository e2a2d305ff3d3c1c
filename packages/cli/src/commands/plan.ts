/** `armada plan <spec>`: what apply would change, changing nothing. */
import type { Command } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { preparePlan, showPlan } from '../planning.js';
import { withCommonOptions, type CliRuntime, type CommonOptions } from '../session.js';

interface PlanOptions extends CommonOptions {
  detailedExitcode?: boolean;
}

export function registerPlan(program: Command, runtime: CliRuntime): void {
  withCommonOptions(
    program
      .command('plan')
      .description('show what apply would change (asks the cloud; changes nothing)')
      .argument('<spec>', 'environment spec (.yaml, .yml or .json)')
      .option('--detailed-exitcode', `exit ${ExitCode.Changes} when the plan has changes, ${ExitCode.Success} when it has none`),
  ).action(
    runtime.action<PlanOptions>(async (session, options, [specPath]) => {
      const prepared = await preparePlan(session, specPath as string);
      showPlan(session, prepared);
      return options.detailedExitcode && prepared.changes ? ExitCode.Changes : ExitCode.Success;
    }),
  );
}
