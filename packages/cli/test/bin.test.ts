/**
 * The real command in a child process, from source (tsx with the `source` condition, as the root
 * script runs it): exit codes reach the shell, and a user's mistake prints no stack trace.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { STACK_LINE } from './helpers.js';

const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const examples = fileURLToPath(new URL('../../../examples/environments/', import.meta.url));

function armadaProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      tsx,
      ['--conditions=source', bin, ...args],
      { cwd: examples, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('the armada process', { timeout: 60_000 }, () => {
  it('a bad spec: exit code 2, the problems, no stack trace', async () => {
    const run = await armadaProcess(['plan', 'bad.yaml']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: bad\.yaml: 6 problem\(s\) to fix before planning:\n/);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.stdout).toBe('');
  });

  it('plan --json --detailed-exitcode on the in-memory example: exit 3 and JSON on stdout', async () => {
    const run = await armadaProcess(['plan', 'armada.yaml', '--json', '--detailed-exitcode', '--state', '/nonexistent/armada-state.json']);
    expect(run.code, run.stderr).toBe(3);
    const document = JSON.parse(run.stdout) as { ok: boolean; changes: boolean; plan: { summary: { create: number } } };
    expect(document).toMatchObject({ ok: true, changes: true, plan: { summary: { create: 10 } } });
  });
});
