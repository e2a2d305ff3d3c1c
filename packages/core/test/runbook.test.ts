/**
 * The runbook engine with steps written the way a user writes their own: order, checkpoint,
 * resume at the step that failed, dry run that runs nothing, outputs passed between steps, and a
 * report. The built-in steps are exercised end to end in examples/test/migration.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  copyDataStep,
  type DataMoverV1,
  knownIssuesCheck,
  loadMigrationFile,
  PreflightFailedError,
  MigrationFailedError,
  type MigrationEvent,
  type MigrationStep,
  readMigrationCheckpoint,
  renderMigrationReport,
  runMigration,
  ValidationError,
  type VerifyReport,
  verifyDataStep,
} from '../src/index.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'armada-runbook-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A step that records each run in `runs`, and fails while `failures` is above zero. */
function recordingStep(id: string, runs: string[], options: { failures?: number; output?: () => unknown } = {}): MigrationStep & { failures: number } {
  return {
    id,
    title: `Step ${id}`,
    failures: options.failures ?? 0,
    async describe() {
      return [`would do ${id}`];
    },
    async run(context) {
      runs.push(id);
      if (this.failures > 0) {
        this.failures -= 1;
        throw new Error(`${id} broke`);
      }
      context.progress(`${id} halfway`, 0.5);
      return { summary: `${id} done`, output: (options.output?.() ?? { id }) as never };
    },
  };
}

