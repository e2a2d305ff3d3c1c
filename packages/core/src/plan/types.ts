import type { PlanNote } from '../provider.js';
import type { DesiredResource, ObservedResource, ResourceAddress, ResourceKind } from '../resources.js';

export type ActionType = 'create' | 'update' | 'replace' | 'delete' | 'noop';

export interface PropertyChange {
  property: string;
  before: unknown;
  after: unknown;
  /** The property cannot change in place (or a dependency it names is replaced). */
  forcesReplacement: boolean;
  /** Values are secret: renderers print `(sensitive)` instead. */
  sensitive: boolean;
}

export interface PlanAction {
  address: ResourceAddress;
  kind: ResourceKind;
  name: string;
  type: ActionType;
  /** What should exist (absent for delete). */
  desired?: DesiredResource;
  /** What exists now (absent for create). */
  current?: ObservedResource;
  changes: PropertyChange[];
  /**
   * The address `current` has now, when the resource is kept under a new one (an instance group
   * scaled from 1 to 2 keeps `web` as `web-1`): the update re-labels it. See DesiredResource.movedFrom.
   */
  movedFrom?: ResourceAddress;
  /** Why, in a few words, when it is not obvious: "subnet.public is replaced". */
  reason?: string;
}

export interface Plan {
  /** Random id of this plan: scopes idempotency tokens to one run. */
  id: string;
  environment: string;
  provider: { id: string; region: string };
  /** `apply` plans converge on the spec; `destroy` plans delete everything the environment owns. */
  mode: 'apply' | 'destroy';
  /** In dependency order (creates: dependencies first; deletes: dependents first). */
  actions: PlanAction[];
  notes: PlanNote[];
  summary: Record<ActionType, number>;
}

/** True when applying the plan would change nothing. */
export function isEmptyPlan(plan: Plan): boolean {
  return plan.actions.every((action) => action.type === 'noop');
}
