/**
 * What every service shares: the client, the waiters, ownership encoded the ways OpenStack can
 * hold it, and the small helpers for idempotent creates and deletes.
 *
 * Creates: Neutron and Nova take no idempotency token, and Neutron allows duplicate names, so a
 * create the executor repeats (after a throttle, a lost reply, or a later step that failed) could
 * make a second resource and leave the first an orphan. createOnce() is what prevents it: see there.
 *
 * Ownership: Neutron resources carry string tags `armada:environment=<env>` and
 * `armada:resource=<address>` (filterable with `?tags=`). Nova servers carry one filterable tag for
 * the environment (tags are at most 60 characters, so a long name is hashed) and the full
 * ownership in their key/value metadata. Key pairs have neither: the ownership is their name.
 */
import { createHash } from 'node:crypto';
import {
  NotFoundError,
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  ValidationError,
  createKey,
  lookWithin,
  parseAddress,
  waitUntil,
  type ApplyContext,
  type CreateAttempts,
  type ProbeResult,
  type ResourceAddress,
  type ResourceKind,
} from '@armada/core';
import type { OpenStackClient } from './client.js';
import { OPENSTACK_PROVIDER_ID } from './errors.js';

export interface OpenStackContext {
  client: OpenStackClient;
  pollIntervalMs: number;
  waitTimeoutMs: number;
  /** The external network for routers and floating IPs: its name, or the first external one. */
  externalNetworkId(): Promise<string>;
  /** Flavor name -> id, from GET /flavors/detail (cached). */
  flavorId(name: string): Promise<string>;
  /**
   * How long something just made may be missing from lists and GETs (Neutron's and Nova's
   * eventual consistency): how long a retry looks for what an unanswered create may have made.
   */
  consistencyWindowMs: number;
  /** What each create call of a run came to; see createOnce. */
  attempts: CreateAttempts;
}

/** Nova microversion: 2.52 gives server tags on create and flavor names in server views. */
export const NOVA_MICROVERSION = '2.52';

// ---------------------------------------------------------------- ownership

export const environmentTag = (environment: string) => `${OWNERSHIP_TAG_ENVIRONMENT}=${environment}`;

/** `{ 'armada:environment': 'x', ... }` as Neutron string tags. */
export function neutronTags(tags: Record<string, string>): string[] {
  return Object.entries(tags).map(([key, value]) => `${key}=${value}`);
}

/** The address a Neutron resource's tags name, when it belongs to `environment` and is of `kind`. */
export function ownerOf(tags: readonly string[] | undefined, environment: string, kind: ResourceKind): { address: ResourceAddress; name: string } | undefined {
  if (!tags?.includes(environmentTag(environment))) return undefined;
  const prefix = `${OWNERSHIP_TAG_RESOURCE}=`;
  const address = tags.find((tag) => tag.startsWith(prefix))?.slice(prefix.length) as ResourceAddress | undefined;
  if (!address?.startsWith(`${kind}.`)) return undefined;
  return { address, name: parseAddress(address).name };
}

/** Other Armada tags on Neutron resources: `armada:cidr=10.0.0.0/16`. */
export function tagValue(tags: readonly string[] | undefined, key: string): string | undefined {
  return tags?.find((tag) => tag.startsWith(`${key}=`))?.slice(key.length + 1);
}

/** The filterable server tag of an environment (Nova tags are at most 60 characters). */
export function serverEnvironmentTag(environment: string): string {
  const plain = `armada:env=${environment}`;
  return plain.length <= 60 ? plain : `armada:env#${createHash('sha256').update(environment).digest('hex').slice(0, 32)}`;
}

/** Key pairs keep ownership in their name: `armada.<environment>.<logical name>`. */
export function keyPairCloudName(environment: string, name: string): string {
  return `armada.${environment}.${name}`;
}