describe('runMigration', () => {
  it('runs the steps in order, records a checkpoint without secrets and returns a report', async () => {
    const runs: string[] = [];
    const events: MigrationEvent['type'][] = [];
    const steps = [recordingStep('a', runs), recordingStep('b', runs), recordingStep('c', runs)];
    const report = await runMigration({ name: 'm', steps, directory, onEvent: (event) => events.push(event.type) });
    expect(runs).toEqual(['a', 'b', 'c']);
    expect(report.status).toBe('succeeded');
    expect(report.steps.map((step) => step.status)).toEqual(['done', 'done', 'done']);
    expect(events).toEqual(['step-started', 'step-progress', 'step-succeeded', 'step-started', 'step-progress', 'step-succeeded', 'step-started', 'step-progress', 'step-succeeded']);
    const checkpoint = JSON.parse(readFileSync(join(directory, 'checkpoint.json'), 'utf8'));
    expect(Object.keys(checkpoint.steps)).toEqual(['a', 'b', 'c']);
    expect(renderMigrationReport(report)).toContain('Step b');
  });

  it('stops at a failing step with the way to resume, refuses a plain re-run, and resumes there', async () => {
    const runs: string[] = [];
    const steps = [recordingStep('provision', runs), recordingStep('copy', runs, { failures: 1 }), recordingStep('dns', runs)];
    const failure = await runMigration({ name: 'm', steps, directory }).catch((error: unknown) => error);
    expect(MigrationFailedError.isInstance(failure)).toBe(true);
    const failed = failure as MigrationFailedError;
    expect(failed.step).toBe('copy');
    expect(failed.message).toBe('Step "copy" failed: copy broke');
    expect(failed.report.failure?.resume).toContain('--resume');
    expect(failed.report.steps.map((step) => step.status)).toEqual(['done', 'failed', 'not run']);
    expect(runs).toEqual(['provision', 'copy']);

    expect(await readMigrationCheckpoint(directory)).toMatchObject({ migration: 'm', stoppedAt: 'copy', steps: [{ id: 'provision', status: 'done', summary: 'provision done' }, { id: 'copy', status: 'started' }] });
    await expect(runMigration({ name: 'm', steps, directory })).rejects.toThrow('stopped at step "copy"');
    const resumed = await runMigration({ name: 'm', steps, directory, resume: true });
    expect(runs).toEqual(['provision', 'copy', 'copy', 'dns']);
    expect(resumed.resumed).toBe(true);
    expect(resumed.steps.map((step) => step.status)).toEqual(['done earlier', 'done', 'done']);

    // Finished: resuming again finds the work done; a plain re-run says it finished and runs nothing.
    const again = await runMigration({ name: 'm', steps, directory, resume: true });
    expect(again.steps.map((step) => step.status)).toEqual(['done earlier', 'done earlier', 'done earlier']);
    const plain = await runMigration({ name: 'm', steps, directory });
    expect(plain.finishedEarlier?.finishedAt).toBe(plain.finishedAt);
    expect(plain.steps.map((step) => [step.id, step.status, step.summary])).toEqual([
      ['provision', 'done earlier', 'provision done'],
      ['copy', 'done earlier', 'copy done'],
      ['dns', 'done earlier', 'dns done'],
    ]);
    expect(runs).toHaveLength(4);
    // Starting over runs every step again; the earlier run's checkpoint is kept aside, not deleted.
    const before = await readFile(join(directory, 'checkpoint.json'), 'utf8');
    const over = await runMigration({ name: 'm', steps, directory, startOver: true });
    expect(over.steps.map((step) => step.status)).toEqual(['done', 'done', 'done']);
    expect(runs.slice(4)).toEqual(['provision', 'copy', 'dns']);
    const [kept] = await readdir(join(directory, 'previous'));
    expect(await readFile(join(directory, 'previous', kept as string, 'checkpoint.json'), 'utf8')).toBe(before);
    await expect(runMigration({ name: 'm', steps, directory, startOver: true, resume: true })).rejects.toThrow('cannot both resume and start over');
  });

  it('loads a migration file: a typo suggests the migration file\'s own fields, a wrong type says what it got', async () => {
    const path = join(directory, 'typo.yaml');
    await writeFile(path, 'name: m\nsource: { environment: a, provider: { id: aws, region: us-east-1 } }\ntaget: { spec: x.yaml, provider: { id: aws, region: us-east-1 } }\ndecommissionSource: 1\n');
    const error = (await loadMigrationFile(path).catch((caught: unknown) => caught)) as ValidationError;
    expect(error.issues).toContainEqual({ path: 'taget', message: 'is not a known field', fix: 'did you mean "target"?' });
    expect(error.issues).toContainEqual({ path: 'target', message: 'is required (a mapping)', fix: 'add the field "target"' });
    expect(error.issues).toContainEqual({ path: 'decommissionSource', message: 'expected true or false, got 1' });
  });

  it('runs preflight first, in the dry run and the real run: a problem stops it before the checkpoint is made, with every problem listed', async () => {
    const runs: string[] = [];
    const run = join(directory, 'run');
    const steps = [recordingStep('provision', runs)];
    const checked: string[] = [];
    const preflight = [
      knownIssuesCheck('the file', [{ path: 'data[0].target.instance', message: 'no instance data-9', fix: 'name data-1' }]),
      { what: 'the database', path: 'data[0]', check: async () => { checked.push('db'); throw new ValidationError('refused', { issues: [{ path: 'source', message: 'access denied' }] }); } },
      { what: 'the zone', path: 'dns.zone', check: async () => { checked.push('zone'); throw new Error('boom'); } },
    ];
    for (const dryRun of [true, false]) {
      const failure = await runMigration({ name: 'p', steps, directory: run, preflight, dryRun }).catch((error: unknown) => error);
      expect(PreflightFailedError.isInstance(failure)).toBe(true);
      expect((failure as PreflightFailedError).issues.map((issue) => `${issue.path}: ${issue.message}`)).toEqual([
        'data[0].target.instance: no instance data-9',
        'data[0].source: access denied',
        'dns.zone: the zone: boom',
      ]);
      expect((failure as PreflightFailedError).checked).toEqual(['the file', 'the database', 'the zone']);
    }
    expect(checked).toEqual(['db', 'zone', 'db', 'zone']);
    expect(runs).toEqual([]);
    expect(existsSync(run)).toBe(false);
    const fine = await runMigration({ name: 'p', steps, directory: run, preflight: [knownIssuesCheck('the file', [])] });
    expect(fine.preflight?.checked).toEqual(['the file']);
    // The report says what preflight checked.
    expect(renderMigrationReport(fine)).toMatch(/^ {2}checked {6}Preflight: nothing wrong in 1 checks\n {17}the file$/m);
    expect(runs).toEqual(['provision']);
  });

  it('passes outputs between steps, also across a resume', async () => {
    const runs: string[] = [];
    const seen: unknown[] = [];
    const consumer: MigrationStep & { failures: number } = {
      id: 'use',
      title: 'Use the address',
      failures: 1,
      async describe(context) {
        return [context.hasOutput('make') ? `would use ${JSON.stringify(context.outputOf('make'))}` : 'would use the new address'];
      },
      async run(context) {
        seen.push(context.outputOf('make'));
        if (this.failures-- > 0) throw new Error('not yet');
        return { summary: 'used' };
      },
    };
    const steps = [recordingStep('make', runs, { output: () => ({ address: '10.0.0.5' }) }), consumer];
    await expect(runMigration({ name: 'm', steps, directory })).rejects.toThrow('not yet');
    await runMigration({ name: 'm', steps, directory, resume: true });
    expect(seen).toEqual([{ address: '10.0.0.5' }, { address: '10.0.0.5' }]);
    expect(runs).toEqual(['make']);
  });

  it('dry run: describes every step, runs none, writes nothing', async () => {
    const runs: string[] = [];
    const dry = join(directory, 'never-made');
    const report = await runMigration({ name: 'm', steps: [recordingStep('a', runs), recordingStep('b', runs)], directory: dry, dryRun: true });
    expect(runs).toEqual([]);
    expect(existsSync(dry)).toBe(false);
    expect(report.status).toBe('dry run');
    expect(report.steps.map((step) => step.details)).toEqual([['would do a'], ['would do b']]);
  });

  it('a step that needs an earlier step that is not there says which and how to fix it', async () => {
    const step: MigrationStep = {
      id: 'switch',
      title: 'Switch',
      describe: async () => [],
      run: async (context) => ({ summary: String(context.outputOf('provision')) }),
    };
    const failure = (await runMigration({ name: 'm', steps: [step], directory }).catch((error: unknown) => error)) as MigrationFailedError;
    expect(ValidationError.isInstance(failure.cause)).toBe(true);
    expect(failure.message).toContain('needs the output of step "provision"');
  });

  it('refuses duplicate step ids and a directory that belongs to another migration', async () => {
    const runs: string[] = [];
    await expect(runMigration({ name: 'm', steps: [recordingStep('a', runs), recordingStep('a', runs)], directory })).rejects.toThrow('unique ids');
    await runMigration({ name: 'm', steps: [recordingStep('a', runs)], directory });
    await expect(runMigration({ name: 'other', steps: [recordingStep('a', runs)], directory, resume: true })).rejects.toThrow('belongs to migration "m"');
  });

  it('cancellation stops before the next step, and the run resumes there', async () => {
    const runs: string[] = [];
    const controller = new AbortController();
    const cancelling: MigrationStep = { ...recordingStep('first', runs), run: async () => {
        controller.abort();
        return { summary: 'first done' };
      },
    };
    const steps = [cancelling, recordingStep('second', runs)];
    await expect(runMigration({ name: 'm', steps, directory, signal: controller.signal })).rejects.toThrow('Cancelled before step "second"');
    const resumed = await runMigration({ name: 'm', steps, directory, resume: true });
    expect(resumed.steps.map((step) => step.status)).toEqual(['done earlier', 'done']);
  });
});

