/**
 * Plans for people (text) and for tools (JSON). Sensitive values never appear in either.
 */
import { SENSITIVE_PROPERTIES, type ResourceKind } from '../resources.js';
import { stableStringify } from './planner.js';
import type { ActionType, Plan, PlanAction } from './types.js';

const MASK = '(sensitive)';

const SYMBOLS: Record<ActionType, string> = { create: '+', update: '~', replace: '-/+', delete: '-', noop: ' ' };

function maskProperties(kind: ResourceKind, properties: object | undefined): object | undefined {
  if (!properties) return properties;
  const sensitive = SENSITIVE_PROPERTIES[kind] as readonly string[];
  return Object.fromEntries(
    Object.entries(properties).map(([key, value]) => [key, sensitive.includes(key) && value !== undefined ? MASK : value]),
  );
}

function shortValue(value: unknown): string {
  if (value === undefined) return '(none)';
  return clip(JSON.stringify(value));
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A list (firewall rules, firewall names, DNS values) or a map (tags) changed: only what changed,
 * element by element. Shown whole, a long list is cut at 120 characters, and the one rule that
 * changed (443 -> 8443 in the fifth) would be cut out of the text.
 */
function elementChanges(before: unknown, after: unknown): string[] | undefined {
  if (Array.isArray(before) && Array.isArray(after)) {
    const left = before.map(stableStringify);
    const right = after.map(stableStringify);
    // As multisets: each element of one side matched once on the other.
    const unmatched = (from: string[], against: string[]) => {
      const pool = [...against];
      return from.filter((item) => {
        const at = pool.indexOf(item);
        if (at < 0) return true;
        pool.splice(at, 1);
        return false;
      });
    };
    const removed = unmatched(left, right);
    const added = unmatched(right, left);
    if (removed.length + added.length === 0) return [`order ${shortValue(before)} -> ${shortValue(after)}`];
    return [...removed.map((item) => `- ${clip(item)}`), ...added.map((item) => `+ ${clip(item)}`)];
  }
  if (isRecord(before) && isRecord(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => {
      const [was, now] = [before[key], after[key]];
      if (stableStringify(was) === stableStringify(now)) return [];
      return [`${key}: ${shortValue(was)} -> ${shortValue(now)}`];
    });
  }
  return undefined;
}

const clip = (text: string) => (text.length > 120 ? `${text.slice(0, 117)}...` : text);

function renderAction(action: PlanAction): string[] {
  const lines = [`  ${SYMBOLS[action.type].padStart(3)} ${action.address}${action.reason ? `  (${action.reason})` : ''}`];
  for (const change of action.changes) {
    const forces = change.forcesReplacement ? '  # forces replacement' : '';
    const elements = change.sensitive ? undefined : elementChanges(change.before, change.after);
    if (elements) {
      lines.push(`        ${change.property}:${forces}`);
      for (const element of elements) lines.push(`          ${element}`);
      continue;
    }
    const before = change.sensitive ? MASK : shortValue(change.before);
    const after = change.sensitive ? MASK : shortValue(change.after);
    lines.push(`        ${change.property}: ${before} -> ${after}${forces}`);
  }
  return lines;
}

export interface RenderOptions {
  /** Also list resources that do not change. */
  showUnchanged?: boolean;
}

export function renderPlanText(plan: Plan, options: RenderOptions = {}): string {
  const header = `${plan.mode === 'destroy' ? 'Destroy plan' : 'Plan'} for environment "${plan.environment}" on ${plan.provider.id} (${plan.provider.region})`;
  const lines = [header];
  const shown = plan.actions.filter((action) => options.showUnchanged || action.type !== 'noop');
  for (const action of shown) lines.push(...renderAction(action));
  for (const note of plan.notes) lines.push(`  ${note.severity === 'warning' ? 'warning' : 'note'}: ${note.path}: ${note.message}`);
  const { create, update, replace, delete: remove, noop } = plan.summary;
  lines.push(
    create + update + replace + remove === 0
      ? `No changes. ${noop} resource(s) up to date.`
      : `Plan: ${create} to create, ${update} to update, ${replace} to replace, ${remove} to delete, ${noop} unchanged.`,
  );
  return lines.join('\n');
}

/** A JSON-safe copy of the plan with sensitive values masked. */
export function planToJSON(plan: Plan): unknown {
  return {
    ...plan,
    actions: plan.actions.map((action) => ({
      ...action,
      desired: action.desired && { ...action.desired, properties: maskProperties(action.kind, action.desired.properties) },
      current: action.current && { ...action.current, properties: maskProperties(action.kind, action.current.properties) },
      changes: action.changes.map((change) => (change.sensitive ? { ...change, before: MASK, after: MASK } : change)),
    })),
  };
}

/**
 * How several providers honour the same spec, side by side: for every subnet and firewall, what
 * each provider's plan says it will make of it (its plan notes), or that it maps it natively.
 */
export function renderHonouringSideBySide(plans: readonly Plan[]): string {
  const addresses = [
    ...new Set(
      plans.flatMap((plan) => [
        ...plan.actions.filter((action) => action.kind === 'subnet' || action.kind === 'firewall').map((action) => action.address),
        ...plan.notes.map((note) => note.path).filter((path) => path.startsWith('subnet.') || path.startsWith('firewall.')),
      ]),
    ),
  ].sort();
  const lines = [`How each provider honours the spec of "${plans[0]?.environment ?? ''}"`];
  for (const address of addresses) {
    lines.push(`  ${address}`);
    for (const plan of plans) {
      const notes = plan.notes.filter((note) => note.path === address).map((note) => note.message);
      const planned = plan.actions.some((action) => action.address === address);
      const text = notes.length > 0 ? notes.join('; ') : planned ? 'made as written' : 'not made on this provider';
      lines.push(`    ${plan.provider.id.padEnd(14)} ${text}`);
    }
  }
  return lines.join('\n');
}
