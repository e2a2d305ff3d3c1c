/**
 * What the CLI talks to. `runCli` takes these instead of reaching for `process`, so tests run it
 * in-process with strings for streams and an environment of their own.
 */
import { styleText } from 'node:util';

/** A stream the CLI writes to: `process.stdout`, or anything with `write` (a test's buffer). */
export interface CliWritable {
  write(chunk: string): unknown;
  /** True when it is a terminal: enables colour and the single updating progress line. */
  isTTY?: boolean;
}

/** Where approval prompts are read from. Prompts are only shown when this is a terminal. */
export interface CliReadable extends NodeJS.ReadableStream {
  isTTY?: boolean;
}

export interface CliIO {
  stdout: CliWritable;
  stderr: CliWritable;
  /** Environment variables (credentials, endpoints, NO_COLOR). `process.env` for the real command. */
  env: Readonly<Record<string, string | undefined>>;
  /** For approval prompts; without it (or when it is not a terminal) apply and destroy need --yes. */
  stdin?: CliReadable;
  /** Directory that relative paths (spec, --state, --plugin, `.armada/`) are resolved from. Default: `process.cwd()`. */
  cwd?: string;
  /** Cancels the run: apply and destroy start no new step, write the state file and exit 130. */
  signal?: AbortSignal;
}

export type Style = 'red' | 'green' | 'yellow' | 'cyan' | 'bold' | 'dim';

/** Colour on a terminal only, and never when NO_COLOR is set (https://no-color.org) or TERM is dumb. */
export function colourWanted(stream: CliWritable, env: CliIO['env'], flag = true): boolean {
  return flag && stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

// Node 22.13+ checks process.stdout unless told not to; Node 20 takes no options and ignores them.
const style3 = styleText as unknown as (format: Style, text: string, options?: { validateStream: boolean }) => string;

export function paint(enabled: boolean, style: Style, text: string): string {
  return enabled && text !== '' ? style3(style, text, { validateStream: false }) : text;
}
