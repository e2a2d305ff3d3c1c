/**
 * Turning user input (a TypeScript object, JSON or YAML) into a validated `EnvironmentSpec`.
 * Every problem is reported at once, each with its path, what is wrong and what would be right.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ValidationError, type ValidationIssue } from '../errors.js';
import { evaluatePolicies, type PolicyRule, type Violation } from '../policies/engine.js';
import { builtInRules, integrityRules } from '../policies/rules.js';
import { environmentSpecSchema, type EnvironmentSpec } from './schema.js';

export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= Math.max(2, Math.floor(word.length / 3)) && (!best || distance < best.distance)) {
      best = { candidate, distance };
    }
  }
  return best?.candidate;
}

/** Strips wrappers (optional, default, array, transform) down to the schema that holds the value. */
function unwrap(schema: unknown): unknown {
  let current = schema as { def?: { type?: string; innerType?: unknown; element?: unknown; in?: unknown } } | undefined;
  for (let depth = 0; depth < 10 && current?.def; depth++) {
    const { type, innerType, element } = current.def;
    if (type === 'optional' || type === 'default' || type === 'nullable') current = innerType as typeof current;
    else if (type === 'array') current = element as typeof current;
    else if (type === 'pipe') current = current.def.in as typeof current;
    else break;
  }
  return current;
}

/** The field names of the object schema at a path, to suggest the right name for a typo. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema = unwrap(environmentSpecSchema);
  for (const segment of path) {
    if (typeof segment === 'number') continue;
    schema = unwrap((schema as { shape?: Record<string, unknown> } | undefined)?.shape?.[String(segment)]);
  }
  const shape = (schema as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
}

export function toIssues(error: z.ZodError): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(issue.path);
      for (const key of issue.keys) {
        const suggestion = closest(key, known);
        issues.push({
          path: formatPath([...issue.path, key]),
          message: 'is not a known field',
          fix: suggestion ? `did you mean "${suggestion}"?` : known.length ? `known fields: ${known.join(', ')}` : 'remove it',
        });
      }
      continue;
    }
    const fix =
      issue.code === 'invalid_value'
        ? `use one of: ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`
        : issue.code === 'invalid_type' && issue.input === undefined
          ? `add the required field "${formatPath(issue.path.slice(-1))}"`
          : undefined;
    issues.push({ path: formatPath(issue.path), message: issue.message, ...(fix ? { fix } : {}) });
  }
  return issues;
}

export interface ParseSpecOptions {
  /** Directory that relative `publicKeyPath`s are read from. Default: the current directory. */
  baseDirectory?: string;
}

export type SafeParseSpecResult = { success: true; spec: EnvironmentSpec } | { success: false; issues: ValidationIssue[] };

function violationToIssue(violation: Violation): ValidationIssue {
  return { path: violation.path, message: violation.message, ...(violation.fix ? { fix: violation.fix } : {}) };
}

/**
 * Shape and integrity: the spec has the right fields, and it makes sense as a whole (references
 * resolve, subnets fit the network). Does not read files: key pairs given by path stay as paths.
 */
export function safeParseSpec(input: unknown): SafeParseSpecResult {
  const parsed = environmentSpecSchema.safeParse(input);
  if (!parsed.success) return { success: false, issues: toIssues(parsed.error) };
  const integrity = evaluatePolicies({ spec: parsed.data }, integrityRules);
  if (!integrity.ok) return { success: false, issues: integrity.errors.map(violationToIssue) };
  return { success: true, spec: parsed.data };
}

/** Parses a spec object, reading key files, or throws a ValidationError listing every issue. */
export async function parseSpec(input: unknown, options: ParseSpecOptions = {}): Promise<EnvironmentSpec> {
  const result = safeParseSpec(input);
  if (!result.success) {
    throw new ValidationError(`The environment spec has ${result.issues.length} problem(s):`, { issues: result.issues });
  }
  return readKeyFiles(result.spec, options.baseDirectory ?? process.cwd());
}

async function readKeyFiles(spec: EnvironmentSpec, baseDirectory: string): Promise<EnvironmentSpec> {
  const issues: ValidationIssue[] = [];
  const keyPairs = await Promise.all(
    spec.keyPairs.map(async (keyPair, index) => {
      if (keyPair.publicKeyPath === undefined) return keyPair;
      const path = resolve(baseDirectory, keyPair.publicKeyPath);
      try {
        const publicKey = (await readFile(path, 'utf8')).trim();
        if (!/^(ssh-|ecdsa-)/.test(publicKey)) {
          issues.push({ path: `keyPairs[${index}].publicKeyPath`, message: `${path} does not hold an OpenSSH public key`, fix: 'point it at the .pub file, not the private key' });
        }
        return { name: keyPair.name, publicKey };
      } catch (error) {
        issues.push({
          path: `keyPairs[${index}].publicKeyPath`,
          message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          fix: 'check the path (relative paths are read from the spec file\'s directory)',
        });
        return keyPair;
      }
    }),
  );
  if (issues.length > 0) throw new ValidationError('The environment spec has problem(s) with key files:', { issues });
  return { ...spec, keyPairs };
}

/** Reads a spec from a `.json`, `.yaml` or `.yml` file. Relative key paths are read next to it. */
export async function loadSpecFile(path: string): Promise<EnvironmentSpec> {
  const text = await readFile(path, 'utf8');
  return parseSpec(parseSpecText(text, path), { baseDirectory: dirname(resolve(path)) });
}

/** JSON or YAML text to a plain object (YAML is a superset of JSON, but JSON errors read better). */
export function parseSpecText(text: string, source = 'spec'): unknown {
  try {
    return source.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw new ValidationError(`${source} is not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
}

export interface EnvironmentCheck {
  /** The parsed spec, when its shape was right (policies ran on it). */
  spec?: EnvironmentSpec;
  /** Shape errors (rule `schema`), integrity errors and policy violations, all at once. */
  violations: Violation[];
  ok: boolean;
}

/**
 * Everything wrong with a spec in one call: shape, integrity and policies. Never throws for bad
 * input; use it for `armada plan`-style reporting.
 */
export function checkEnvironment(input: unknown, rules: readonly PolicyRule[] = builtInRules): EnvironmentCheck {
  const parsed = environmentSpecSchema.safeParse(input);
  if (!parsed.success) {
    const violations = toIssues(parsed.error).map((issue): Violation => ({ ...issue, rule: 'schema', severity: 'error' }));
    return { violations, ok: false };
  }
  const report = evaluatePolicies({ spec: parsed.data }, rules);
  return { spec: parsed.data, violations: report.violations, ok: report.ok };
}
