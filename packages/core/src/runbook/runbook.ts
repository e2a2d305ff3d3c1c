/**
 * The migration runbook: a migration is an ordered list of typed steps run one after the other.
 * Every finished step is recorded in a checkpoint file (no secrets: only what a step chooses to
 * return as its output), so a crashed or cancelled run resumes at the step where it stopped, and a
 * step that moves data keeps its own finer checkpoint next to it (the chunk where it stopped).
 *
 * Steps are plain objects; the built-in ones live in `steps.ts`. Users add, remove and reorder
 * them as they would any array, and write their own by implementing `MigrationStep`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ArmadaError, CancelledError, ValidationError, type ValidationIssue, toArmadaError } from '../errors.js';
import { serialJsonWriter } from '../files.js';
import { type PreflightCheck, PreflightFailedError, runPreflight } from './preflight.js';

/** What a step may record in the checkpoint and the report: plain data, never a secret. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface StepResult {
  /** One line for the report: `3 instances created`, `470,000 rows copied in 2.1 s`. */
  summary: string;
  /** More lines for the text report: what changed on each server, each record switched. */
  details?: string[];
  /** Recorded in the checkpoint; later steps read it with `context.outputOf(id)`. No secrets. */
  output?: JsonValue;
}

export type MigrationEvent =
  | { type: 'step-started'; step: string; title: string; index: number; total: number }
  | { type: 'step-skipped'; step: string; title: string; reason: string }
  | { type: 'step-progress'; step: string; message: string; fraction?: number }
  | { type: 'step-succeeded'; step: string; title: string; durationMs: number; result: StepResult }
  | { type: 'step-failed'; step: string; title: string; error: ArmadaError }
  | { type: 'dry-run'; step: string; title: string; lines: string[] }
  /** Preflight is done: what it checked, and what it found (nothing when the run goes on). */
  | { type: 'preflight'; checked: string[]; issues: ValidationIssue[] };

export interface StepContext {
  readonly migration: string;
  readonly signal: AbortSignal;
  /** A step's own directory for finer-grained checkpoints (a data copy's finished chunks). */
  readonly workDirectory: string;
  /** Whether this step started before and did not finish: it is being resumed. */
  readonly resuming: boolean;
  /** The recorded output of an earlier step; throws if that step has not run. */
  outputOf<T extends JsonValue = JsonValue>(stepId: string): T;
  hasOutput(stepId: string): boolean;
  progress(message: string, fraction?: number): void;
}

export interface MigrationStep {
  /** Stable and unique within a migration: the checkpoint is keyed by it. */
  readonly id: string;
  readonly title: string;
  /**
   * Dry run: what the step would do, as lines for a person. It may read (discover resources, list
   * DNS records) but must change nothing. Earlier steps' outputs may be missing here.
   */
  describe(context: StepContext): Promise<string[]>;
  /** Does the work. Must be idempotent: it may run again after a crash in its middle. */
  run(context: StepContext): Promise<StepResult>;
}

interface StepRecord {
  status: 'started' | 'done';
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  result?: StepResult;
}

interface Checkpoint {
  version: 1;
  migration: string;
  startedAt: string;
  steps: Record<string, StepRecord>;
}

