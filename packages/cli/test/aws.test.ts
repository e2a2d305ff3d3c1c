/**
 * The lifecycle on the EC2 / Route 53 emulator through the real AWS SDK clients, configured the
 * way the AWS CLI is: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
 */
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_LINE, armada, storySpec, tempDir, type TempDir } from './helpers.js';

describe('armada on the AWS emulator', () => {
  let emulator: AwsEmulator;
  let dir: TempDir;
  let spec: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    emulator = await startAwsEmulator({ bootMs: 60, terminateMs: 30, accessKeyIds: ['AKIDCLITEST'] });
    dir = await tempDir();
    spec = await dir.file('armada.json', storySpec({ id: 'aws', region: 'us-east-1', aws: { pollIntervalMs: 20 } }));
    env = { AWS_ENDPOINT_URL: emulator.endpoint, AWS_ACCESS_KEY_ID: 'AKIDCLITEST', AWS_SECRET_ACCESS_KEY: 'secret' };
  });
  afterAll(async () => {
    await emulator?.close();
    await dir?.remove();
  });

  it('plans, applies, re-plans empty and destroys; the state file defaults to .armada/<name>.json', async () => {
    const io = { env, cwd: dir.path };
    const planned = await armada(['plan', 'armada.json', '--json', '--detailed-exitcode'], io);
    expect(planned.code, planned.stderr).toBe(3);
    expect(planned.json()).toMatchObject({ ok: true, changes: true, exitCode: 3 });

    const applied = await armada(['apply', 'armada.json', '--auto-approve'], io);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stderr).toMatch(/created instance\.data/);
    expect(applied.stderr).toContain('State written to .armada/armada.json.');
    expect(emulator.inventory('us-east-1')).toMatchObject({ instances: 3 });

    const status = await armada(['status'], io);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('"armada" on aws (us-east-1)');
    expect(status.stdout).toContain('.armada/armada.json');

    const again = await armada(['plan', 'armada.json', '--detailed-exitcode'], io);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('No changes.');

    const destroyed = await armada(['destroy', 'armada.json', '-y'], io);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(emulator.inventory('us-east-1')).toMatchObject({ instances: 0 });
  });

  it('rejected credentials: exit 2, one line and the fix, no stack, nothing created', async () => {
    const vpcsMade = emulator.calls('CreateVpc');
    const run = await armada(['apply', spec, '--yes', '--state', join(dir.path, 'bad.json')], { env: { ...env, AWS_ACCESS_KEY_ID: 'AKIDWRONG' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: AWS refused the credentials/m);
    expect(run.stderr).toContain('fix: check AWS_ACCESS_KEY_ID');
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(emulator.calls('CreateVpc')).toBe(vpcsMade);
  });
});
