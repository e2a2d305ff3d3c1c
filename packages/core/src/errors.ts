/**
 * Typed errors. Every error Armada raises or maps from a vendor is an `ArmadaError` with a stable
 * `code`, a `retryable` flag, and where known the provider and the request id.
 *
 * `instanceof` fails when two copies of @armada/core end up in one process (a plugin bundling its
 * own copy, for example), so each class also has a static `isInstance` that checks a marker stored
 * under a global symbol, the way vercel/ai does for its provider errors.
 */

const MARKER_PREFIX = 'armada.error';
const baseSymbol = Symbol.for(MARKER_PREFIX);

/**
 * Each subclass has its own marker so `Subclass.isInstance` works across package copies. The
 * classes are written out (rather than generated) so each keeps a readable name and constructor.
 */
function markerOf(name: string): string {
  return `${MARKER_PREFIX}.${name}`;
}

function hasMarker(value: unknown, marker: string): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[Symbol.for(marker)] === true
  );
}

export type ArmadaErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'DependencyViolation'
  | 'Throttled'
  | 'Connection'
  | 'Unsupported'
  | 'Validation'
  | 'Timeout'
  | 'Cancelled'
  | 'DuplicateRegistration'
  | 'Unknown';

export interface ArmadaErrorOptions {
  /** Provider id (`aws`, `digitalocean`, ...) the error came from, when it came from one. */
  provider?: string;
  /** The vendor's request id, for support tickets. */
  requestId?: string;
  /** Overrides the class default. */
  retryable?: boolean;
  cause?: unknown;
}

export class ArmadaError extends Error {
  protected readonly [baseSymbol] = true;
  readonly code: ArmadaErrorCode;
  readonly retryable: boolean;
  readonly provider: string | undefined;
  readonly requestId: string | undefined;

  constructor(
    code: ArmadaErrorCode,
    message: string,
    options: ArmadaErrorOptions & { defaultRetryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ArmadaError';
    this.code = code;
    this.retryable = options.retryable ?? options.defaultRetryable ?? false;
    this.provider = options.provider;
    this.requestId = options.requestId;
  }

  static isInstance(error: unknown): error is ArmadaError {
    return hasMarker(error, MARKER_PREFIX);
  }

  /** True for errors worth trying again: throttling, 5xx, eventual consistency. */
  static isRetryable(error: unknown): boolean {
    return ArmadaError.isInstance(error) && error.retryable;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      provider: this.provider,
      requestId: this.requestId,
    };
  }
}


export interface ResourceErrorOptions extends ArmadaErrorOptions {
  /** Logical address (`instance.web-1`) or cloud id the error is about. */
  resource?: string;
}

const notFoundMarker = markerOf('NotFound');
const notFoundSymbol = Symbol.for(notFoundMarker);
/** The resource does not exist (or is not visible yet: right after a create it is retryable). */
export class NotFoundError extends ArmadaError {
  protected readonly [notFoundSymbol] = true;
  readonly resource: string | undefined;
  constructor(message: string, options: ResourceErrorOptions = {}) {
    super('NotFound', message, options);
    this.name = 'NotFoundError';
    this.resource = options.resource;
  }
  static override isInstance(error: unknown): error is NotFoundError {
    return hasMarker(error, notFoundMarker);
  }
}

const alreadyExistsMarker = markerOf('AlreadyExists');
const alreadyExistsSymbol = Symbol.for(alreadyExistsMarker);
/** A create found the resource already there (a duplicate name, or a retried create). */
export class AlreadyExistsError extends ArmadaError {
  protected readonly [alreadyExistsSymbol] = true;
  readonly resource: string | undefined;
  constructor(message: string, options: ResourceErrorOptions = {}) {
    super('AlreadyExists', message, options);
    this.name = 'AlreadyExistsError';
    this.resource = options.resource;
  }
  static override isInstance(error: unknown): error is AlreadyExistsError {
    return hasMarker(error, alreadyExistsMarker);
  }
}

const conflictMarker = markerOf('Conflict');
const conflictSymbol = Symbol.for(conflictMarker);
/** The request conflicts with the current state (overlapping CIDR, resource in use). */
export class ConflictError extends ArmadaError {
  protected readonly [conflictSymbol] = true;
  readonly resource: string | undefined;
  constructor(message: string, options: ResourceErrorOptions & { code?: 'Conflict' | 'DependencyViolation' } = {}) {
    super(options.code ?? 'Conflict', message, options);
    this.name = 'ConflictError';
    this.resource = options.resource;
  }
  static override isInstance(error: unknown): error is ConflictError {
    return hasMarker(error, conflictMarker);
  }
}

const dependencyViolationMarker = markerOf('DependencyViolation');
const dependencyViolationSymbol = Symbol.for(dependencyViolationMarker);
/**
 * A delete refused because something still uses the resource. Right after the dependents were
 * deleted this is eventual consistency, so it is retryable by default (within the retry budget).
 */
export class DependencyViolationError extends ConflictError {
  protected readonly [dependencyViolationSymbol] = true;
  constructor(message: string, options: ResourceErrorOptions = {}) {
    super(message, { retryable: true, ...options, code: 'DependencyViolation' });
    this.name = 'DependencyViolationError';
  }
  static override isInstance(error: unknown): error is DependencyViolationError {
    return hasMarker(error, dependencyViolationMarker);
  }
}

