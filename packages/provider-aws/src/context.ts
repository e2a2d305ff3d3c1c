import type { EC2Client, InternetGateway } from '@aws-sdk/client-ec2';
import type { Route53Client } from '@aws-sdk/client-route-53';
import { NotFoundError, waitUntil, type ApplyContext, type CreateAttempts, type ProbeResult, type ResourceAddress } from '@armada/core';
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
  /**
   * Creates with no idempotency token (CreateVpc, CreateInternetGateway): what each came to, so a
   * retry reuses what it made, or looks for it for as long as EC2 may hide it (core's CreateAttempts).
   */
  attempts: CreateAttempts;
  /** Gateways being made for networks an interrupted run left without one, by VPC id (see repairGateway). */
  gatewayRepairs: Map<string, Promise<InternetGateway>>;
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
