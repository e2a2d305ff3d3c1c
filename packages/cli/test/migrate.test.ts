/**
 * `armada migrate` in-process on the in-memory provider (the data, DNS and child-process cases run
 * against the emulators and real servers in examples/test/cli-*.test.ts): a file's problems all at
 * once, a missing password variable named before anything runs, a dry run, a run, and `status`
 * showing where migrations stand.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STACK_LINE, armada, storySpec, tempDir, type TempDir } from './helpers.js';

let dir: TempDir;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.remove();
});

async function migrationFile(extra: Record<string, unknown> = {}): Promise<string> {
  await dir.file('armada.json', storySpec({ id: 'in-memory', region: 'local-1' }));
  // In a subdirectory: its paths are read from there, its checkpoint goes under the working directory.
  await mkdir(join(dir.path, 'migrations'));
  return dir.file('migrations/migration.json', {
    name: 'to-memory',
    source: { environment: 'armada', provider: { id: 'in-memory', region: 'local-1' } },
    target: { spec: '../armada.json', provider: { id: 'in-memory', region: 'local-1' } },
    ...extra,
  });
}

describe('armada migrate', () => {
  it('lists every problem of a migration file at once, with exit code 2 and no stack', async () => {
    const file = await dir.file('bad.yaml', 'name: "not ok!"\nsource: { provider: { id: aws } }\ndns: { provider: elsewhere }\n');
    const run = await armada(['migrate', file], { cwd: dir.path });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/The migration file .*bad\.yaml has \d+ problem\(s\)/);
    expect(run.stderr).toContain('source.environment');
    expect(run.stderr).toContain('target');
    expect(run.stderr).toContain('dns.provider');
    expect(run.stderr).not.toMatch(STACK_LINE);
  });

  it('names a password variable that is not set, before anything runs', async () => {
    const file = await migrationFile({ data: [{ name: 'db', mover: 'mysql', source: { host: '127.0.0.1', port: 3306, user: 'root', passwordEnv: 'OLD_DB_PASSWORD' }, target: { host: '127.0.0.1', port: 3307 } }] });
    const run = await armada(['migrate', file], { cwd: dir.path });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('data[0].source.passwordEnv: OLD_DB_PASSWORD is not set (fix: export OLD_DB_PASSWORD=...)');
    expect(run.stderr).toMatch(/Preflight: \d+ problem\(s\)/);
    expect(existsSync(join(dir.path, '.armada', 'migrations'))).toBe(false);
  });

  it('names the field of a missing spec or policies file, an unknown mover with those registered, and a typo of the file\'s own fields', async () => {
    const missing = await migrationFile({
      target: { spec: '../nowhere.yaml', provider: { id: 'in-memory', region: 'local-1' } },
      servers: { policies: '../no-policies.yaml', ssh: { user: 'admin' } },
      data: [{ name: 'db', mover: 'mysqll', source: { host: '127.0.0.1', port: 3306 }, target: { host: '127.0.0.1', port: 3307 } }],
    });
    const run = await armada(['migrate', missing, '--dry-run'], { cwd: dir.path });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/target\.spec: \S+nowhere\.yaml does not exist \(fix: correct the path/);
    expect(run.stderr).toMatch(/servers\.policies: \S+no-policies\.yaml does not exist/);
    expect(run.stderr).toMatch(/data\[0\]\.mover: no data mover "mysqll" is registered \(fix: use one of: mysql, redis/);
    expect(run.stderr).not.toMatch(/ENOENT|looks like a bug/);
    expect(run.stderr).not.toMatch(STACK_LINE);
    const typo = await dir.file('typo.yaml', 'name: t\nsource: { environment: armada, provider: { id: in-memory, region: local-1 } }\ntaget: { spec: armada.json, provider: { id: in-memory, region: local-1 } }\n');
    const typed = await armada(['migrate', typo], { cwd: dir.path });
    expect(typed.code).toBe(2);
    expect(typed.stderr).toContain('taget: is not a known field (fix: did you mean "target"?)');
  });

  it('resumes a run killed before its first checkpoint (its directory made, nothing recorded) as well as a later one', async () => {
    const file = await migrationFile();
    // What a run killed during preflight or before its first step leaves: the directory alone.
    await mkdir(join(dir.path, '.armada', 'migrations', 'to-memory'), { recursive: true });
    const resumed = await armada(['migrate', file, '--resume', '--json'], { cwd: dir.path });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json<{ report: { status: string; steps: Array<{ status: string }> } }>().report.steps.map((step) => step.status)).toEqual(['done', 'done']);
    // And a plain re-run then says it finished, with --start-over the way to run it again.
    const again = await armada(['migrate', file], { cwd: dir.path });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Migration to-memory finished at .* \(succeeded\); nothing was run now\./);
    const conflicting = await armada(['migrate', file, '--resume', '--start-over'], { cwd: dir.path });
    expect(conflicting.code).toBe(2);
    expect(conflicting.stderr).toContain('--resume and --start-over cannot be used together');
  });

  it('dry-runs, runs, and status shows the migration done; --json carries the report', async () => {
    const file = await migrationFile();
    const dry = await armada(['migrate', file, '--dry-run'], { cwd: dir.path });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('Provision armada on in-memory (local-1)');
    expect(dry.stderr).toContain('Dry run: nothing was changed.');

    const run = await armada(['migrate', file, '--json'], { cwd: dir.path });
    expect(run.code, run.stderr).toBe(0);
    const { report } = run.json<{ report: { status: string; steps: Array<{ id: string; status: string }> } }>();
    expect(report.status).toBe('succeeded');
    expect(report.steps.map((step) => `${step.id} ${step.status}`)).toEqual(['check-policies done', 'provision-target done']);

    const status = await armada(['status', '--json'], { cwd: dir.path });
    const { migrations } = status.json<{ migrations: Array<{ migration: string; stoppedAt?: string; steps: Array<{ id: string; status: string }> }> }>();
    expect(migrations).toHaveLength(1);
    expect(migrations[0]?.migration).toBe('to-memory');
    expect(migrations[0]?.stoppedAt).toBeUndefined();
    const text = await armada(['status'], { cwd: dir.path });
    expect(text.stdout).toContain('migration "to-memory"');
    expect(text.stdout).toContain('every recorded step done');
  });
});
