import type { EC2Client, InternetGateway } from '@aws-sdk/client-ec2';
import type { Route53Client } from '@aws-sdk/client-route-53';
import { ConnectionError, NotFoundError, waitUntil, type ApplyContext, type ProbeResult, type ResourceAddress } from '@armada/core';
import { AWS_PROVIDER_ID } from './errors.js';

/** What every service of one provider instance shares. */
export interface AwsContext {
  ec2: EC2Client;
  route53: Route53Client;
  region: string;
  /** First poll delay and timeout of the waiters. */
  pollIntervalMs: number;
  waitTimeoutMs: number;
  pageSize: number;
  /** Creates already attempted in this run, by idempotency token (see isRetriedCreate). */
  attemptedCreates: Set<string>;
  /** Creates whose outcome is unknown (no reply came: it may have taken effect), by the same key. */
  uncertainCreates: Set<string>;
  /** How long a resource just made may stay invisible to Describe calls (EC2's eventual consistency). */
  consistencyWindowMs: number;
  /** Gateways being made for networks an interrupted run left without one, by VPC id (see repairGateway). */
  gatewayRepairs: Map<string, Promise<InternetGateway>>;
}

/**
 * A create call with no idempotency token (CreateVpc, CreateInternetGateway) whose outcome is
 * remembered: when no reply came (a ConnectionError: it may have taken effect), `key` is marked
 * uncertain, so that the retry looks for what it may have made for as long as EC2 may hide it.
 */
export async function rememberingOutcome<T>(context: AwsContext, key: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (ConnectionError.isInstance(error)) context.uncertainCreates.add(key);
    throw error;
  }
}

/**
 * What an earlier attempt of `key` made, found by `lookUp`: asked once, or, when that attempt's
 * outcome is unknown, again until the consistency window has passed (a resource made a moment ago
 * may not be listed yet, and creating a second one would leave the first an orphan).
 */
export async function findEarlierAttempt<T>(context: AwsContext, key: string, lookUp: () => Promise<T | undefined>, signal?: AbortSignal): Promise<T | undefined> {
  const deadline = Date.now() + (context.uncertainCreates.has(key) ? context.consistencyWindowMs : 0);
  for (;;) {
    const found = await lookUp();
    if (found !== undefined || Date.now() >= deadline || signal?.aborted) return found;
    await new Promise((resolve) => setTimeout(resolve, Math.min(context.pollIntervalMs, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * Whether this create was attempted before in this run. Only a retried create can find something
 * an earlier attempt made (the planner saw nothing there), so only a retry pays for the look-up
 * that adopts it: the first attempt goes straight to the create call.
 */
export function isRetriedCreate(context: AwsContext, apply: ApplyContext, address: ResourceAddress): boolean {
  const token = apply.idempotencyToken(address);
  if (context.attemptedCreates.has(token)) return true;
  context.attemptedCreates.add(token);
  return false;
}

/** Polls with the provider's waiter settings. */
export function waitFor<T>(context: AwsContext, description: string, probe: () => Promise<ProbeResult<T>>, signal?: AbortSignal): Promise<T> {
  return waitUntil(probe, {
    description,
    minDelayMs: context.pollIntervalMs,
    maxDelayMs: context.pollIntervalMs * 30,
    timeoutMs: context.waitTimeoutMs,
    provider: AWS_PROVIDER_ID,
    ...(signal ? { signal } : {}),
  });
}

/**
 * Runs a follow-up step of a create (the calls after the one that made the resource). It names
 * a resource made moments ago, which EC2 may not see yet (`*.NotFound`), and it may be throttled:
 * both are retried here, until the waiter's timeout, so that a throttled follow-up never makes the
 * executor repeat the whole create (and the create call with it).
 */
export function followUp<T>(context: AwsContext, description: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return waitFor(context, description, async () => ({ done: true, value: await call() }), signal);
}

/** A follow-up whose "already done" error means a lost response had in fact taken effect. */
export async function tolerating<T>(isAlreadyDone: (error: unknown) => boolean, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (isAlreadyDone(error)) return undefined;
    throw error;
  }
}

/** Deletes tolerate "gone". */
export async function ignoreNotFound(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (!NotFoundError.isInstance(error)) throw error;
  }
}
