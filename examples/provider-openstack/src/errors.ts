/**
 * OpenStack's error replies mapped to core's typed errors. Each service has its own body:
 * Neutron `{ "NeutronError": { "type": "NetworkInUse", "message": ... } }`, Nova
 * `{ "itemNotFound": { "code": 404, "message": ... } }`, Keystone (and every service's 401)
 * `{ "error": { "code": 401, "title": ..., "message": ... } }`.
 */
import {
  AlreadyExistsError,
  type ArmadaError,
  ConflictError,
  DependencyViolationError,
  NotFoundError,
  ThrottledError,
  ValidationError,
} from '@armada/core';

export const OPENSTACK_PROVIDER_ID = 'openstack';

/** What a failed call said, in one shape whatever the service. */
export interface OpenStackFault {
  status: number;
  /** Neutron's type (`NetworkInUse`), Nova's body key (`itemNotFound`), or Keystone's title. */
  type: string;
  message: string;
  requestId?: string;
  /** From `Retry-After` (seconds), when the reply had one. */
  retryAfterMs?: number;
}

/** Reads any of the three error bodies. */
export function parseFault(status: number, body: unknown, headers: Headers): OpenStackFault {
  const requestId = headers.get('x-openstack-request-id') ?? headers.get('x-compute-request-id') ?? undefined;
  const retryAfter = headers.get('retry-after');
  const retryAfterMs = retryAfter !== null && Number.isFinite(Number(retryAfter)) ? Number(retryAfter) * 1000 : undefined;
  let type = `HTTP ${status}`;
  let message = '';
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    const neutron = record.NeutronError as { type?: string; message?: string } | undefined;
    const keystone = record.error as { title?: string; message?: string } | undefined;
    if (neutron) {
      type = neutron.type ?? type;
      message = neutron.message ?? '';
    } else if (keystone && typeof keystone === 'object') {
      type = keystone.title ?? type;
      message = keystone.message ?? '';
    } else {
      // Nova: a single key naming the fault.
      const [key, value] = Object.entries(record)[0] ?? [];
      if (key && value && typeof value === 'object') {
        type = key;
        message = String((value as { message?: unknown }).message ?? '');
      }
    }
  } else if (typeof body === 'string') {
    message = body.slice(0, 300);
  }
  return { status, type, message, ...(requestId ? { requestId } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}

/** Neutron's "still in use" types: a delete that must wait for its dependents. */
const IN_USE = new Set(['NetworkInUse', 'SubnetInUse', 'SecurityGroupInUse', 'RouterInUse', 'RouterInterfaceInUseByFloatingIP', 'PortInUse']);

/** Maps one failed call; `context` names the call (`POST /v2.0/networks`). */
export function mapOpenStackError(fault: OpenStackFault, context: string): ArmadaError {
  const options = { provider: OPENSTACK_PROVIDER_ID, ...(fault.requestId ? { requestId: fault.requestId } : {}) };
  const message = `${context}: ${fault.status} ${fault.type}: ${fault.message}`.trim();
  const { status, type } = fault;
  if (status === 429 || (status === 413 && type === 'overLimit' && !/quota/i.test(fault.message))) {
    return new ThrottledError(message, { ...options, ...(fault.retryAfterMs !== undefined ? { retryAfterMs: fault.retryAfterMs } : {}) });
  }
  if (status >= 500) return new ThrottledError(message, options);
  if (status === 401) {
    return new ValidationError('OpenStack (Keystone) rejected the credentials.', {
      ...options,
      issues: [{ path: 'password', message: fault.message || 'unauthorized', fix: 'check username, password and project (or OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME)' }],
    });
  }
  if (status === 403 || status === 413) {
    return new ValidationError(`OpenStack refused ${context}: ${fault.message}`, {
      ...options,
      issues: [{ path: context, message: fault.message || 'forbidden', fix: 'check the project quotas and the role of the user' }],
    });
  }
  if (status === 404) return new NotFoundError(message, options);
  if (status === 409) {
    if (IN_USE.has(type)) return new DependencyViolationError(message, options);
    if (type === 'SecurityGroupRuleExists' || type === 'FloatingIPPortAlreadyAssociated' || /already exists/i.test(fault.message)) return new AlreadyExistsError(message, options);
    return new ConflictError(message, options);
  }
  if (status === 400 && /overlaps with another subnet/i.test(fault.message)) return new ConflictError(message, options);
  if (status === 400 && /already has a port on subnet/i.test(fault.message)) return new AlreadyExistsError(message, options);
  return new ValidationError(message, { ...options, issues: [{ path: context, message: fault.message || `HTTP ${status}` }] });
}
