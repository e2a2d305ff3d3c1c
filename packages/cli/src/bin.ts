/**
 * The process side of `armada`: real streams and environment, Ctrl-C as cancellation (a second
 * Ctrl-C leaves at once), the exit code. Importing this module runs the command: it is the entry of
 * bin/armada.js (built) and of `tsx --conditions=source src/bin.ts` (from source).
 */
import { runCli } from './cli.js';
import { ExitCode } from './exit-codes.js';

async function main(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(ExitCode.Interrupted);
    process.stderr.write('\nInterrupted: finishing the steps already running (Ctrl-C again to leave now)...\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const code = await runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  process.off('SIGINT', onSigint);
  process.exitCode = code;
}

await main(process.argv.slice(2));
