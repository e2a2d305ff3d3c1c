/**
 * Preflight: everything a migration can check before it creates anything, checked at once, every
 * problem reported together with its path in the migration file and its fix. It runs first in the
 * dry run and in every real run (a resumed one too: credentials expire, servers move), and a
 * problem stops the run before the checkpoint directory is even made.
 *
 * A check only reads: it may call the clouds' APIs (credentials, the DNS zone), connect to the data
 * stores and read their grants and sizes, and read local files; it never writes or locks anything.
 */
import { type ValidationIssue, ValidationError, toArmadaError } from '../errors.js';

export interface PreflightContext {
  signal: AbortSignal;
  /** The run continues an earlier one: what it already made (data copied so far) is not a problem. */
  resuming: boolean;
}

export interface PreflightCheck {
  /** What is checked, for the report: `target provider aws (us-east-1): credentials and region`. */
  readonly what: string;
  /** Where an unexpected error of the check itself is reported (a path in the migration file). */
  readonly path: string;
  /** The problems found; none when all is well. */
  check(context: PreflightContext): Promise<readonly ValidationIssue[]>;
}

export interface PreflightResult {
  /** What was checked, in order: the report's list. */
  checked: string[];
  issues: ValidationIssue[];
}

/** A check of issues already known (the file's references, worked out when it was loaded). */
export function knownIssuesCheck(what: string, issues: readonly ValidationIssue[]): PreflightCheck {
  return { what, path: '', check: async () => issues };
}

/** Runs every check (concurrently: they are independent reads) and gathers what they found, in check order. */
export async function runPreflight(checks: readonly PreflightCheck[], context: PreflightContext): Promise<PreflightResult> {
  const found = await Promise.all(
    checks.map(async (check) => {
      try {
        return await check.check(context);
      } catch (error) {
        const armada = toArmadaError(error);
        if (ValidationError.isInstance(armada) && armada.issues.length > 0) return armada.issues.map((issue) => ({ ...issue, path: prefixed(check.path, issue.path) }));
        return [{ path: check.path, message: `${check.what}: ${armada.message.split('\n')[0]}` }];
      }
    }),
  );
  return { checked: checks.map((check) => check.what), issues: found.flat() };
}

function prefixed(prefix: string, path: string): string {
  if (!prefix || path.startsWith(prefix)) return path || prefix;
  return path ? `${prefix}.${path}` : prefix;
}

/** Preflight found problems: nothing was created or changed. Lists them all, and what was checked. */
export class PreflightFailedError extends ValidationError {
  readonly checked: string[];
  constructor(result: PreflightResult) {
    super(`Preflight found ${result.issues.length} problem(s); nothing was created or changed:`, { issues: result.issues });
    this.name = 'PreflightFailedError';
    this.checked = result.checked;
  }
}
