/**
 * One run of one command: where its output goes, its colours, its JSON document, its options.
 *
 * Output rules: with --json, stdout carries exactly one JSON document (also on failure) and every
 * human message goes to stderr; without it, results go to stdout and progress, warnings and errors
 * to stderr.
 */
import { Option, type Command } from 'commander';
import { isAbsolute, relative, resolve } from 'node:path';
import { describeError, indent } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { colourWanted, paint, type CliIO, type CliWritable, type Style } from './io.js';

/** The options every command takes. */
export interface CommonOptions {
  json?: boolean;
  state?: string;
  plugin?: string[];
  debug?: boolean;
  /** False with --no-color. */
  color?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Adds the common options to a command; every command file calls it. */
export function withCommonOptions(command: Command, options: { state?: boolean } = {}): Command {
  command.option('--json', 'print one JSON document on stdout (human messages go to stderr)');
  if (options.state !== false) {
    command.option('--state <path>', 'state file (default: .armada/<environment name>.json)');
  }
  command
    .option('--plugin <module>', 'load a provider plugin module (a path or a package name); repeatable', collect)
    .option('--debug', 'print the stack trace of an unexpected error')
    .addOption(new Option('--no-color', 'no colour, even on a terminal (NO_COLOR does the same)'));
  return command;
}

export class Session {
  readonly cwd: string;
  readonly env: CliIO['env'];
  readonly signal: AbortSignal | undefined;
  private document: Record<string, unknown> = {};
  private readonly colourOut: boolean;
  private readonly colourErr: boolean;

  constructor(
    readonly io: CliIO,
    readonly command: string,
    readonly options: CommonOptions,
  ) {
    this.cwd = io.cwd ?? process.cwd();
    this.env = io.env;
    this.signal = io.signal;
    this.colourOut = colourWanted(io.stdout, io.env, options.color !== false);
    this.colourErr = colourWanted(io.stderr, io.env, options.color !== false);
  }

  get json(): boolean {
    return this.options.json === true;
  }

  /** The stream human results go to: stdout, or stderr under --json. */
  get humanStream(): CliWritable {
    return this.json ? this.io.stderr : this.io.stdout;
  }

  get humanColour(): boolean {
    return this.json ? this.colourErr : this.colourOut;
  }

  /** A result for people (a plan, a status). */
  print(text: string): void {
    this.humanStream.write(`${text}\n`);
  }

  /** Progress and remarks: always stderr. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.note(`${paint(this.colourErr, 'yellow', 'warning:')} ${text}`);
  }

  /** Colours for text headed for the human stream (`print`). */
  style(style: Style, text: string): string {
    return paint(this.humanColour, style, text);
  }

  /** Colours for text headed for stderr (`note`). */
  styleErr(style: Style, text: string): string {
    return paint(this.colourErr, style, text);
  }

  /** Adds fields to the JSON document written at the end of the run (ignored without --json). */
  setResult(fields: Record<string, unknown>): void {
    Object.assign(this.document, fields);
  }

  /** A path resolved from the working directory. */
  path(path: string): string {
    return resolve(this.cwd, path);
  }

  /** A path as the user would type it: relative to the working directory when under it. */
  displayPath(path: string): string {
    const shown = relative(this.cwd, path);
    return shown === '' || shown.startsWith('..') || isAbsolute(shown) ? path : shown;
  }

  /** Reports an error on stderr (one line, then the detail) and returns its exit code. */
  reportError(error: unknown): ExitCode {
    const report = describeError(error);
    this.note(`${this.styleErr('red', 'error:')} ${report.headline}`);
    if (report.detail) this.note(report.detail);
    if (report.unexpected) {
      if (this.options.debug) {
        const stack = error instanceof Error ? error.stack : undefined;
        if (stack) this.note(indent(stack));
        const cause = error instanceof Error && error.cause instanceof Error ? error.cause.stack : undefined;
        if (cause) this.note(indent(`caused by: ${cause}`));
      } else {
        this.note(this.styleErr('dim', 'This looks like a bug in Armada or a plugin; run again with --debug to see the stack trace.'));
      }
    } else if (this.options.debug && error instanceof Error && error.cause instanceof Error && error.cause.stack) {
      this.note(indent(`caused by: ${error.cause.stack}`));
    }
    this.setResult({ error: report.json });
    return report.exitCode;
  }

  /** Writes the one JSON document of a --json run. */
  finish(exitCode: ExitCode): void {
    if (!this.json) return;
    const ok = exitCode === ExitCode.Success || exitCode === ExitCode.Changes;
    this.io.stdout.write(`${JSON.stringify({ ok, command: this.command, exitCode, ...this.document }, null, 2)}\n`);
  }
}

/** What a command file's action does: its work, returning the exit code. */
export type CommandHandler<Options extends CommonOptions> = (session: Session, options: Options, args: Array<string | undefined>) => Promise<ExitCode>;

/** Runs commands and keeps the exit code of the one that ran. */
export class CliRuntime {
  exitCode: ExitCode = ExitCode.Success;
  constructor(readonly io: CliIO) {}

  /** Wraps a handler as a commander action: a Session, errors reported, the JSON document written. */
  action<Options extends CommonOptions>(handler: CommandHandler<Options>): (...params: unknown[]) => Promise<void> {
    return async (...params: unknown[]) => {
      const command = params.at(-1) as Command;
      const options = command.opts<Options>();
      const args = params.slice(0, -2) as Array<string | undefined>;
      const session = new Session(this.io, command.name(), options);
      let exitCode: ExitCode;
      try {
        exitCode = await handler(session, options, args);
      } catch (error) {
        exitCode = session.reportError(error);
      }
      session.finish(exitCode);
      this.exitCode = exitCode;
    };
  }
}
