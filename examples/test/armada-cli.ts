/** Runs the `armada` command from source as a child process, the way a user's shell would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(REPOSITORY_ROOT, 'packages/cli/src/bin.ts');

export interface ArmadaRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function armada(args: string[], env: NodeJS.ProcessEnv): ChildProcess & { done: Promise<ArmadaRun> } {
  // Node itself with tsx as a loader (not the tsx launcher, which runs node as its own child):
  // a SIGKILL then reaches the process doing the work.
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', bin, ...args], {
    cwd: REPOSITORY_ROOT,
    env: { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const done = new Promise<ArmadaRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return Object.assign(child, { done });
}
