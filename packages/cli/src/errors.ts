/**
 * How failures reach the user: one clear line, then the detail (every issue of a spec, every policy
 * violation), and never a stack trace for a user's mistake. Only an unexpected error (a bug) has a
 * stack worth reading, and it is printed with --debug.
 */
import {
  ArmadaError,
  CancelledError,
  DuplicateRegistrationError,
  UnsupportedError,
  ValidationError,
  formatViolations,
  type ValidationIssue,
  type Violation,
} from '@armada/core';
import { ExitCode } from './exit-codes.js';

/**
 * A user's mistake found by the CLI itself: a missing file, an unknown provider, a plugin that
 * exports no plugin, an apply nobody approved. Exit code 2 unless told otherwise.
 */
export class UsageError extends Error {
  readonly exitCode: ExitCode;
  /** Lines under the message: what exactly is wrong, and what to do. */
  readonly detail: string | undefined;
  /** Machine-readable code in --json output. */
  readonly code: string;
  constructor(message: string, options: { detail?: string; exitCode?: ExitCode; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UsageError';
    this.detail = options.detail;
    this.exitCode = options.exitCode ?? ExitCode.Usage;
    this.code = options.code ?? 'Usage';
  }
}

/** A spec that does not parse, or that breaks a policy: every violation, at once. */
export class ViolationsError extends UsageError {
  readonly violations: readonly Violation[];
  constructor(message: string, violations: readonly Violation[], code: 'InvalidSpec' | 'PolicyViolation') {
    super(message, { detail: indent(formatViolations(violations)), code });
    this.name = 'ViolationsError';
    this.violations = violations;
  }
}

export function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `${by}${line}`))
    .join('\n');
}

export interface ErrorReport {
  exitCode: ExitCode;
  /** The one line: what went wrong. */
  headline: string;
  /** The lines under it, when there are any. */
  detail?: string;
  /** True for errors that are not the user's doing: the stack helps, and --debug prints it. */
  unexpected: boolean;
  json: Record<string, unknown>;
}

function issuesJson(issues: readonly ValidationIssue[]): ValidationIssue[] {
  return issues.map((issue) => ({ ...issue }));
}

/** What to tell the user about an error, and which exit code it means. */
export function describeError(error: unknown): ErrorReport {
  if (error instanceof ViolationsError) {
    return {
      exitCode: error.exitCode,
      headline: error.message,
      ...(error.detail ? { detail: error.detail } : {}),
      unexpected: false,
      json: { code: error.code, message: error.message, violations: error.violations },
    };
  }
  if (error instanceof UsageError) {
    return {
      exitCode: error.exitCode,
      headline: error.message,
      ...(error.detail ? { detail: error.detail } : {}),
      unexpected: false,
      json: { code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) },
    };
  }
  if (CancelledError.isInstance(error)) {
    return { exitCode: ExitCode.Interrupted, headline: 'Interrupted; nothing more was started.', unexpected: false, json: error.toJSON() };
  }
  if (ArmadaError.isInstance(error)) {
    // ValidationError puts its issues on the lines after the first one of its message.
    const [headline = error.message, ...rest] = error.message.split('\n');
    const userError = ValidationError.isInstance(error) || DuplicateRegistrationError.isInstance(error) || UnsupportedError.isInstance(error);
    const where = [error.provider && `provider ${error.provider}`, error.requestId && `request id ${error.requestId}`].filter(Boolean).join(', ');
    const detail = [...rest, ...(where && !userError ? [`  (${where})`] : [])].join('\n');
    return {
      exitCode: userError ? ExitCode.Usage : ExitCode.Failure,
      headline: userError ? headline : error.code === 'Unknown' ? `unexpected error: ${headline}` : `[${error.code}] ${headline}`,
      ...(detail ? { detail } : {}),
      unexpected: error.code === 'Unknown',
      json: { ...error.toJSON(), ...(ValidationError.isInstance(error) ? { issues: issuesJson(error.issues) } : {}) },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    exitCode: ExitCode.Failure,
    headline: `unexpected error: ${message}`,
    unexpected: true,
    json: { code: 'Unexpected', message },
  };
}