export interface RunMigrationOptions {
  /** The migration's name: it goes into the checkpoint and the report. */
  name: string;
  steps: readonly MigrationStep[];
  /** Where the checkpoint (`checkpoint.json`) and the steps' own files are kept. */
  directory: string;
  /**
   * Continue a run that stopped. Without it, a directory holding an unfinished run is refused
   * (so a second run never silently redoes half of the first), and a finished run is reported as
   * finished and not run again.
   */
  resume?: boolean;
  /**
   * Run from the first step again, whatever an earlier run did. The earlier run's files (its
   * checkpoint, report, the steps' own files) are kept under `previous/<when it started>/` in the
   * directory, never deleted.
   */
  startOver?: boolean;
  /** Checked before anything else, in the dry run and in every real run; a problem stops the run (PreflightFailedError). */
  preflight?: readonly PreflightCheck[];
  /** Print what each step would do and change nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: MigrationEvent) => void;
}

export interface StepReport {
  id: string;
  title: string;
  status: 'done' | 'done earlier' | 'would run' | 'failed' | 'not run';
  durationMs?: number;
  summary?: string;
  details?: string[];
  output?: JsonValue;
  error?: string;
}

export interface MigrationReport {
  migration: string;
  status: 'succeeded' | 'failed' | 'dry run';
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  resumed: boolean;
  steps: StepReport[];
  /** When the switch happened (the DNS step's time), if it ran. */
  cutoverAt?: string;
  /** Writes refused on the source while replication cut over, if replication was used. */
  writeDowntimeMs?: number;
  /** Present when the run failed: the step, the cause, and how to resume. */
  failure?: { step: string; message: string; resume: string };
  /** What preflight checked (it found nothing wrong, or the run would not have gone on). */
  preflight?: { checked: string[] };
  /** A plain re-run of a finished migration: nothing was run; this is when the earlier run finished. */
  finishedEarlier?: { finishedAt: string };
}

const migrationFailedMarker = Symbol.for('armada.error.MigrationFailed');

/**
 * A failed migration: names the step, the cause (its `code` is the cause's), and the way to resume.
 * Carries the report of the run so far.
 */
export class MigrationFailedError extends ArmadaError {
  protected readonly [migrationFailedMarker] = true;
  constructor(
    readonly step: string,
    override readonly cause: ArmadaError,
    readonly report: MigrationReport,
  ) {
    super(cause.code, `Step "${step}" failed: ${cause.message}`, { cause, retryable: false, ...(cause.provider ? { provider: cause.provider } : {}) });
    this.name = 'MigrationFailedError';
  }
  static override isInstance(error: unknown): error is MigrationFailedError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[migrationFailedMarker] === true;
  }
}

const CHECKPOINT_FILE = 'checkpoint.json';
const PREVIOUS_RUNS = 'previous';

/** Moves an earlier run's files aside (`previous/<when it started>/`), so a new run starts clean and nothing is lost. */
async function keepAside(directory: string, startedAt: string): Promise<string> {
  const aside = join(directory, PREVIOUS_RUNS, startedAt.replace(/[:.]/g, '-'));
  await mkdir(aside, { recursive: true, mode: 0o700 });
  for (const entry of await readdir(directory)) {
    if (entry !== PREVIOUS_RUNS) await rename(join(directory, entry), join(aside, entry));
  }
  return aside;
}

async function readCheckpoint(path: string): Promise<Checkpoint | undefined> {
  if (!existsSync(path)) return undefined;
  const parsed = JSON.parse(await readFile(path, 'utf8')) as Checkpoint;
  if (parsed.version !== 1 || typeof parsed.steps !== 'object') throw new ValidationError(`${path} is not an Armada migration checkpoint.`);
  return parsed;
}

/** Where a migration stands, from its checkpoint alone (for `armada status` and tooling). */
export interface MigrationCheckpointStatus {
  migration: string;
  directory: string;
  startedAt: string;
  /** Steps recorded, in the order they ran. */
  steps: Array<{ id: string; status: 'done' | 'started'; finishedAt?: string; summary?: string }>;
  /** The step a run started and did not finish: where `--resume` continues. */
  stoppedAt?: string;
}

/** Reads a migration directory's checkpoint; undefined when there is none. */
export async function readMigrationCheckpoint(directory: string): Promise<MigrationCheckpointStatus | undefined> {
  const checkpoint = await readCheckpoint(join(directory, CHECKPOINT_FILE));
  if (!checkpoint) return undefined;
  const steps = Object.entries(checkpoint.steps).map(([id, record]) => ({
    id,
    status: record.status,
    ...(record.finishedAt ? { finishedAt: record.finishedAt } : {}),
    ...(record.result?.summary ? { summary: record.result.summary } : {}),
  }));
  const stoppedAt = steps.find((step) => step.status === 'started')?.id;
  return { migration: checkpoint.migration, directory, startedAt: checkpoint.startedAt, steps, ...(stoppedAt ? { stoppedAt } : {}) };
}

