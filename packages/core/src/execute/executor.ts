/**
 * The executor runs a plan as a dependency graph: each resource step starts as soon as what it
 * needs is done, at most `concurrency` at a time, retrying retryable errors within a budget. When a
 * step fails, what depends on it is not started and everything else goes on; the result says
 * exactly what was done and what was not.
 */
import { createHash } from 'node:crypto';
import { ArmadaError, CancelledError, toArmadaError } from '../errors.js';
import type { ApplyContext, ProviderV1, ResourceService } from '../provider.js';
import {
  EXISTENCE_ONLY_REFERENCES,
  dependenciesOf,
  ownershipTags,
  referencesOf,
  type DesiredResource,
  type ObservedResource,
  type ResourceAddress,
  type ResourceKind,
} from '../resources.js';
import type { Plan, PlanAction } from '../plan/types.js';
import { withRetries, type RetryPolicy } from './retry.js';

export type StepType = 'create' | 'update' | 'delete';

export interface StepRef {
  address: ResourceAddress;
  step: StepType;
  /** The cloud id, for deletes. */
  id?: string;
}

export type ExecutionEvent =
  | ({ type: 'started' } & StepRef)
  | ({ type: 'succeeded'; durationMs: number } & StepRef)
  | ({ type: 'retried'; attempt: number; error: ArmadaError } & StepRef)
  | ({ type: 'failed'; error: ArmadaError } & StepRef)
  | ({ type: 'skipped'; reason: string } & StepRef);

export interface ExecuteOptions {
  provider: ProviderV1;
  /** Steps running at once. Default 10. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  onEvent?: (event: ExecutionEvent) => void;
}

export interface ExecutionResult {
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Steps that completed, in completion order. */
  done: StepRef[];
  failed: Array<StepRef & { error: ArmadaError }>;
  /** Steps never started, and why (a failed dependency, or cancellation). */
  notDone: Array<StepRef & { reason: string }>;
  /** What the environment holds after the run, as far as the run knows. */
  resources: ObservedResource[];
}

interface Step extends StepRef {
  key: string;
  action: PlanAction;
  /** Keys of the steps this one waits for. */
  needs: Set<string>;
  /** Of those, the ones whose resource need only exist (see EXISTENCE_ONLY_REFERENCES). */
  existenceOnly: Set<string>;
  /** Keys of the steps waiting for this one. */
  unlocks: string[];
  state: 'waiting' | 'running' | 'done' | 'failed' | 'skipped';
}

const stepKey = (step: StepType, address: ResourceAddress, id?: string) => `${step}:${address}${id ? `#${id}` : ''}`;

