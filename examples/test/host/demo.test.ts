/**
 * `pnpm demo`, the README's main job, run as a user runs it, twice: each run starts clean and
 * exits 0, and the output shows the story end to end. In the "on this host" project because it
 * applies server policies with Puppet (in a scratch directory).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function demo(): { status: number | null; output: string; seconds: number } {
  const started = performance.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=source', join(root, 'examples/demo.ts')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    timeout: 300_000,
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}`, seconds: (performance.now() - started) / 1000 };
}

describe('pnpm demo', () => {
  it('runs the story end to end, twice, each run clean', { timeout: 660_000 }, () => {
    for (const attempt of [1, 2]) {
      const run = demo();
      expect(run.status, `run ${attempt}:\n${run.output}`).toBe(0);
      expect(run.output).toContain('Dry run: what the migration would do (nothing is changed)');
      expect(run.output).toMatch(/\[1\/8\] Check 10 policies on armada/);
      expect(run.output).toMatch(/Configure the servers with puppet\n\s+.*\n[\s\S]*?done in [\d.]+ s: 4 servers configured/);
      expect(run.output).toMatch(/2 stores copied: 18,001 items/);
      expect(run.output).toContain('2 stores identical');
      expect(run.output).toMatch(/Migration story-digitalocean-to-aws: succeeded/);
      expect(run.output).toMatch(/www\.armada\.example now answers 203\.0\.113\.\d+, 203\.0\.113\.\d+ \(TTL 60 s\): the AWS web servers\./);
      expect(run.output).not.toMatch(/\n\s+at /);
      console.log(`demo run ${attempt}: ${run.seconds.toFixed(1)} s`);
    }
  });
});
