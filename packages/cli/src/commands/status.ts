/**
 * `armada status [<spec>]`: what the state file says is provisioned. It reads the local cache
 * only and never calls the cloud (`armada plan` asks the cloud).
 */
import { type MigrationCheckpointStatus, type ObservedResource, readMigrationCheckpoint, type StateFile } from '@armada/core';
import type { Command } from 'commander';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode } from '../exit-codes.js';
import { renderInstances, resourcesToJSON } from '../render.js';
import { withCommonOptions, type CliRuntime, type Session } from '../session.js';
import { loadSpecShape, readState, statePathFor } from '../spec.js';

interface StatusEntry {
  stateFile: string;
  /** The environment asked about, when known before reading (from the spec). */
  environment?: string;
  state: StateFile | undefined;
}

async function stateFilesIn(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory)).filter((name) => name.endsWith('.json')).sort().map((name) => join(directory, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function countByKind(resources: readonly ObservedResource[]): string {
  const counts = new Map<string, number>();
  for (const resource of resources) counts.set(resource.kind, (counts.get(resource.kind) ?? 0) + 1);
  return [...counts].map(([kind, count]) => `${count} ${kind}${count === 1 ? '' : 's'}`).join(', ');
}

function renderEntry(session: Session, entry: StatusEntry): string {
  const where = session.displayPath(entry.stateFile);
  if (!entry.state) return `${session.style('bold', `"${entry.environment ?? '?'}"`)}: no state file at ${where} (not applied from here yet).`;
  const { state } = entry;
  const lines = [
    session.style('bold', `"${state.environment}" on ${state.provider.id} (${state.provider.region})`),
    `  state file  ${where}, written ${state.writtenAt}`,
    `  resources   ${state.resources.length === 0 ? 'none' : `${state.resources.length}: ${countByKind(state.resources)}`}`,
  ];
  const instances = renderInstances(state.resources);
  if (instances.length > 0) lines.push('  instances', ...instances.map((line) => `  ${line}`));
  const others = state.resources.filter((resource) => resource.kind !== 'instance');
  if (others.length > 0) lines.push('  other', ...others.map((resource) => `    ${resource.address.padEnd(24)} ${resource.id}`));
  return lines.join('\n');
}

function renderMigration(session: Session, migration: MigrationCheckpointStatus): string {
  const state = migration.stoppedAt ? `stopped at step ${migration.stoppedAt}: resume with armada migrate <file> --resume` : 'every recorded step done';
  return [
    session.style('bold', `migration "${migration.migration}"`),
    `  checkpoint  ${session.displayPath(migration.directory)}, started ${migration.startedAt}`,
    `  state       ${state}`,
    ...migration.steps.map((step) => `    ${step.status === 'done' ? 'done   ' : 'started'} ${step.id}${step.summary ? `: ${step.summary}` : ''}`),
  ].join('\n');
}

export function registerStatus(program: Command, runtime: CliRuntime): void {
  withCommonOptions(
    program
      .command('status')
      .description("what the state file says is provisioned, and where migrations run from here stand (reads local files only; every .armada/*.json and .armada/migrations/* when no spec or --state is given)")
      .argument('[spec]', 'environment spec; its name gives the default state file'),
  ).action(
    runtime.action(async (session, options, [specPath]) => {
      let files: Array<{ path: string; environment?: string }>;
      if (specPath) {
        const { spec } = await loadSpecShape(session, specPath);
        files = [{ path: statePathFor(session, spec.name), environment: spec.name }];
      } else if (options.state) {
        files = [{ path: session.path(options.state) }];
      } else {
        files = (await stateFilesIn(join(session.cwd, '.armada'))).map((path) => ({ path }));
      }
      const entries: StatusEntry[] = [];
      for (const file of files) {
        entries.push({ stateFile: file.path, ...(file.environment ? { environment: file.environment } : {}), state: await readState(session, file.path) });
      }
      session.setResult({
        environments: entries.map((entry) => ({
          stateFile: entry.stateFile,
          exists: entry.state !== undefined,
          environment: entry.state?.environment ?? entry.environment ?? null,
          provider: entry.state?.provider ?? null,
          writtenAt: entry.state?.writtenAt ?? null,
          resources: entry.state ? resourcesToJSON(entry.state.resources) : [],
        })),
      });
      // Migrations run from here keep their checkpoints under .armada/migrations/<name>/.
      const migrations: MigrationCheckpointStatus[] = [];
      if (!specPath && !options.state) {
        const under = join(session.cwd, '.armada', 'migrations');
        const names = await readdir(under).catch(() => [] as string[]);
        for (const name of names.sort()) {
          const status = await readMigrationCheckpoint(join(under, name));
          if (status) migrations.push(status);
        }
      }
      session.setResult({ migrations });
      if (entries.length === 0) session.print('No state files in .armada/ here: nothing applied from this directory yet.');
      for (const entry of entries) session.print(renderEntry(session, entry));
      for (const migration of migrations) session.print(renderMigration(session, migration));
      if (entries.some((entry) => entry.state)) {
        session.note(session.styleErr('dim', 'The state file is a cache of the last run; `armada plan` asks the cloud.'));
      }
      return ExitCode.Success;
    }),
  );
}
