/**
 * dots-wrapper rejects with the axios error of any non-2xx reply; its body is DigitalOcean's
 * `{ id, message, request_id }`. It neither retries nor waits on 429: Armada does, from the
 * `retry-after` or `ratelimit-reset` headers.
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
} from '@armada/core';

export const DIGITALOCEAN_PROVIDER_ID = 'digitalocean';

interface AxiosLike {
  message?: string;
  code?: string;
  config?: { method?: string; url?: string };
  response?: { status: number; data?: { id?: string; message?: string; request_id?: string }; headers?: Record<string, string | undefined> };
}

/** How long DigitalOcean asked us to wait: `retry-after` seconds, else until `ratelimit-reset`. */
function waitOf(headers: Record<string, string | undefined> | undefined): number | undefined {
  const retryAfter = Number(headers?.['retry-after']);
  if (Number.isFinite(retryAfter) && headers?.['retry-after'] !== undefined) return retryAfter * 1000;
  const reset = Number(headers?.['ratelimit-reset']);
  if (Number.isFinite(reset) && headers?.['ratelimit-reset'] !== undefined) return Math.min(60_000, Math.max(0, reset * 1000 - Date.now()));
  return undefined;
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
  const message = `${context}: ${response.status} ${response.data?.id ?? ''}: ${response.data?.message ?? failure.message ?? ''}`.replace(/\s+/g, ' ');
  const status = response.status;
  if (status === 429) {
    const retryAfterMs = waitOf(response.headers);
    return new ThrottledError(message, { ...options, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }
  if (status >= 500) return new ThrottledError(message, options);
  if (status === 401) {
    return new ValidationError('DigitalOcean rejected the API token.', {
      ...options,
      issues: [{ path: 'token', message: response.data?.message ?? 'unauthorized', fix: 'set DIGITALOCEAN_TOKEN (or the token option) to a valid read/write token' }],
    });
  }
  // DigitalOcean answers 403 to deleting a VPC that still has members.
  if (status === 403 && /member/i.test(response.data?.message ?? '')) return new DependencyViolationError(message, options);
  if (status === 403) {
    return new ValidationError(`DigitalOcean refused ${context}: ${response.data?.message ?? 'forbidden'}`, {
      ...options,
      issues: [{ path: 'token', message: response.data?.message ?? 'forbidden', fix: 'use a token with write scope' }],
    });
  }
  if (status === 404) return new NotFoundError(message, options);
  if (status === 409) return new ConflictError(message, options);
  if (status === 422 && /already (exists|in use)/i.test(response.data?.message ?? '')) return new AlreadyExistsError(message, options);
  if (status === 422 && /overlap/i.test(response.data?.message ?? '')) return new ConflictError(message, options);
  return new ValidationError(message, { ...options, issues: [{ path: context, message: response.data?.message ?? `HTTP ${status}` }] });
}

/** Runs one API call and maps its error. */
export async function digitalocean<T>(context: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw mapDigitalOceanError(error, context);
  }
}