function checkUniqueIds(steps: readonly MigrationStep[]): void {
  const seen = new Set<string>();
  const duplicates = steps.filter((step) => seen.size === seen.add(step.id).size).map((step) => step.id);
  if (duplicates.length > 0) {
    throw new ValidationError('Migration steps must have unique ids.', {
      issues: duplicates.map((id) => ({ path: `steps.${id}`, message: 'appears more than once', fix: 'give each step its own id' })),
    });
  }
}

/** The values steps recorded under one output field, in step order (the report's headline figures). */
const outputValues = (steps: StepReport[], field: string): unknown[] =>
  steps.flatMap((step) => (step.output && typeof step.output === 'object' && !Array.isArray(step.output) && field in step.output ? [step.output[field]] : []));

/** The report of a plain re-run of a finished migration: what the earlier run did, and that nothing ran now. */
function finishedEarlierReport(name: string, checkpoint: Checkpoint, steps: readonly MigrationStep[]): MigrationReport {
  const records = steps.map((step) => checkpoint.steps[step.id] as StepRecord);
  const finishedAt = records.map((record) => record.finishedAt ?? '').sort().at(-1) || checkpoint.startedAt;
  return {
    migration: name,
    status: 'succeeded',
    startedAt: checkpoint.startedAt,
    finishedAt,
    durationMs: 0,
    resumed: false,
    steps: steps.map((step, index) => ({ id: step.id, title: step.title, status: 'done earlier', ...(records[index]?.durationMs === undefined ? {} : { durationMs: records[index]?.durationMs }), ...records[index]?.result })),
    finishedEarlier: { finishedAt },
  };
}

