/**
 * The few system commands the real-host lab runs (ip, nft, debootstrap, chroot), with their
 * standard error in the thrown message: a failed `ip` call says which device and why.
 */
import { execFile } from 'node:child_process';

export class CommandFailedError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim().split('\n').slice(-3).join(' / ') || 'no message'}`);
    this.name = 'CommandFailedError';
  }
}

export interface RunOptions {
  /** Written to the command's standard input (nft -f -, ip -batch -). */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 120_000, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === 'number' ? error.code : null;
          reject(new CommandFailedError([command, ...args].join(' ').slice(0, 200), code, stderr || error.message));
        } else resolve(stdout);
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** `ip` inside a network namespace (`ip -n <ns> ...`); no namespace: the machine's own. */
export function ip(namespace: string | undefined, ...args: string[]): Promise<string> {
  return run('ip', namespace === undefined ? args : ['-n', namespace, ...args]);
}

/** Many `ip` commands in one process (`ip -batch -`), each line one command. */
export async function ipBatch(namespace: string | undefined, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await run('ip', [...(namespace === undefined ? [] : ['-n', namespace]), '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** A command run with a network namespace's view (`ip netns exec <ns> ...`). */
export function inNamespace(namespace: string, command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return run('ip', ['netns', 'exec', namespace, command, ...args], options);
}
