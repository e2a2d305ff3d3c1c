/**
 * The planner: discover what the environment owns (ownership tags), compare with what the spec
 * wants, and return a typed diff. Pure except for discovery, which the provider does.
 */
import { randomUUID } from 'node:crypto';
import { UnsupportedError, ValidationError } from '../errors.js';
import type { PlanNote, ProviderV1, ResourceService } from '../provider.js';
import {
  RESOURCE_KINDS,
  SENSITIVE_PROPERTIES,
  digestOf,
  isDigest,
  referencesOf,
  type DesiredResource,
  type ObservedResource,
  type ResourceAddress,
  type ResourceKind,
} from '../resources.js';
import type { EnvironmentSpec } from '../spec/schema.js';
import { compileEnvironment } from './compile.js';
import { withRetries, type RetryPolicy } from '../execute/retry.js';
import type { ActionType, Plan, PlanAction, PropertyChange } from './types.js';

/** JSON with object keys sorted, so equal values give equal text whatever their key order. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, entry]) => entry !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${stableStringify(entry)}`).join(',')}}`;
}

/** Order-free lists (rules, firewall names, DNS values) are compared sorted. */
function canonical(kind: ResourceKind, property: string, value: unknown): string {
  const sortable =
    (kind === 'firewall' && (property === 'ingress' || property === 'egress')) ||
    (kind === 'instance' && property === 'firewalls') ||
    (kind === 'dnsRecord' && property === 'values');
  if (sortable && Array.isArray(value)) return `[${value.map(stableStringify).sort().join(',')}]`;
  return stableStringify(value);
}

function serviceFor(provider: ProviderV1, kind: ResourceKind): ResourceService<ResourceKind> | undefined {
  return provider.services[kind] as ResourceService<ResourceKind> | undefined;
}

/** Compares the properties the spec sets; a property the spec leaves out is the provider's to choose. */
export function diffProperties(desired: DesiredResource, current: ObservedResource, replaceOn: readonly string[]): PropertyChange[] {
  const changes: PropertyChange[] = [];
  const sensitive = SENSITIVE_PROPERTIES[desired.kind] as readonly string[];
  const currentProperties = current.properties as unknown as Record<string, unknown>;
  for (const [property, after] of Object.entries(desired.properties)) {
    if (after === undefined) continue;
    const before = currentProperties[property];
    if (canonical(desired.kind, property, before) === canonical(desired.kind, property, after)) continue;
    // A provider that cannot read a secret back reports its digest.
    if (isDigest(before) && typeof after === 'string' && digestOf(after) === before) continue;
    changes.push({ property, before, after, forcesReplacement: replaceOn.includes(property), sensitive: sensitive.includes(property) });
  }
  return changes;
}

/** Desired resources with their dependencies first. A cycle is a clear error naming its members. */
export function sortByDependencies(resources: readonly DesiredResource[]): DesiredResource[] {
  const byAddress = new Map(resources.map((resource) => [resource.address, resource]));
  const remaining = new Map<ResourceAddress, number>();
  const dependents = new Map<ResourceAddress, ResourceAddress[]>();
  for (const resource of resources) {
    const dependencies = resource.dependsOn.filter((address) => byAddress.has(address));
    remaining.set(resource.address, dependencies.length);
    for (const dependency of dependencies) {
      const list = dependents.get(dependency);
      if (list) list.push(resource.address);
      else dependents.set(dependency, [resource.address]);
    }
  }
  const ready = resources.filter((resource) => remaining.get(resource.address) === 0).map((resource) => resource.address);
  const sorted: DesiredResource[] = [];
  for (let next = ready.shift(); next !== undefined; next = ready.shift()) {
    const resource = byAddress.get(next);
    if (resource) sorted.push(resource);
    for (const dependent of dependents.get(next) ?? []) {
      const left = (remaining.get(dependent) ?? 0) - 1;
      remaining.set(dependent, left);
      if (left === 0) ready.push(dependent);
    }
  }
  if (sorted.length < resources.length) {
    const cycle = [...remaining].filter(([, left]) => left > 0).map(([address]) => address);
    throw new ValidationError('The resources depend on each other in a cycle:', {
      issues: [
        {
          path: cycle.join(', '),
          message: 'these resources refer to each other, so none can be created first',
          fix: 'break the cycle: for firewalls that admit each other, admit a subnet or CIDR on one side',
        },
      ],
    });
  }
  return sorted;
}

