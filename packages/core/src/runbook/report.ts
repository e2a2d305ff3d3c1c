/** The migration report as text for a person; `JSON.stringify(report)` is the machine form. */
import type { MigrationReport } from './runbook.js';

const seconds = (ms: number | undefined) => (ms === undefined ? '' : ` (${(ms / 1000).toFixed(1)} s)`);

export function renderMigrationReport(report: MigrationReport): string {
  const lines = [`Migration ${report.migration}: ${report.status}${report.resumed ? ', resumed' : ''} in ${(report.durationMs / 1000).toFixed(1)} s`];
  if (report.preflight) {
    lines.push(`  ${'checked'.padEnd(12)} Preflight: nothing wrong in ${report.preflight.checked.length} checks`);
    for (const what of report.preflight.checked) lines.push(`                 ${what}`);
  }
  for (const step of report.steps) {
    lines.push(`  ${step.status.padEnd(12)} ${step.title}${seconds(step.durationMs)}${step.summary ? `: ${step.summary}` : ''}${step.error ? `: ${step.error}` : ''}`);
    for (const detail of step.details ?? []) lines.push(`                 ${detail}`);
  }
  if (report.cutoverAt) lines.push(`  cutover at ${report.cutoverAt}`);
  if (report.writeDowntimeMs !== undefined) lines.push(`  write downtime ${report.writeDowntimeMs} ms`);
  if (report.failure) lines.push(`  to resume: ${report.failure.resume}`);
  return lines.join('\n');
}
