/**
 * Human output: plans with colour, policy findings, the result of a run.
 */
import {
  SENSITIVE_PROPERTIES,
  formatViolations,
  planToJSON,
  renderPlanText,
  type ExecutionResult,
  type ObservedResource,
  type Plan,
  type ResourceKind,
  type Violation,
} from '@armada/core';
import type { Style } from './io.js';

type Paint = (style: Style, text: string) => string;

const ACTION_STYLES: Array<[RegExp, Style]> = [
  [/^ {4}\+ /, 'green'],
  [/^ {4}~ /, 'yellow'],
  [/^ {2}-\/\+ /, 'yellow'],
  [/^ {4}- /, 'red'],
  [/^ {2}warning: /, 'yellow'],
  [/^ {2}note: /, 'dim'],
  [/^ {8}\S.*# forces replacement$/, 'yellow'],
];

/** core's renderPlanText, coloured line by line when colour is on. */
export function renderPlan(plan: Plan, paint: Paint, options: { showUnchanged?: boolean } = {}): string {
  const lines = renderPlanText(plan, options).split('\n');
  return lines
    .map((line, index) => {
      if (index === 0 || index === lines.length - 1) return paint('bold', line);
      const style = ACTION_STYLES.find(([pattern]) => pattern.test(line))?.[1];
      return style ? paint(style, line) : line;
    })
    .join('\n');
}

export function renderViolations(violations: readonly Violation[], paint: Paint): string {
  return formatViolations(violations)
    .split('\n')
    .map((line) => (line.startsWith('error') ? paint('red', line) : line.startsWith('warning') ? paint('yellow', line) : line))
    .map((line) => `  ${line}`)
    .join('\n');
}

export function summariseExecution(result: ExecutionResult, paint: Paint): string {
  const head = `${result.done.length} step(s) done, ${result.failed.length} failed, ${result.notDone.length} not done.`;
  const lines = [
    result.status === 'succeeded'
      ? paint('green', `Succeeded: ${head}`)
      : paint('red', `${result.status === 'cancelled' ? 'Interrupted' : 'Failed'}: ${head}`),
  ];
  for (const failure of result.failed) lines.push(`  ${paint('red', 'failed')}   ${failure.step} ${failure.address}: [${failure.error.code}] ${failure.error.message}`);
  for (const skipped of result.notDone) lines.push(`  not done ${skipped.step} ${skipped.address}: ${skipped.reason}`);
  return lines.join('\n');
}

/** One line per instance with its addresses, for after an apply and for status. */
export function renderInstances(resources: readonly ObservedResource[]): string[] {
  return resources
    .filter((resource) => resource.kind === 'instance')
    .map((resource) => {
      const outputs = resource.outputs as { privateIp?: string; publicIp?: string };
      return `  ${resource.address.padEnd(24)} ${resource.id.padEnd(22)} private ${outputs.privateIp ?? '-'}  public ${outputs.publicIp ?? '-'}`;
    });
}

function maskedProperties(resource: ObservedResource): Record<string, unknown> {
  const sensitive = SENSITIVE_PROPERTIES[resource.kind as ResourceKind] as readonly string[];
  return Object.fromEntries(Object.entries(resource.properties).map(([key, value]) => [key, sensitive.includes(key) && value !== undefined ? '(sensitive)' : value]));
}

/** Resources for --json: sensitive values masked, as in plans. */
export function resourcesToJSON(resources: readonly ObservedResource[]): unknown[] {
  return resources.map((resource) => ({ ...resource, properties: maskedProperties(resource) }));
}

export function executionToJSON(result: ExecutionResult): unknown {
  return {
    status: result.status,
    done: result.done,
    failed: result.failed.map((failure) => ({ ...failure, error: failure.error.toJSON() })),
    notDone: result.notDone,
    resources: resourcesToJSON(result.resources),
  };
}

export { planToJSON };