/** Builds the step graph of a plan. Exported for tests. */
export function buildSteps(plan: Plan): Map<string, Step> {
  const steps = new Map<string, Step>();
  const add = (action: PlanAction, step: StepType, id?: string): Step => {
    const created: Step = { key: stepKey(step, action.address, id), address: action.address, step, ...(id ? { id } : {}), action, needs: new Set(), existenceOnly: new Set(), unlocks: [], state: 'waiting' };
    steps.set(created.key, created);
    return created;
  };
  const applyStepAt = new Map<ResourceAddress, Step>();
  const deleteSteps: Array<{ step: Step; current: ObservedResource }> = [];
  for (const action of plan.actions) {
    if ((action.type === 'delete' || action.type === 'replace') && action.current) {
      deleteSteps.push({ step: add(action, 'delete', action.current.id), current: action.current });
    }
    if (action.type === 'create' || action.type === 'replace') applyStepAt.set(action.address, add(action, 'create'));
    if (action.type === 'update') applyStepAt.set(action.address, add(action, 'update'));
  }
  // Creates and updates wait for the creates of what they depend on; a replacement's create waits
  // for the old one's delete (names are often unique, so destroy before create).
  for (const step of applyStepAt.values()) {
    const desired = step.action.desired;
    const existenceOnly = new Set(EXISTENCE_ONLY_REFERENCES[step.action.kind] ?? []);
    const references = desired ? referencesOf(desired.kind, desired.properties) : [];
    for (const dependency of desired?.dependsOn ?? []) {
      const needed = applyStepAt.get(dependency);
      if (needed?.step !== 'create') continue;
      step.needs.add(needed.key);
      const through = references.filter((reference) => reference.address === dependency);
      if (through.length > 0 && through.every((reference) => existenceOnly.has(reference.property))) step.existenceOnly.add(needed.key);
    }
    if (step.step === 'create' && step.action.type === 'replace' && step.action.current) {
      step.needs.add(stepKey('delete', step.address, step.action.current.id));
    }
  }
  // A delete waits until nothing refers to the resource any more: the deletes of its dependents,
  // and the updates of resources whose current state still refers to it.
  const referrers = new Map<ResourceAddress, string[]>();
  const noteReferrer = (current: ObservedResource, key: string) => {
    for (const address of dependenciesOf(current.kind, current.name, current.properties)) {
      const list = referrers.get(address);
      if (list) list.push(key);
      else referrers.set(address, [key]);
    }
  };
  for (const { step, current } of deleteSteps) {
    noteReferrer(current, step.key);
    // A replacement's old resource also sits on what the provider made it depend on (adapt()).
    for (const address of step.action.desired?.dependsOn ?? []) {
      const list = referrers.get(address);
      if (!list) referrers.set(address, [step.key]);
      else if (!list.includes(step.key)) list.push(step.key);
    }
  }
  for (const step of applyStepAt.values()) if (step.step === 'update' && step.action.current) noteReferrer(step.action.current, step.key);
  for (const { step } of deleteSteps) {
    for (const key of referrers.get(step.address) ?? []) if (key !== step.key) step.needs.add(key);
  }
  for (const step of steps.values()) for (const key of step.needs) steps.get(key)?.unlocks.push(step.key);
  return steps;
}

function serviceOf(provider: ProviderV1, kind: ResourceKind): ResourceService<ResourceKind> {
  const service = provider.services[kind] as ResourceService<ResourceKind> | undefined;
  if (!service) throw new ArmadaError('Unsupported', `Provider "${provider.id}" has no ${kind} service.`, { provider: provider.id });
  return service;
}

