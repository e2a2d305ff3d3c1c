/**
 * Reading the spec a command names, checking it, and finding its provider and state file.
 */
import {
  checkEnvironment,
  environmentSpecSchema,
  parseSpec,
  parseSpecText,
  safeParseSpec,
  readStateFile,
  type EnvironmentSpec,
  type PluginRegistry,
  type ProviderV1,
  type StateFile,
  type ValidationIssue,
  type Violation,
} from '@armada/core';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UsageError, ViolationsError } from './errors.js';
import { createRegistry, isBuiltInProvider, requireProvider } from './registry.js';
import type { Session } from './session.js';

export interface LoadedSpec {
  /** Absolute path of the spec file. */
  path: string;
  spec: EnvironmentSpec;
}

async function readSpecInput(session: Session, specPath: string): Promise<{ path: string; input: unknown }> {
  const path = session.path(specPath);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? String(error));
    throw new UsageError(`cannot read the spec ${specPath}: ${why}`, { code: 'SpecNotFound' });
  }
  // Invalid YAML or JSON is a ValidationError naming the file: exit 2 like any spec problem.
  return { path, input: parseSpecText(text, path) };
}

/**
 * The spec, checked against the shape, its integrity and every built-in policy, with key files
 * read: for plan and apply. Every problem is reported at once, before any cloud is called.
 */
export async function loadCheckedSpec(session: Session, specPath: string): Promise<LoadedSpec> {
  const { path, input } = await readSpecInput(session, specPath);
  const check = checkEnvironment(input);
  if (!check.ok) {
    const errors = check.violations.filter((violation) => violation.severity === 'error');
    throw new ViolationsError(`${specPath}: ${errors.length} problem(s) to fix before planning:`, check.violations, 'InvalidSpec');
  }
  return { path, spec: await parseSpec(input, { baseDirectory: dirname(path) }) };
}

/**
 * The spec's shape only (name, provider, region): for destroy and status, which must work on an
 * environment whose spec has since broken a policy or lost a key file.
 */
export async function loadSpecShape(session: Session, specPath: string): Promise<LoadedSpec> {
  const { path, input } = await readSpecInput(session, specPath);
  const parsed = environmentSpecSchema.safeParse(input);
  if (parsed.success) return { path, spec: parsed.data };
  // safeParseSpec words the same shape errors, with their fixes ("did you mean ...").
  const checked = safeParseSpec(input);
  const issues: ValidationIssue[] = checked.success ? [{ path: '', message: 'does not match the spec schema' }] : checked.issues;
  const violations = issues.map((issue): Violation => ({ ...issue, rule: 'schema', severity: 'error' }));
  throw new ViolationsError(`${specPath}: ${violations.length} problem(s) to fix:`, violations, 'InvalidSpec');
}

/** The state file of an environment: --state, else `.armada/<name>.json` under the working directory. */
export function statePathFor(session: Session, environment: string): string {
  return session.options.state ? session.path(session.options.state) : join(session.cwd, '.armada', `${environment}.json`);
}

/** The state file, or undefined when there is none; an unreadable one is a usage error. */
export async function readState(session: Session, path: string): Promise<StateFile | undefined> {
  try {
    return await readStateFile(path);
  } catch (error) {
    throw new UsageError(`cannot use the state file ${session.displayPath(path)}: ${error instanceof Error ? error.message : String(error)}`, {
      detail: '  It is only a cache of the last run: move it away, or point --state at another file.',
      code: 'BadStateFile',
      cause: error,
    });
  }
}

/** The spec's provider, from the built-in plugins or those loaded with --plugin. */
export async function providerFor(session: Session, spec: EnvironmentSpec): Promise<{ registry: PluginRegistry; provider: ProviderV1 }> {
  const { id, region } = spec.provider;
  const registry = await createRegistry({
    env: session.env,
    cwd: session.cwd,
    plugins: session.options.plugin ?? [],
    // Only the built-in the spec names is imported: the AWS SDK is not loaded for a DigitalOcean spec.
    builtIns: isBuiltInProvider(id) ? [id] : [],
  });
  requireProvider(registry, id, 'provider.id in the spec');
  const block = (spec.provider as Record<string, unknown>)[id];
  const options = typeof block === 'object' && block !== null ? (block as Record<string, unknown>) : {};
  return { registry, provider: registry.provider(id, region, options) };
}