/**
 * Everything the environment owns, read kind by kind so later kinds can name earlier ones. Each
 * listing is retried on throttling like any other call.
 */
export async function discover(
  provider: ProviderV1,
  environment: string,
  options: { signal?: AbortSignal; retry?: Partial<RetryPolicy> } = {},
): Promise<ObservedResource[]> {
  const { signal } = options;
  const observed: ObservedResource[] = [];
  const byId = new Map<string, ObservedResource>();
  for (const kind of RESOURCE_KINDS) {
    const service = serviceFor(provider, kind);
    if (!service) continue;
    const found = await withRetries(() => service.discover({ environment, ...(signal ? { signal } : {}), findById: (id) => byId.get(id) }), {
      ...options.retry,
      ...(signal ? { signal } : {}),
      provider: provider.id,
    });
    for (const resource of found) {
      observed.push(resource);
      byId.set(resource.id, resource);
    }
  }
  return observed;
}

function emptySummary(): Record<ActionType, number> {
  return { create: 0, update: 0, replace: 0, delete: 0, noop: 0 };
}

export interface DiffInput {
  environment: string;
  provider: ProviderV1;
  desired: readonly DesiredResource[];
  observed: readonly ObservedResource[];
  notes?: PlanNote[];
}

/** Deletes for what exists and is not wanted, dependents first (reverse creation order). */
function deleteActions(unwanted: ObservedResource[]): PlanAction[] {
  const rank = (kind: ResourceKind) => RESOURCE_KINDS.indexOf(kind);
  return [...unwanted]
    .sort((a, b) => rank(b.kind) - rank(a.kind))
    .map((current) => ({ address: current.address, kind: current.kind, name: current.name, type: 'delete' as const, current, changes: [] }));
}

