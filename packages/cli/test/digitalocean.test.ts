/**
 * The whole lifecycle through the command, on the DigitalOcean API emulator through the real
 * provider plugin: plan, apply, status, plan again (no changes), destroy.
 */
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_LINE, armada, storySpec, tempDir, type TempDir } from './helpers.js';

interface PlanDocument {
  ok: boolean;
  command: string;
  exitCode: number;
  changes: boolean;
  plan: { environment: string; provider: { id: string; region: string }; summary: Record<string, number>; notes: Array<{ path: string; message: string }> };
  policies: { ok: boolean; violations: unknown[] };
  execution?: { status: string; done: unknown[]; resources: Array<{ address: string; kind: string; id: string }> };
}

describe('armada on the DigitalOcean emulator', () => {
  let emulator: DigitalOceanEmulator;
  let dir: TempDir;
  let spec: string;
  let state: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    emulator = await startDigitalOceanEmulator({ bootMs: 60 });
    dir = await tempDir();
    spec = await dir.file('armada.json', storySpec({ id: 'digitalocean', region: 'nyc3', digitalocean: { pollIntervalMs: 20 } }));
    state = join(dir.path, 'state', 'armada.json');
    // The endpoint as DIGITALOCEAN_API_URL is usually written: the base, without /v2.
    env = { DIGITALOCEAN_TOKEN: 'cli-test', DIGITALOCEAN_API_URL: emulator.endpoint };
  });
  afterAll(async () => {
    await emulator?.close();
    await dir?.remove();
  });

  it('plan --json: one JSON document on stdout, the human lines on stderr', async () => {
    const run = await armada(['plan', spec, '--json', '--state', state], { env });
    expect(run.code, run.stderr).toBe(0);
    const document = run.json<PlanDocument>();
    expect(document).toMatchObject({ ok: true, command: 'plan', exitCode: 0, changes: true, policies: { ok: true } });
    expect(document.plan.provider).toEqual({ id: 'digitalocean', region: 'nyc3' });
    // network, key pair, 2 firewalls, 3 droplets, and the guard firewall of the private subnet.
    expect(document.plan.summary.create).toBeGreaterThanOrEqual(7);
    // DigitalOcean has no subnets: the plan says how they are honoured.
    expect(document.plan.notes.some((note) => note.path.startsWith('subnet.'))).toBe(true);
    expect(run.stderr).toContain('Plan for environment "armada" on digitalocean (nyc3)');
    expect(emulator.inventory().droplets).toBe(0);
  });

  it('plan --detailed-exitcode exits 3 while there are changes', async () => {
    const run = await armada(['plan', spec, '--detailed-exitcode', '--state', state], { env });
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/Plan: \d+ to create/);
  });

  it('apply without --yes off a terminal asks for it and changes nothing', async () => {
    const run = await armada(['apply', spec, '--state', state], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('error: apply needs approval: pass --yes');
    expect(emulator.inventory().droplets).toBe(0);
  });

  it('apply --yes makes it, with one progress line per step, and writes the state file', async () => {
    const run = await armada(['apply', spec, '--yes', '--state', state], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/\[\s*1\/\d+\] created network\.Armada/);
    expect(run.stderr).toMatch(/created instance\.web-2/);
    expect(run.stdout).toContain('Succeeded:');
    expect(run.stdout).toMatch(/instance\.web-1 .* private 10\.0\.\d+\.\d+ {2}public \d+\.\d+\.\d+\.\d+/);
    expect(emulator.inventory().droplets).toBe(3);
    const written = JSON.parse(await readFile(state, 'utf8')) as { environment: string; resources: unknown[] };
    expect(written.environment).toBe('armada');
    expect(written.resources.length).toBeGreaterThanOrEqual(6);
  });

  it('status reads the state file', async () => {
    const human = await armada(['status', spec, '--state', state], { env });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('"armada" on digitalocean (nyc3)');
    expect(human.stdout).toMatch(/3 instances/);
    const run = await armada(['status', spec, '--state', state, '--json'], { env });
    const document = run.json<{ environments: Array<{ exists: boolean; environment: string; resources: Array<{ kind: string }> }> }>();
    expect(document.environments).toHaveLength(1);
    expect(document.environments[0]).toMatchObject({ exists: true, environment: 'armada' });
    expect(document.environments[0]?.resources.filter((resource) => resource.kind === 'instance')).toHaveLength(3);
  });

  it('plan again: no changes, exit 0 with --detailed-exitcode; apply needs no approval for nothing', async () => {
    const run = await armada(['plan', spec, '--detailed-exitcode', '--state', state], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('No changes.');
    const apply = await armada(['apply', spec, '--state', state, '--json'], { env });
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.json<PlanDocument>()).toMatchObject({ changes: false, execution: { status: 'succeeded', done: [] } });
  });

  it('destroy asks, then --yes deletes everything and status says so', async () => {
    const refused = await armada(['destroy', spec, '--state', state], { env });
    expect(refused.code).toBe(2);
    expect(emulator.inventory().droplets).toBe(3);
    const run = await armada(['destroy', spec, '--yes', '--state', state, '--json'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json<PlanDocument>().execution?.status).toBe('succeeded');
    expect(run.stderr).toMatch(/deleted instance\.web-1/);
    expect(emulator.inventory()).toMatchObject({ droplets: 0, vpcs: 0, firewalls: 0, sshKeys: 0 });
    const status = await armada(['status', spec, '--state', state], { env });
    expect(status.stdout).toMatch(/resources {3}none/);
    const again = await armada(['destroy', spec, '--state', state], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Nothing to destroy');
  });

  it('a missing token is one clear error with exit 2, before anything is created', async () => {
    const run = await armada(['apply', spec, '--yes', '--state', join(dir.path, 'other.json')], { env: { DIGITALOCEAN_API_URL: emulator.endpoint } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: No DigitalOcean API token\.$/m);
    expect(run.stderr).toContain('DIGITALOCEAN_TOKEN');
    expect(run.stderr).not.toMatch(STACK_LINE);
  });
});