export async function executePlan(plan: Plan, options: ExecuteOptions): Promise<ExecutionResult> {
  const { provider, onEvent } = options;
  const concurrency = Math.max(1, options.concurrency ?? 10);
  const signal = options.signal ?? new AbortController().signal;
  const steps = buildSteps(plan);

  // What exists, by address: starts as discovered, follows every completed step.
  const known = new Map<ResourceAddress, ObservedResource>();
  for (const action of plan.actions) if (action.current && action.type !== 'delete') known.set(action.address, action.current);

  const context: ApplyContext = {
    environment: plan.environment,
    signal,
    resourceAt(address) {
      const resource = known.get(address);
      if (!resource) throw new ArmadaError('NotFound', `${address} does not exist yet; it should have been created first.`);
      return resource;
    },
    idOf: (address) => context.resourceAt(address).id,
    ownershipTags: (address) => ownershipTags(plan.environment, address),
    idempotencyToken: (address) => createHash('sha256').update(`${plan.id}/${address}`).digest('hex'),
    announce(resource) {
      known.set(resource.address, resource);
      const step = steps.get(stepKey('create', resource.address));
      if (step?.state === 'running') unlock(step, true);
    },
  };
  // Set once the scheduler runs: makes a step's dependents ready (all, or the existence-only ones).
  let unlock: (step: Step, existenceOnly: boolean) => void = () => {};

  const result: ExecutionResult = { status: 'succeeded', done: [], failed: [], notDone: [], resources: [] };
  const refOf = (step: Step): StepRef => ({ address: step.address, step: step.step, ...(step.id ? { id: step.id } : {}) });

  async function run(step: Step): Promise<void> {
    const service = serviceOf(provider, step.action.kind);
    const retry = {
      ...options.retry,
      signal,
      provider: provider.id,
      onRetry: (error: ArmadaError, attempt: number) => onEvent?.({ type: 'retried', ...refOf(step), attempt, error }),
    };
    if (step.step === 'delete') {
      const current = step.action.current as ObservedResource;
      await withRetries(() => service.delete(current, context), retry);
      if (known.get(step.address)?.id === current.id) known.delete(step.address);
      return;
    }
    const desired = step.action.desired as DesiredResource;
    const observed =
      step.step === 'create'
        ? await withRetries(() => service.create(desired.chosen ? { ...desired, properties: { ...desired.chosen, ...desired.properties } } : desired, context), retry)
        : await withRetries(() => {
            if (!service.update) throw new ArmadaError('Unsupported', `${step.address} cannot be updated in place.`);
            return service.update(desired, step.action.current as ObservedResource, context);
          }, retry);
    // Under the address it now has, whatever the provider copied from `current` (a moved resource).
    known.set(step.address, { ...observed, address: desired.address, name: desired.name });
  }

  function skipDependents(step: Step, reason: string) {
    const pending = [...step.unlocks];
    for (let key = pending.pop(); key !== undefined; key = pending.pop()) {
      const dependent = steps.get(key);
      if (dependent?.state !== 'waiting') continue;
      dependent.state = 'skipped';
      result.notDone.push({ ...refOf(dependent), reason });
      onEvent?.({ type: 'skipped', ...refOf(dependent), reason });
      pending.push(...dependent.unlocks);
    }
  }

  await new Promise<void>((resolve) => {
    const ready: Step[] = [];
    let next = 0;
    let running = 0;
    for (const step of steps.values()) {
      step.state = 'waiting';
      if (step.needs.size === 0) ready.push(step);
    }
    unlock = (step, existenceOnly) => {
      for (const key of step.unlocks) {
        const dependent = steps.get(key);
        if (dependent?.state !== 'waiting' || !dependent.needs.has(step.key)) continue;
        if (existenceOnly && !dependent.existenceOnly.has(step.key)) continue;
        dependent.needs.delete(step.key);
        if (dependent.needs.size === 0) ready.push(dependent);
      }
      if (existenceOnly) pump();
    };
    const pump = () => {
      while (running < concurrency && next < ready.length && !signal.aborted) {
        const step = ready[next++] as Step;
        if (step.state !== 'waiting') continue;
        step.state = 'running';
        running++;
        const started = performance.now();
        onEvent?.({ type: 'started', ...refOf(step) });
        run(step).then(
          () => {
            step.state = 'done';
            result.done.push(refOf(step));
            onEvent?.({ type: 'succeeded', ...refOf(step), durationMs: performance.now() - started });
            unlock(step, false);
          },
          (error: unknown) => {
            step.state = 'failed';
            const armadaError = signal.aborted && !ArmadaError.isInstance(error) ? new CancelledError() : toArmadaError(error, provider.id);
            result.failed.push({ ...refOf(step), error: armadaError });
            onEvent?.({ type: 'failed', ...refOf(step), error: armadaError });
            skipDependents(step, `${step.step} of ${step.address} failed`);
          },
        ).finally(() => {
          running--;
          pump();
        });
      }
      if (running === 0 && (next >= ready.length || signal.aborted)) resolve();
    };
    pump();
  });

  for (const step of steps.values()) {
    if (step.state === 'waiting') {
      step.state = 'skipped';
      result.notDone.push({ ...refOf(step), reason: signal.aborted ? 'cancelled' : 'a step it needs did not complete' });
    }
  }
  result.resources = [...known.values()];
  result.status = signal.aborted ? 'cancelled' : result.failed.length > 0 || result.notDone.length > 0 ? 'failed' : 'succeeded';
  return result;
}

export function formatExecutionResult(result: ExecutionResult): string {
  const lines = [`Execution ${result.status}: ${result.done.length} step(s) done, ${result.failed.length} failed, ${result.notDone.length} not done.`];
  for (const failure of result.failed) lines.push(`  failed   ${failure.step} ${failure.address}: [${failure.error.code}] ${failure.error.message}`);
  for (const skipped of result.notDone) lines.push(`  not done ${skipped.step} ${skipped.address}: ${skipped.reason}`);
  return lines.join('\n');
}