/** Runs (or dry-runs, or resumes) a migration and returns its report; throws MigrationFailedError on failure. */
export async function runMigration(options: RunMigrationOptions): Promise<MigrationReport> {
  const { steps, directory, name } = options;
  checkUniqueIds(steps);
  const signal = options.signal ?? new AbortController().signal;
  const emit = options.onEvent ?? (() => {});
  const checkpointPath = join(directory, CHECKPOINT_FILE);
  const started = performance.now();
  const startedAt = new Date().toISOString();

  let checkpoint = await readCheckpoint(checkpointPath);
  if (checkpoint && checkpoint.migration !== name) {
    throw new ValidationError(`${checkpointPath} belongs to migration "${checkpoint.migration}", not "${name}".`, {
      issues: [{ path: directory, message: 'another migration uses this directory', fix: 'give each migration its own directory' }],
    });
  }
  const finished = checkpoint !== undefined && steps.every((step) => checkpoint?.steps[step.id]?.status === 'done');
  if (options.startOver && options.resume) {
    throw new ValidationError('A run cannot both resume and start over.', { issues: [{ path: 'resume', message: 'resume and startOver are both set', fix: 'choose one' }] });
  }
  if (checkpoint && !options.resume && !options.startOver && !options.dryRun) {
    if (!finished) {
      const stoppedAt = steps.find((step) => checkpoint?.steps[step.id]?.status !== 'done');
      throw new ValidationError(`An earlier run of "${name}" stopped at step "${stoppedAt?.id}".`, {
        issues: [{ path: checkpointPath, message: 'unfinished run', fix: 'resume it (--resume, or resume: true), or start over from the first step (--start-over, or startOver: true)' }],
      });
    }
    // Finished: say so and do nothing. Running it again is a choice (startOver), never a default.
    return finishedEarlierReport(name, checkpoint, steps);
  }
  const resumed = Boolean(options.resume && checkpoint && !options.dryRun);
  if (options.preflight && options.preflight.length > 0) {
    const result = await runPreflight(options.preflight, { signal, resuming: resumed });
    emit({ type: 'preflight', checked: result.checked, issues: result.issues });
    if (result.issues.length > 0) throw new PreflightFailedError(result);
  }
  if (checkpoint && options.startOver && !options.dryRun) {
    await keepAside(directory, checkpoint.startedAt);
    checkpoint = undefined;
  }
  const state: Checkpoint = options.dryRun || !resumed || !checkpoint ? { version: 1, migration: name, startedAt, steps: {} } : checkpoint;
  const known = checkpoint && (options.dryRun || resumed) ? checkpoint : state;
  const save = serialJsonWriter(options.dryRun ? undefined : checkpointPath);
  if (!options.dryRun) await mkdir(directory, { recursive: true, mode: 0o700 });

  const reports: StepReport[] = steps.map((step) => ({ id: step.id, title: step.title, status: 'not run' }));
  const contextFor = (step: MigrationStep): StepContext => ({
    migration: name,
    signal,
    workDirectory: join(directory, step.id),
    resuming: known.steps[step.id]?.status === 'started',
    hasOutput: (id) => known.steps[id]?.status === 'done' || state.steps[id]?.status === 'done',
    outputOf: <T extends JsonValue>(id: string): T => {
      const record = state.steps[id]?.status === 'done' ? state.steps[id] : known.steps[id];
      if (record?.status !== 'done') throw new ValidationError(`Step "${step.id}" needs the output of step "${id}", which has not run.`, { issues: [{ path: `steps.${step.id}`, message: `needs "${id}" first`, fix: `put step "${id}" before "${step.id}"` }] });
      return (record.result?.output ?? null) as T;
    },
    progress: (message, fraction) => emit({ type: 'step-progress', step: step.id, message, ...(fraction === undefined ? {} : { fraction }) }),
  });
  const finish = (status: MigrationReport['status'], failure?: MigrationReport['failure']): MigrationReport => {
    const downtimes = outputValues(reports, 'writeDowntimeMs').filter((value): value is number => typeof value === 'number');
    const downtime = downtimes.length > 0 ? Math.max(...downtimes) : undefined;
    const cutoverAt = outputValues(reports, 'cutoverAt').find((value): value is string => typeof value === 'string');
    return {
      migration: name,
      status,
      startedAt: known.startedAt ?? startedAt,
      finishedAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - started),
      resumed,
      steps: reports,
      ...(cutoverAt ? { cutoverAt } : {}),
      ...(downtime === undefined ? {} : { writeDowntimeMs: downtime }),
      ...(failure ? { failure } : {}),
      ...(options.preflight && options.preflight.length > 0 ? { preflight: { checked: options.preflight.map((check) => check.what) } } : {}),
    };
  };

  for (const [index, step] of steps.entries()) {
    const report = reports[index] as StepReport;
    const context = contextFor(step);
    if (options.dryRun) {
      const lines = await step.describe(context);
      emit({ type: 'dry-run', step: step.id, title: step.title, lines });
      Object.assign(report, { status: 'would run', details: lines });
      continue;
    }
    const earlier = state.steps[step.id];
    if (earlier?.status === 'done') {
      emit({ type: 'step-skipped', step: step.id, title: step.title, reason: 'done in an earlier run' });
      Object.assign(report, { status: 'done earlier', durationMs: earlier.durationMs, ...earlier.result });
      continue;
    }
    emit({ type: 'step-started', step: step.id, title: step.title, index, total: steps.length });
    const stepStarted = performance.now();
    state.steps[step.id] = { status: 'started', startedAt: new Date().toISOString() };
    await save(state);
    try {
      if (signal.aborted) throw new CancelledError(`Cancelled before step "${step.id}".`);
      const result = await step.run(context);
      const durationMs = Math.round(performance.now() - stepStarted);
      state.steps[step.id] = { ...(state.steps[step.id] as StepRecord), status: 'done', finishedAt: new Date().toISOString(), durationMs, result };
      await save(state);
      Object.assign(report, { status: 'done', durationMs, ...result });
      emit({ type: 'step-succeeded', step: step.id, title: step.title, durationMs, result });
    } catch (caught) {
      const error = toArmadaError(caught);
      emit({ type: 'step-failed', step: step.id, title: step.title, error });
      Object.assign(report, { status: 'failed', durationMs: Math.round(performance.now() - stepStarted), error: error.message });
      const failure = {
        step: step.id,
        message: error.message,
        resume: `fix the cause, then run the migration again with resume (armada migrate <file> --resume); it continues at step "${step.id}" and the source keeps serving meanwhile`,
      };
      throw new MigrationFailedError(step.id, error, finish('failed', failure));
    }
  }
  return finish(options.dryRun ? 'dry run' : 'succeeded');
}
