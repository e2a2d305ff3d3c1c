/**
 * The policy engine: rules are plain typed functions over the parsed spec (and, when there is one,
 * the plan). Every rule runs and every violation is returned, so a user fixes a spec in one pass.
 */
import type { Plan } from '../plan/types.js';
import type { EnvironmentSpec } from '../spec/schema.js';

export type Severity = 'error' | 'warning';

export interface PolicyContext {
  spec: EnvironmentSpec;
  /** Present when the policies run on a plan (before apply), absent on the spec alone. */
  plan?: Plan;
}

/** What a rule reports. The engine adds the rule's id and its default severity. */
export interface PolicyFinding {
  /** Dotted path into the spec: `firewalls[1].ingress[0].from`. */
  path: string;
  message: string;
  /** How to fix it. */
  fix?: string;
  severity?: Severity;
}

export interface Violation extends PolicyFinding {
  rule: string;
  severity: Severity;
}

export interface PolicyRule {
  /** Stable id, used to report and to turn rules off: `no-any-any`. */
  id: string;
  description: string;
  /** Errors block apply; warnings are reported and do not. */
  severity: Severity;
  check(context: PolicyContext): PolicyFinding[];
}

/** Helper that gives a user's rule its types without a class. */
export function definePolicy(rule: PolicyRule): PolicyRule {
  return rule;
}

export interface PolicyReport {
  violations: Violation[];
  errors: Violation[];
  warnings: Violation[];
  /** True when nothing blocks apply (warnings allowed). */
  ok: boolean;
}

export function evaluatePolicies(context: PolicyContext, rules: readonly PolicyRule[]): PolicyReport {
  const violations: Violation[] = [];
  for (const rule of rules) {
    let findings: PolicyFinding[];
    try {
      findings = rule.check(context);
    } catch (error) {
      // A broken user rule must not hide the other rules' findings.
      findings = [
        {
          path: '',
          message: `policy rule threw: ${error instanceof Error ? error.message : String(error)}`,
          fix: `fix or remove the rule "${rule.id}"`,
          severity: 'error',
        },
      ];
    }
    for (const finding of findings) {
      violations.push({ ...finding, rule: rule.id, severity: finding.severity ?? rule.severity });
    }
  }
  return toReport(violations);
}

export function toReport(violations: Violation[]): PolicyReport {
  const errors = violations.filter((violation) => violation.severity === 'error');
  const warnings = violations.filter((violation) => violation.severity === 'warning');
  return { violations, errors, warnings, ok: errors.length === 0 };
}

export function formatViolations(violations: readonly Violation[]): string {
  return violations
    .map(
      (violation) =>
        `${violation.severity === 'error' ? 'error  ' : 'warning'} ${violation.path || '(root)'}: ${violation.message}` +
        `${violation.fix ? `\n        fix: ${violation.fix}` : ''}  [${violation.rule}]`,
    )
    .join('\n');
}