export function parseKeyPairCloudName(cloudName: string): { environment: string; name: string } | undefined {
  // Environment names have no dots, so the first two dots delimit it.
  const match = /^armada\.([A-Za-z0-9-]+)\.(.+)$/.exec(cloudName);
  return match ? { environment: match[1] as string, name: match[2] as string } : undefined;
}

// ---------------------------------------------------------------- helpers

export function waitFor<T>(context: OpenStackContext, description: string, probe: () => Promise<ProbeResult<T>>, signal?: AbortSignal): Promise<T> {
  return waitUntil(probe, {
    description,
    minDelayMs: context.pollIntervalMs,
    maxDelayMs: context.pollIntervalMs * 20,
    timeoutMs: context.waitTimeoutMs,
    provider: OPENSTACK_PROVIDER_ID,
    ...(signal ? { signal } : {}),
  });
}

/**
 * Retries a call while it fails with NotFound because something it names was made a moment ago
 * and is not visible yet. Only NotFound, which means the call took no effect; anything else goes
 * back to the executor.
 */
export async function whenVisible<T>(context: OpenStackContext, description: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const outcome = await waitFor<{ value: T } | { error: unknown }>(
    context,
    description,
    async () => {
      try {
        return { done: true, value: { value: await call() } };
      } catch (error) {
        if (NotFoundError.isInstance(error)) return { done: false, state: 'not visible yet' };
        return { done: true, value: { error } };
      }
    },
    signal,
  );
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

// ---------------------------------------------------------------- creates without a token
// Core's CreateAttempts does the bookkeeping (see there); these name the calls the OpenStack way.

/**
 * `find`, asked again every poll interval until it finds something or `windowMs` has passed:
 * what was made a moment ago may not be listed yet. `windowMs` 0 asks once.
 */
export function findWithin<T>(context: OpenStackContext, windowMs: number, find: () => Promise<T | undefined>, signal?: AbortSignal): Promise<T | undefined> {
  return lookWithin(find, { windowMs, pollIntervalMs: context.pollIntervalMs, ...(signal ? { signal } : {}) });
}

/**
 * What an earlier attempt of this create made (`what`: one logical resource may need several, an
 * instance a port, a server, a floating IP), or undefined. Asked on a first attempt too: parts the
 * planner never sees (a port, a router) may be left from an interrupted run.
 */
export function findEarlierAttempt<T>(context: OpenStackContext, apply: ApplyContext, address: ResourceAddress, what: string, find: () => Promise<T | undefined>): Promise<T | undefined> {
  return context.attempts.find(createKey(apply, address, what), find, apply.signal);
}

/** Runs the create call itself and remembers what it came to, for a retry of the whole create. */
export function rememberingOutcome<T>(context: OpenStackContext, apply: ApplyContext, address: ResourceAddress, what: string, create: () => Promise<T>): Promise<T> {
  return context.attempts.remember(createKey(apply, address, what), create);
}

/** The two together: what an earlier attempt made, or what `create` makes now. */
export function createOnce<T>(
  context: OpenStackContext,
  apply: ApplyContext,
  address: ResourceAddress,
  what: string,
  calls: { find: () => Promise<T | undefined>; create: () => Promise<T> },
): Promise<T> {
  return context.attempts.once(createKey(apply, address, what), calls, apply.signal);
}

/** Deleting what is already gone is success. */
export async function ignoreNotFound(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (!NotFoundError.isInstance(error)) throw error;
  }
}

/** Waits until a GET answers 404. */
export function waitGone(context: OpenStackContext, description: string, get: () => Promise<unknown>, signal?: AbortSignal): Promise<void> {
  return waitFor<undefined>(
    context,
    description,
    async () => {
      try {
        await get();
        return { done: false, state: 'still there' };
      } catch (error) {
        if (NotFoundError.isInstance(error)) return { done: true, value: undefined };
        throw error;
      }
    },
    signal,
  );
}

export function invalid(message: string, path: string, fix: string): ValidationError {
  return new ValidationError(message, { provider: OPENSTACK_PROVIDER_ID, issues: [{ path, message, fix }] });
}