const throttledMarker = markerOf('Throttled');
const throttledSymbol = Symbol.for(throttledMarker);
/** The API asked us to slow down (EC2 RequestLimitExceeded, HTTP 429) or failed with a 5xx. */
export class ThrottledError extends ArmadaError {
  protected readonly [throttledSymbol] = true;
  /** How long the API asked us to wait, when it said (Retry-After, RateLimit-Reset). */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: ArmadaErrorOptions & { retryAfterMs?: number } = {}) {
    super('Throttled', message, { defaultRetryable: true, ...options });
    this.name = 'ThrottledError';
    this.retryAfterMs = options.retryAfterMs;
  }
  static override isInstance(error: unknown): error is ThrottledError {
    return hasMarker(error, throttledMarker);
  }
}

const connectionMarker = markerOf('Connection');
const connectionSymbol = Symbol.for(connectionMarker);
/**
 * No reply came: the connection was refused, reset or timed out. Retryable, but unlike a
 * throttle the request may or may not have taken effect, so a retried create must be idempotent.
 */
export class ConnectionError extends ArmadaError {
  protected readonly [connectionSymbol] = true;
  constructor(message: string, options: ArmadaErrorOptions = {}) {
    super('Connection', message, { defaultRetryable: true, ...options });
    this.name = 'ConnectionError';
  }
  static override isInstance(error: unknown): error is ConnectionError {
    return hasMarker(error, connectionMarker);
  }
}

const unsupportedMarker = markerOf('Unsupported');
const unsupportedSymbol = Symbol.for(unsupportedMarker);
/** The provider lacks a capability the spec needs. Names the capability. */
export class UnsupportedError extends ArmadaError {
  protected readonly [unsupportedSymbol] = true;
  readonly capability: string;
  constructor(capability: string, message: string, options: ArmadaErrorOptions = {}) {
    super('Unsupported', message, options);
    this.name = 'UnsupportedError';
    this.capability = capability;
  }
  static override isInstance(error: unknown): error is UnsupportedError {
    return hasMarker(error, unsupportedMarker);
  }
}

/** One problem found in user input: where it is, what is wrong, and what would be right. */
export interface ValidationIssue {
  /** Dotted path into the input, e.g. `instances[2].subnet`. Empty string for the root. */
  path: string;
  message: string;
  /** What to write instead, when there is a useful suggestion. */
  fix?: string;
}

const validationMarker = markerOf('Validation');
const validationSymbol = Symbol.for(validationMarker);
/** Bad input. Carries every issue found, not just the first. */
export class ValidationError extends ArmadaError {
  protected readonly [validationSymbol] = true;
  readonly issues: readonly ValidationIssue[];
  constructor(message: string, options: ArmadaErrorOptions & { issues?: ValidationIssue[] } = {}) {
    const issues = options.issues ?? [];
    super('Validation', issues.length === 0 ? message : `${message}\n${formatIssues(issues)}`, options);
    this.name = 'ValidationError';
    this.issues = issues;
  }
  static override isInstance(error: unknown): error is ValidationError {
    return hasMarker(error, validationMarker);
  }
}

/** An error as issues (for checks that report rather than throw): a ValidationError's own, else one at `path`. */
export function issuesOfError(error: unknown, path: string): ValidationIssue[] {
  if (ValidationError.isInstance(error) && error.issues.length > 0) return [...error.issues];
  return [{ path, message: error instanceof Error ? error.message : String(error) }];
}

export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues
    .map((issue) => `  - ${issue.path || '(root)'}: ${issue.message}${issue.fix ? ` (fix: ${issue.fix})` : ''}`)
    .join('\n');
}

const timeoutMarker = markerOf('Timeout');
const timeoutSymbol = Symbol.for(timeoutMarker);
/** A wait or an operation ran out of time. The message says what was awaited and what to try. */
export class TimeoutError extends ArmadaError {
  protected readonly [timeoutSymbol] = true;
  readonly timeoutMs: number;
  constructor(message: string, options: ArmadaErrorOptions & { timeoutMs: number }) {
    super('Timeout', message, options);
    this.name = 'TimeoutError';
    this.timeoutMs = options.timeoutMs;
  }
  static override isInstance(error: unknown): error is TimeoutError {
    return hasMarker(error, timeoutMarker);
  }
}

const cancelledMarker = markerOf('Cancelled');
const cancelledSymbol = Symbol.for(cancelledMarker);
/** The caller's AbortSignal fired. */
export class CancelledError extends ArmadaError {
  protected readonly [cancelledSymbol] = true;
  constructor(message = 'The operation was cancelled.', options: ArmadaErrorOptions = {}) {
    super('Cancelled', message, options);
    this.name = 'CancelledError';
  }
  static override isInstance(error: unknown): error is CancelledError {
    return hasMarker(error, cancelledMarker);
  }
}

const duplicateRegistrationMarker = markerOf('DuplicateRegistration');
const duplicateRegistrationSymbol = Symbol.for(duplicateRegistrationMarker);
/** Two plugins registered the same provider or config manager id. */
export class DuplicateRegistrationError extends ArmadaError {
  protected readonly [duplicateRegistrationSymbol] = true;
  constructor(message: string) {
    super('DuplicateRegistration', message);
    this.name = 'DuplicateRegistrationError';
  }
  static override isInstance(error: unknown): error is DuplicateRegistrationError {
    return hasMarker(error, duplicateRegistrationMarker);
  }
}

/** Wraps anything thrown into an ArmadaError so callers handle one type. */
/** Node's codes for a connection that was refused, reset, cut or never made in time. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** Whether `code` is one of Node's for a connection that failed (no reply came): for providers mapping their clients' errors. */
export const isConnectionCode = (code: unknown): boolean => typeof code === 'string' && CONNECTION_CODES.has(code);

export function toArmadaError(error: unknown, provider?: string): ArmadaError {
  if (ArmadaError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (isConnectionCode(code)) return new ConnectionError(`the connection failed (${code}): ${message}`, { provider, cause: error });
  return new ArmadaError('Unknown', message, { provider, cause: error });
}
