/**
 * dots-wrapper rejects with the axios error of any non-2xx reply; its body is DigitalOcean's
 * `{ id, message, request_id }` (OpenAPI `specification/shared/models/error.yml`). It neither
 * retries nor waits on 429: Armada does, from the `retry-after` or `ratelimit-reset` headers.
 *
 * Errors are mapped by their id (with the status standing in when the body has none), never by
 * their wording: DigitalOcean may reword a message at any time. The message is read only as a last
 * resort, to tell apart the kinds one id covers (a 422 for a name already taken), and the
 * services do not depend on that: a create refused with a 422 looks for what it made.
 */
import {
  AlreadyExistsError,
  ArmadaError,
  ConflictError,
  ConnectionError,
  DependencyViolationError,
  NotFoundError,
  ThrottledError,
  ValidationError,
  type ArmadaErrorOptions,
} from '@armada/core';

export const DIGITALOCEAN_PROVIDER_ID = 'digitalocean';

/**
 * The ids DigitalOcean documents, by the status each comes with: OpenAPI
 * `specification/shared/responses/*.yml` (bad_request, unauthorized, forbidden, not_found,
 * conflict, unprocessable_entity, too_many_requests, server_error) and the resources that answer
 * 412 (`precondition_failed`, e.g. projects/responses/precondition_failed.yml).
 */
export const ERROR_IDS = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  412: 'precondition_failed',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  500: 'server_error',
} as const;
export type DigitalOceanErrorId = (typeof ERROR_IDS)[keyof typeof ERROR_IDS];
const KNOWN_IDS = new Set<string>(Object.values(ERROR_IDS));

/**
 * Calls whose `forbidden` means "still in use", not a token without the scope: OpenAPI
 * vpcs/vpcs_delete.yml answers 403 to deleting a VPC that has members (or is the region's default).
 */
const FORBIDDEN_WHILE_IN_USE = new Set(['deleteVpc']);

/** The tag endpoints answer `{ error, messages, root_causes }` instead (tags/responses/tags_bad_request.yml). */
type ErrorBody = { id?: string; message?: string; request_id?: string; error?: string };

interface AxiosLike {
  message?: string;
  code?: string;
  config?: { method?: string; url?: string };
  response?: { status: number; data?: ErrorBody; headers?: Record<string, string | undefined> };
}

/** The error's DigitalOcean id: the body's when it is a documented one, else the one its status stands for. */
export function digitalOceanErrorId(error: unknown): DigitalOceanErrorId | undefined {
  const failure = (ArmadaError.isInstance(error) ? error.cause : error) as AxiosLike | undefined;
  const response = failure?.response;
  if (!response) return undefined;
  const said = response.data?.id;
  if (said !== undefined && KNOWN_IDS.has(said)) return said as DigitalOceanErrorId;
  return ERROR_IDS[response.status as keyof typeof ERROR_IDS] ?? (response.status >= 500 ? 'server_error' : undefined);
}

/** How long DigitalOcean asked us to wait: `retry-after` seconds, else until `ratelimit-reset`. */
function waitOf(headers: Record<string, string | undefined> | undefined): number | undefined {
  const retryAfter = Number(headers?.['retry-after']);
  if (Number.isFinite(retryAfter) && headers?.['retry-after'] !== undefined) return retryAfter * 1000;
  const reset = Number(headers?.['ratelimit-reset']);
  if (Number.isFinite(reset) && headers?.['ratelimit-reset'] !== undefined) return Math.min(60_000, Math.max(0, reset * 1000 - Date.now()));
  return undefined;
}

/** A 422 or 400 (or an id Armada does not know): bad input, unless its wording says which other kind. */
function refused(message: string, said: string, context: string, options: ArmadaErrorOptions): ArmadaError {
  // Last resort: these words are DigitalOcean's today. Reworded, the error stays a ValidationError.
  if (/already (exists|in use)/i.test(said)) return new AlreadyExistsError(message, options);
  if (/overlap/i.test(said)) return new ConflictError(message, options);
  return new ValidationError(message, { ...options, issues: [{ path: context, message: said }] });
}

export function mapDigitalOceanError(error: unknown, context: string): ArmadaError {
  if (ArmadaError.isInstance(error)) return error;
  const failure = (error ?? {}) as AxiosLike;
  const response = failure.response;
  const options = { provider: DIGITALOCEAN_PROVIDER_ID, cause: error, ...(response?.data?.request_id ? { requestId: response.data.request_id } : {}) };
  if (!response) {
    // No reply at all: the request may have taken effect. Retryable; creates must be idempotent.
    return new ConnectionError(`${context}: the connection failed (${failure.code ?? failure.message}); the call may have taken effect`, options);
  }
  const id = digitalOceanErrorId(failure);
  const said = response.data?.message ?? response.data?.error ?? failure.message ?? `HTTP ${response.status}`;
  const message = `${context}: ${response.status} ${id ?? response.data?.id ?? ''}: ${said}`.replace(/\s+/g, ' ');
  switch (id) {
    case 'too_many_requests': {
      const retryAfterMs = waitOf(response.headers);
      return new ThrottledError(message, { ...options, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    }
    case 'server_error':
      return new ThrottledError(message, options);
    case 'unauthorized':
      return new ValidationError('DigitalOcean rejected the API token.', {
        ...options,
        issues: [{ path: 'token', message: said, fix: 'set DIGITALOCEAN_TOKEN (or the token option) to a valid read/write token' }],
      });
    case 'forbidden':
      if (FORBIDDEN_WHILE_IN_USE.has(context)) return new DependencyViolationError(message, options);
      return new ValidationError(`DigitalOcean refused ${context}: ${said}`, { ...options, issues: [{ path: 'token', message: said, fix: 'use a token with write scope' }] });
    case 'not_found':
      return new NotFoundError(message, options);
    case 'conflict':
    case 'precondition_failed':
      return new ConflictError(message, options);
    default:
      return refused(message, said, context, options);
  }
}

/** Runs one API call and maps its error. */
export async function digitalocean<T>(context: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw mapDigitalOceanError(error, context);
  }
}
