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
  CancelledError,
  ConnectionError,
  NotFoundError,
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  ValidationError,
  parseAddress,
  sleep,
  waitUntil,
  type ApplyContext,
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
  /** What each create call of a run came to, by createKey(); see createOnce. */
  creates: Map<string, CreateOutcome>;
}

/** The reply of a create call (what it made), or `unanswered`: no reply came, it may have taken effect. */
export type CreateOutcome = { made: unknown } | 'unanswered';

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

/**
 * Names one create call of one run: the executor's idempotency token for the address (the same
 * for every retry of its create in this run, new in the next run) and what is made for it, since
 * one logical resource may need several (an instance: a port, a server, a floating IP).
 */
function createKey(apply: ApplyContext, address: ResourceAddress, what: string): string {
  return `${apply.idempotencyToken(address)}/${what}`;
}

/**
 * `find`, asked again every poll interval until it finds something or `windowMs` has passed:
 * what was made a moment ago may not be listed yet. `windowMs` 0 asks once.
 */
export async function findWithin<T>(context: OpenStackContext, windowMs: number, find: () => Promise<T | undefined>, signal?: AbortSignal): Promise<T | undefined> {
  const deadline = performance.now() + windowMs;
  for (;;) {
    // Never go on to create something after the run was cancelled.
    if (signal?.aborted) throw new CancelledError('Cancelled while looking for what an earlier attempt made.');
    const found = await find();
    const left = deadline - performance.now();
    if (found !== undefined || left <= 0) return found;
    await sleep(Math.min(context.pollIntervalMs, left), signal);
  }
}

/**
 * What an earlier attempt of this create made, or undefined:
 * - what a create call of this run already returned, without asking: a list may not show it yet;
 * - else what `find` finds (by ownership tags): asked once, or, when an earlier attempt got no
 *   reply, again and again until the consistency window has passed, because what that attempt
 *   made may not be listed yet. A throttled attempt took no effect and costs no wait.
 * Asked on a first attempt too: parts the planner never sees (a port, a router) may be left from
 * an interrupted run.
 */
export async function findEarlierAttempt<T>(context: OpenStackContext, apply: ApplyContext, address: ResourceAddress, what: string, find: () => Promise<T | undefined>): Promise<T | undefined> {
  const key = createKey(apply, address, what);
  const earlier = context.creates.get(key);
  if (earlier !== undefined && earlier !== 'unanswered') return earlier.made as T;
  const found = await findWithin(context, earlier === 'unanswered' ? context.consistencyWindowMs : 0, find, apply.signal);
  if (found !== undefined) context.creates.set(key, { made: found });
  return found;
}

/**
 * Runs the create call itself and remembers what it came to: what it made, for a retry of the
 * whole create (a later step may fail), or that no reply came (a ConnectionError), so that the
 * retry waits for what it may have made (findEarlierAttempt) before it creates again.
 */
export async function rememberingOutcome<T>(context: OpenStackContext, apply: ApplyContext, address: ResourceAddress, what: string, create: () => Promise<T>): Promise<T> {
  const key = createKey(apply, address, what);
  try {
    const made = await create();
    context.creates.set(key, { made });
    return made;
  } catch (error) {
    if (ConnectionError.isInstance(error)) context.creates.set(key, 'unanswered');
    throw error;
  }
}

/** The two together: what an earlier attempt made, or what `create` makes now. */
export async function createOnce<T>(
  context: OpenStackContext,
  apply: ApplyContext,
  address: ResourceAddress,
  what: string,
  calls: { find: () => Promise<T | undefined>; create: () => Promise<T> },
): Promise<T> {
  return (await findEarlierAttempt(context, apply, address, what, calls.find)) ?? (await rememberingOutcome(context, apply, address, what, calls.create));
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
