/**
 * `armada migrate <migration file> [--dry-run] [--resume]`: runs the migration runbook of a file
 * (see core's `migrationFileSchema`) with live progress, and prints its report. The checkpoint
 * lives in the migration's directory; `--resume` continues a run that stopped at the step (and the
 * chunk) where it stopped.
 */
import { loadMigrationFile, type MigrationEvent, MigrationFailedError, migrationFromFile, renderMigrationReport, runMigration, CancelledError } from '@armada/core';
import { chefConfigManagerPlugin } from '@armada/config-chef';
import { puppetConfigManagerPlugin } from '@armada/config-puppet';
import { mysqlDataMoverPlugin } from '@armada/data-mysql';
import { redisDataMoverPlugin } from '@armada/data-redis';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { createRegistry } from '../registry.js';
import { type CliRuntime, type CommonOptions, type Session, withCommonOptions } from '../session.js';

interface MigrateOptions extends CommonOptions {
  dryRun?: boolean;
  resume?: boolean;
  startOver?: boolean;
}

/** Step lines on stderr; progress lines at most a few per second, so logs stay readable. */
function migrationProgress(session: Session): (event: MigrationEvent) => void {
  let last = 0;
  return (event) => {
    switch (event.type) {
      case 'step-started':
        session.note(`${session.styleErr('bold', `[${event.index + 1}/${event.total}]`)} ${event.title}`);
        break;
      case 'step-progress': {
        const now = performance.now();
        if (now - last < 250 && event.fraction !== undefined && event.fraction < 1) return;
        last = now;
        session.note(session.styleErr('dim', `      ${event.message}`));
        break;
      }
      case 'step-succeeded':
        session.note(`      ${session.styleErr('green', 'done')} in ${(event.durationMs / 1000).toFixed(1)} s: ${event.result.summary}`);
        break;
      case 'step-skipped':
        session.note(`      ${session.styleErr('dim', `skipped: ${event.title} (${event.reason})`)}`);
        break;
      case 'step-failed':
        session.note(`      ${session.styleErr('red', 'FAILED')}: ${event.error.message}`);
        break;
      case 'dry-run':
        session.print(session.style('bold', event.title));
        for (const line of event.lines) session.print(`    ${line}`);
        break;
      case 'preflight':
        session.note(`${session.styleErr('bold', 'Preflight')}: ${event.issues.length === 0 ? session.styleErr('green', 'nothing wrong') : session.styleErr('red', `${event.issues.length} problem(s)`)} in ${event.checked.length} checks`);
        for (const line of event.checked) session.note(session.styleErr('dim', `      checked ${line}`));
        break;
    }
  };
}

export function registerMigrate(program: Command, runtime: CliRuntime): void {
  withCommonOptions(
    program
      .command('migrate')
      .description('run a migration file: provision the target, configure it, move and verify the data, switch DNS')
      .argument('<migration>', 'migration file (.yaml, .yml or .json)')
      .option('--dry-run', 'print what each step would do and change nothing')
      .option('--resume', 'continue a run that stopped, at the step where it stopped')
      .option('--start-over', 'run every step again from the first; the earlier run\'s files are kept under previous/ in its directory'),
    { state: false },
  ).action(
    runtime.action<MigrateOptions>(async (session, options, [file]) => {
      const loaded = await loadMigrationFile(session.path(file as string));
      const registry = await createRegistry({
        env: session.env,
        cwd: session.cwd,
        plugins: options.plugin ?? [],
        pluginObjects: [mysqlDataMoverPlugin(), redisDataMoverPlugin(), puppetConfigManagerPlugin(), chefConfigManagerPlugin()],
      });
      // Unknown providers and movers, missing files: reported by migrationFromFile, all at once.
      const migration = await migrationFromFile(loaded, { registry, env: session.env, cwd: session.cwd });
      if (options.resume && options.startOver) throw new UsageError('--resume and --start-over cannot be used together: choose one.');
      const signal = session.signal;
      try {
        const report = await runMigration({
          name: migration.name,
          steps: migration.steps,
          directory: migration.directory,
          onEvent: migrationProgress(session),
          ...(options.dryRun ? { dryRun: true } : {}),
          ...(options.resume ? { resume: true } : {}),
          ...(options.startOver ? { startOver: true } : {}),
          preflight: migration.preflight,
          ...(signal ? { signal } : {}),
        });
        session.setResult({ report });
        if (report.finishedEarlier) {
          session.print(`Migration ${report.migration} finished at ${report.finishedEarlier.finishedAt} (succeeded); nothing was run now.`);
          session.note(`To run every step again from the first: armada migrate ${file} --start-over`);
          return ExitCode.Success;
        }
        if (!options.dryRun) session.print(renderMigrationReport(report));
        else session.note(session.styleErr('dim', 'Dry run: nothing was changed.'));
        return ExitCode.Success;
      } catch (error) {
        if (!MigrationFailedError.isInstance(error)) throw error;
        // The report says what was done; the last lines say what failed and how to resume.
        session.setResult({ report: error.report });
        session.print(renderMigrationReport(error.report));
        session.reportError(error.cause);
        session.note(`The source keeps serving. Fix the cause, then: armada migrate ${file} --resume`);
        return CancelledError.isInstance(error.cause) ? ExitCode.Interrupted : ExitCode.Failure;
      } finally {
        // The SSH tunnels to private data stores and the replication paths end with the command.
        await migration.close();
      }
    }),
  );
}
