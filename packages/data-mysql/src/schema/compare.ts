/** What every kind's compare shares: pairing objects by name, and saying what differs. */
import type { VerifyDifference } from '@armada/core';
import type { CompareResult } from './types.js';

export interface Comparable {
  /** How reports name it: `view shop.v`, `function shop.f`. Unique within a kind and database. */
  object: string;
  /** DEFINER as `user`@`host`, when it has one. */
  definer?: string | undefined;
}

/** Where two texts part, with a little of each around it: enough to see the change in a long body. */
export function textDifference(source: string, target: string): string {
  let at = 0;
  while (at < source.length && at < target.length && source[at] === target[at]) at++;
  const around = (text: string) => {
    const from = Math.max(0, at - 30);
    const shown = text.slice(from, at + 50).replace(/\s+/g, ' ');
    return `${from > 0 ? '…' : ''}${shown}${at + 50 < text.length ? '…' : ''}`;
  };
  return `definition differs at character ${at + 1}: ${JSON.stringify(around(source))} on the source, ${JSON.stringify(around(target))} on the target`;
}

/** "sql_mode X on the source, Y on the target" when they differ (compared without regard to case). */
export function setting(name: string, source: string | number | undefined, target: string | number | undefined): string[] {
  const shown = (value: string | number | undefined) => (value === undefined || value === '' ? '(none)' : String(value));
  return shown(source).toLowerCase() === shown(target).toLowerCase() ? [] : [`${name} ${shown(source)} on the source, ${shown(target)} on the target`];
}

/**
 * Pairs the objects of both sides by `object`: missing, extra, and different ones (one difference
 * per object, its parts joined). A DEFINER the target has no account for is what the copy reported
 * and replaced by its login: a note, not a difference; another definer is a difference.
 */
export function compareObjects<T extends Comparable>(
  sourceObjects: T[],
  targetObjects: T[],
  differ: (source: T, target: T) => string[],
  targetHasAccount: (definer: string) => boolean,
): CompareResult {
  const differences: VerifyDifference[] = [];
  const notes: string[] = [];
  const onTarget = new Map(targetObjects.map((object) => [object.object, object]));
  const onSource = new Set(sourceObjects.map((object) => object.object));
  for (const source of sourceObjects) {
    const target = onTarget.get(source.object);
    if (!target) {
      differences.push({ object: source.object, kind: 'missing', detail: 'on the source, not on the target' });
      continue;
    }
    const parts = differ(source, target);
    if (source.definer !== target.definer) {
      if (source.definer !== undefined && !targetHasAccount(source.definer)) notes.push(`${source.object}: DEFINER ${source.definer} is not on the target; it has ${target.definer ?? 'none'} there`);
      else parts.push(`DEFINER ${source.definer ?? '(none)'} on the source, ${target.definer ?? '(none)'} on the target`);
    }
    if (parts.length > 0) differences.push({ object: source.object, kind: 'different', detail: parts.join('; ') });
  }
  for (const target of targetObjects) {
    if (!onSource.has(target.object)) differences.push({ object: target.object, kind: 'extra', detail: 'on the target, not on the source' });
  }
  return { compared: sourceObjects.length + targetObjects.filter((target) => !onSource.has(target.object)).length, differences, notes };
}