/** The pure part of planning: desired vs observed. */
export function diff({ environment, provider, desired, observed, notes = [] }: DiffInput): Plan {
  const current = new Map<ResourceAddress, ObservedResource>();
  const unwanted: ObservedResource[] = [];
  for (const resource of observed) {
    // Two cloud resources claiming one address: an interrupted run made a second. Keep one.
    if (current.has(resource.address)) unwanted.push(resource);
    else current.set(resource.address, resource);
  }
  const desiredAddresses = new Set(desired.map((resource) => resource.address));
  // Resources kept under a new address (see DesiredResource.movedFrom), by their old address.
  const moved = new Set<ResourceAddress>();
  const existingFor = (resource: DesiredResource, service: ResourceService<ResourceKind>): { existing?: ObservedResource; movedFrom?: ResourceAddress } => {
    const existing = current.get(resource.address);
    if (existing || !service.update) return existing ? { existing } : {};
    for (const from of resource.movedFrom ?? []) {
      const candidate = current.get(from);
      if (!candidate || candidate.kind !== resource.kind || desiredAddresses.has(from) || moved.has(from)) continue;
      moved.add(from);
      return { existing: candidate, movedFrom: from };
    }
    return {};
  };

  const actions: PlanAction[] = [];
  const actionAt = new Map<ResourceAddress, PlanAction>();
  for (const resource of sortByDependencies(desired)) {
    const service = serviceFor(provider, resource.kind);
    if (!service) {
      throw new UnsupportedError(resource.kind, `Provider "${provider.id}" cannot manage ${resource.kind} resources (${resource.address}).`, {
        provider: provider.id,
      });
    }
    const { existing, movedFrom } = existingFor(resource, service);
    let action: PlanAction;
    if (!existing) {
      action = { address: resource.address, kind: resource.kind, name: resource.name, type: 'create', desired: resource, changes: [] };
    } else {
      const changes = diffProperties(resource, existing, service.replaceOn);
      // Half made by an interrupted run: the provider's update finishes it (without one, replaced).
      const unfinished = existing.unfinished !== undefined;
      const replace = changes.some((change) => change.forcesReplacement) || ((changes.length > 0 || unfinished) && !service.update);
      action = {
        address: resource.address,
        kind: resource.kind,
        name: resource.name,
        type: changes.length === 0 && !unfinished && !movedFrom ? 'noop' : replace ? 'replace' : 'update',
        desired: resource,
        current: existing,
        changes,
        ...(movedFrom ? { movedFrom, reason: `renamed from ${movedFrom}, kept` } : unfinished ? { reason: `unfinished: ${existing.unfinished}` } : {}),
      };
      // A replaced dependency gets a new cloud id: what refers to it must follow.
      const references = referencesOf(resource.kind, resource.properties);
      for (const reference of references) {
        if (actionAt.get(reference.address)?.type !== 'replace' || action.type === 'replace') continue;
        const forces = service.replaceOn.includes(reference.property) || !service.update;
        action.type = forces ? 'replace' : 'update';
        action.reason = `${reference.address} is replaced`;
        if (!action.changes.some((change) => change.property === reference.property)) {
          const value = (resource.properties as unknown as Record<string, unknown>)[reference.property];
          action.changes.push({ property: reference.property, before: value, after: value, forcesReplacement: forces, sensitive: false });
        }
      }
      // A dependency the provider added (adapt(): a droplet lives in the VPC it was made in) names
      // no property that could be updated: its replacement replaces the resource.
      for (const dependency of resource.dependsOn) {
        if (action.type === 'replace' || actionAt.get(dependency)?.type !== 'replace' || references.some((reference) => reference.address === dependency)) continue;
        action.type = 'replace';
        action.reason = `${dependency} is replaced`;
      }
    }
    actions.push(action);
    actionAt.set(resource.address, action);
  }
  for (const resource of current.values()) if (!desiredAddresses.has(resource.address) && !moved.has(resource.address)) unwanted.push(resource);
  actions.push(...deleteActions(unwanted));

  const summary = emptySummary();
  for (const action of actions) summary[action.type]++;
  return { id: randomUUID(), environment, provider: { id: provider.id, region: provider.region }, mode: 'apply', actions, notes, summary };
}

export interface PlanOptions {
  spec: EnvironmentSpec;
  provider: ProviderV1;
  signal?: AbortSignal;
  /** Retries of the discovery calls. */
  retry?: Partial<RetryPolicy>;
}

/** Compile, adapt, discover, diff. */
export async function plan({ spec, provider, signal, retry }: PlanOptions): Promise<Plan> {
  if ((spec.dns?.records.length ?? 0) > 0 && !provider.capabilities.dns) {
    throw new UnsupportedError('dns', `The spec has DNS records but provider "${provider.id}" has no DNS service.`, { provider: provider.id });
  }
  const compiled = await compileEnvironment(spec, provider, { ...(retry ? { retry } : {}), ...(signal ? { signal } : {}) });
  const adapted = provider.adapt ? provider.adapt(compiled) : { resources: compiled, notes: [] };
  const observed = await discover(provider, spec.name, { ...(signal ? { signal } : {}), ...(retry ? { retry } : {}) });
  return diff({ environment: spec.name, provider, desired: adapted.resources, observed, notes: adapted.notes });
}

/** A plan that deletes everything the environment owns on this provider. */
export async function planDestroy({
  environment,
  provider,
  signal,
  retry,
}: { environment: string; provider: ProviderV1; signal?: AbortSignal; retry?: Partial<RetryPolicy> }): Promise<Plan> {
  const observed = await discover(provider, environment, { ...(signal ? { signal } : {}), ...(retry ? { retry } : {}) });
  const actions = deleteActions(observed);
  const summary = emptySummary();
  summary.delete = actions.length;
  return { id: randomUUID(), environment, provider: { id: provider.id, region: provider.region }, mode: 'destroy', actions, notes: [], summary };
}
