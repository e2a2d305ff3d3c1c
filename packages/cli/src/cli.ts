/**
 * `runCli(argv, io)`: the whole `armada` command as a function returning its exit code, so tests
 * (and other tools) run it in-process. The bin only wires it to the process.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { commands } from './commands/index.js';
import { ExitCode } from './exit-codes.js';
import type { CliIO } from './io.js';
import { CliRuntime } from './session.js';

function version(): string {
  try {
    // src/ and dist/ both sit next to package.json.
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export const EXIT_CODES_HELP = `
Exit codes:
  0    success (plan: with or without changes, unless --detailed-exitcode)
  1    failed while running: a step of apply/destroy, the cloud's API, an unexpected error
  2    usage or validation error, nothing changed: arguments, spec, policy violations, provider, credentials
  3    plan --detailed-exitcode: the plan has changes
  4    apply/destroy not approved at the prompt; nothing changed
  130  interrupted (Ctrl-C): running steps finished, state file written

Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ENDPOINT_URL;
DIGITALOCEAN_TOKEN, DIGITALOCEAN_API_URL; NO_COLOR.`;

/** The commander program, with every command of commands/index.ts registered on `runtime`. */
export function createProgram(runtime: CliRuntime): Command {
  const { io } = runtime;
  const program = new Command('armada')
    .description('Plan, apply and destroy Armada environments on any cloud with a provider plugin.')
    .version(version(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .addHelpText('after', EXIT_CODES_HELP);
  for (const register of commands) register(program, runtime);
  return program;
}

/**
 * Runs `armada` with `argv` (the arguments after the command name) and returns the exit code.
 * Never throws and never calls process.exit.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const runtime = new CliRuntime(io);
  const program = createProgram(runtime);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return runtime.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end in a CommanderError too; commander has printed what there was to print.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.Success;
      if (argv.includes('--json')) {
        io.stdout.write(`${JSON.stringify({ ok: false, command: null, exitCode: ExitCode.Usage, error: { code: 'Usage', message: error.message } }, null, 2)}\n`);
      }
      return ExitCode.Usage;
    }
    // The actions catch their own errors; reaching here is a bug in the CLI itself.
    io.stderr.write(`error: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (argv.includes('--debug') && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return ExitCode.Failure;
  }
}
