/**
 * A user's mistakes: exit code 2, one clear line and the detail, never a stack trace; --json still
 * gives one JSON document.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_LINE, armada, storySpec, tempDir, type TempDir } from './helpers.js';

const badSpec = fileURLToPath(new URL('../../../examples/environments/bad.yaml', import.meta.url));
const storyYaml = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

describe('errors', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it('a bad spec: exit 2, every policy violation listed with its fix, no stack', async () => {
    const run = await armada(['plan', badSpec]);
    expect(run.code).toBe(2);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^error: .*bad\.yaml: 6 problem\(s\) to fix before planning:$/);
    for (const rule of ['no-any-any', 'no-database-open-to-internet', 'subnets-fit-network', 'required-tags', 'references-resolve', 'valid-cidrs']) {
      expect(run.stderr).toContain(`[${rule}]`);
    }
    expect(run.stderr).toContain('fix: allow it only from the tier that needs it');
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.stdout).toBe('');
  });

  it('a bad spec with --json: the violations in one JSON document', async () => {
    const run = await armada(['apply', badSpec, '--json', '--yes']);
    expect(run.code).toBe(2);
    const document = run.json<{ ok: boolean; exitCode: number; error: { code: string; violations: Array<{ rule: string; path: string; fix?: string }> } }>();
    expect(document).toMatchObject({ ok: false, command: 'apply', exitCode: 2, error: { code: 'InvalidSpec' } });
    expect(document.error.violations).toHaveLength(6);
    expect(document.error.violations).toContainEqual(expect.objectContaining({ rule: 'no-any-any', path: 'firewalls[0].ingress[0]' }));
  });

  it('a single policy violation blocks apply before any cloud is called', async () => {
    const spec = storySpec({ id: 'in-memory', region: 'local-1' });
    spec.firewalls?.push({ name: 'Cache', description: 'Redis', ingress: [{ protocol: 'tcp', ports: 6379, from: '0.0.0.0/0' }] });
    const file = await dir.file('open-redis.json', spec);
    const run = await armada(['apply', file, '--yes']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: .*open-redis\.json: 1 problem\(s\) to fix before planning:$/m);
    expect(run.stderr).toContain('opens Redis 6379 to the internet');
    expect(run.stderr).not.toContain('Planning');
  });

  it('a typo in a field: the fix says what was meant', async () => {
    const { instances, ...rest } = storySpec({ id: 'in-memory', region: 'local-1' });
    const run = await armada(['plan', await dir.file('typo.json', { ...rest, instance: instances })]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('instance: is not a known field');
    expect(run.stderr).toContain('fix: did you mean "instances"?');
  });

  it('YAML that does not parse, and a missing file: exit 2, one line', async () => {
    const broken = await armada(['plan', await dir.file('broken.yaml', 'name: [unclosed\n')]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^error: .*broken\.yaml is not valid YAML/);
    expect(broken.stderr).not.toMatch(STACK_LINE);
    const missing = await armada(['status', 'nowhere.yaml'], { cwd: dir.path });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('error: cannot read the spec nowhere.yaml: no such file\n');
  });

  it('usage errors: unknown command or option, missing argument: exit 2', async () => {
    const unknown = await armada(['pln', badSpec]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'pln'");
    expect(unknown.stderr).toContain('(Did you mean plan?)');
    const option = await armada(['plan', badSpec, '--frobnicate', '--json']);
    expect(option.code).toBe(2);
    expect(option.json()).toMatchObject({ ok: false, exitCode: 2, error: { code: 'Usage' } });
    expect((await armada(['apply'])).code).toBe(2);
    expect((await armada([])).code).toBe(2);
  });

  it('help and version exit 0; help lists the exit codes', async () => {
    const help = await armada(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    expect((await armada(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const planHelp = await armada(['plan', '--help']);
    expect(planHelp.stdout).toContain('--detailed-exitcode');
    expect(planHelp.stdout).toContain('--plugin <module>');
  });

  it('a corrupt state file is a usage error naming it', async () => {
    const state = await dir.file('corrupt.json', '{"version": 7}');
    const run = await armada(['status', '--state', state]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: cannot use the state file .*corrupt\.json: .*version 7/);
  });
});

describe('output', () => {
  it('colour on a terminal only, and not with NO_COLOR', async () => {
    const tty = await armada(['plan', storyYaml], { tty: true });
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stdout).toContain('\x1b[32m    + network.Armada');
    const noColor = await armada(['plan', storyYaml], { tty: true, env: { NO_COLOR: '1' } });
    expect(noColor.stdout).not.toContain('\x1b[');
    const flag = await armada(['plan', storyYaml, '--no-color'], { tty: true });
    expect(flag.stdout).not.toContain('\x1b[');
    const piped = await armada(['plan', storyYaml]);
    expect(piped.stdout + piped.stderr).not.toContain('\x1b[');
  });

  it('progress on a terminal is one updating line', async () => {
    const dir = await tempDir();
    try {
      const run = await armada(['apply', storyYaml, '--yes', '--state', `${dir.path}/state.json`], { tty: true });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain('\r\x1b[2K[ 1/10]');
      expect(run.stderr).not.toMatch(/created network\.Armada in/);
    } finally {
      await dir.remove();
    }
  });

  it('interrupted before anything starts: exit 130, nothing done', async () => {
    const controller = new AbortController();
    controller.abort();
    const run = await armada(['apply', storyYaml, '--yes', '--state', '/dev/null/never'], { signal: controller.signal });
    expect(run.code).toBe(130);
    expect(run.stderr).not.toMatch(STACK_LINE);
  });
});