describe('data steps in the report', () => {
  /** A mover standing in for a real one: the runbook only passes its reports on. */
  const moverReporting = (verify: VerifyReport): DataMoverV1 => ({
    specificationVersion: 'v1',
    id: 'fake',
    async copy() {
      return { items: 3, bytes: 30, durationMs: 1, resumed: false, warnings: ['view shop.v: DEFINER `ghost`@`%` is not on the target'] };
    },
    async verify() {
      return verify;
    },
  });
  const store = (mover: DataMoverV1) => ({ name: 'shop-db', mover, source: { host: '127.0.0.1', port: 1 }, target: { host: '127.0.0.1', port: 2 } });

  it("shows the copy's warnings and verify's notes", async () => {
    const stores = [store(moverReporting({ ok: true, compared: 12, notes: ['view shop.v: definer `ghost`@`%` is not on the target'] }))];
    const report = await runMigration({ name: 'm', steps: [copyDataStep({ stores }), verifyDataStep({ stores })], directory });
    const text = renderMigrationReport(report);
    expect(text).toContain('shop-db: warning: view shop.v: DEFINER `ghost`@`%` is not on the target');
    expect(text).toContain('shop-db: note: view shop.v: definer `ghost`@`%` is not on the target');
  });

  it('a verify that finds differences stops the run and lists each one by object', async () => {
    const differences = Array.from({ length: 25 }, (_, index) => ({ object: `shop.t${index}`, kind: 'missing' as const, detail: 'table not on the target' }));
    const stores = [store(moverReporting({ ok: false, compared: 30, firstDifference: 'shop.t0: table not on the target', differences }))];
    const failure = await runMigration({ name: 'm', steps: [verifyDataStep({ stores })], directory }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MigrationFailedError);
    const message = String((failure as MigrationFailedError).cause);
    expect(message).toContain('missing: shop.t0: table not on the target');
    expect(message).toContain('missing: shop.t19: table not on the target');
    expect(message).not.toContain('shop.t20:');
    expect(message).toContain('... and 5 more');
  });
});
