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
function knownKeysAt(root: unknown, path: readonly PropertyKey[]): string[] {
  let schema = unwrap(root);
  for (const segment of path) {
    if (typeof segment === 'number') continue;
    schema = unwrap((schema as { shape?: Record<string, unknown> } | undefined)?.shape?.[String(segment)]);
  }
  const shape = (schema as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
}

/** The value at a path of the input, to say what was found. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** What was found, for a person: the literal of a number or boolean, the kind of anything else (a text may be a secret: never shown). */
function found(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return 'a text';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

const EXPECTED: Record<string, string> = { int: 'an integer', number: 'a number', string: 'a text', boolean: 'true or false', array: 'a list', object: 'a mapping', record: 'a mapping' };

export interface ToIssuesOptions {
  /** The schema that was parsed: its field names are what a typo is matched against. Default: the environment spec's. */
  schema?: unknown;
  /** What was parsed: a wrong type says what was found there. */
  input?: unknown;
}

export function toIssues(error: z.ZodError, options: ToIssuesOptions = {}): ValidationIssue[] {
  const root = options.schema ?? environmentSpecSchema;
  const issues: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(root, issue.path);
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
    // zod's own wording starts "Invalid input"; a schema's own message (a password must be a secret reference) is kept.
    if (issue.code === 'invalid_type' && 'input' in options && issue.message.startsWith('Invalid input')) {
      // zod reports no input by default: look it up, to tell a missing field from a wrong one.
      const value = valueAt(options.input, issue.path);
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (value === undefined) issues.push({ path: formatPath(issue.path), message: `is required (${expected})`, fix: `add the field "${formatPath(issue.path.slice(-1))}"` });
      else issues.push({ path: formatPath(issue.path), message: `expected ${expected}, got ${found(value)}` });
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
  const forbidden = forbiddenKeys(input);
  if (forbidden.length > 0) return { success: false, issues: forbidden };
  const parsed = environmentSpecSchema.safeParse(input);
  if (!parsed.success) {
    // The shape is wrong, but what can be checked of the rest is reported in the same go.
    const shape = toIssues(parsed.error, { input });
    const shaped = new Set(shape.map((issue) => issue.path));
    return { success: false, issues: [...shape, ...integrityOfInvalid(input).filter((issue) => !shaped.has(issue.path))] };
  }
  const integrity = evaluatePolicies({ spec: parsed.data }, integrityRules);
  if (!integrity.ok) return { success: false, issues: integrity.errors.map(violationToIssue) };
  return { success: true, spec: parsed.data };
}

/** Keys that would reach an object's prototype if the spec were merged somewhere: refused by name, anywhere. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function forbiddenKeys(input: unknown, path: PropertyKey[] = []): ValidationIssue[] {
  if (input === null || typeof input !== 'object') return [];
  const issues: ValidationIssue[] = [];
  for (const key of Object.keys(input)) {
    const at = [...path, Array.isArray(input) ? Number(key) : key];
    if (FORBIDDEN_KEYS.has(key)) issues.push({ path: formatPath(at), message: `"${key}" is not allowed as a key`, fix: 'rename or remove it' });
    else issues.push(...forbiddenKeys((input as Record<string, unknown>)[key], at));
  }
  return issues;
}

/**
 * The integrity rules (references, CIDRs, names) on a spec whose shape is wrong, as far as they can
 * run: missing lists are taken as empty and written peers as parsed ones. A rule that cannot run
 * on it says nothing.
 */
function integrityOfInvalid(input: unknown): ValidationIssue[] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return [];
  const raw = input as Record<string, unknown>;
  const list = (value: unknown) => (Array.isArray(value) ? value.filter((item) => item !== null && typeof item === 'object') : []) as Array<Record<string, unknown>>;
  const peer = (value: unknown) => (typeof value === 'string' ? { cidr: value } : value);
  const network = (raw.network !== null && typeof raw.network === 'object' ? raw.network : {}) as Record<string, unknown>;
  const spec = {
    ...raw,
    network: { ...network, subnets: list(network.subnets) },
    firewalls: list(raw.firewalls).map((firewall) => ({
      ...firewall,
      ingress: list(firewall.ingress).map((rule) => ({ ...rule, from: peer(rule.from) })),
      ...(firewall.egress === undefined ? {} : { egress: list(firewall.egress).map((rule) => ({ ...rule, to: peer(rule.to) })) }),
    })),
    keyPairs: list(raw.keyPairs),
    instances: list(raw.instances).map((instance) => ({ firewalls: [], ...instance, count: Number.isInteger(instance.count) ? instance.count : 1 })),
  } as unknown as EnvironmentSpec;
  return evaluatePolicies({ spec }, integrityRules)
    .errors.filter((violation) => !violation.message.startsWith('policy rule threw'))
    .map(violationToIssue);
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
  // A binary file: said so, without its bytes (which may be anything, a private key among them).
  if (text.includes('\u0000') || text.includes('\uFFFD')) {
    throw new ValidationError(`${source} is not a text file.`, { issues: [{ path: source, message: 'is not a text file (it holds bytes that are not UTF-8 text)', fix: 'name the YAML or JSON file' }] });
  }
  // A byte-order mark, as some Windows editors write: not part of the text.
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let parsed: unknown;
  try {
    parsed = source.endsWith('.json') ? JSON.parse(body) : parseYaml(body, { prettyErrors: true });
  } catch (error) {
    throw new ValidationError(`${source} is not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  const forbidden = forbiddenKeys(parsed);
  if (forbidden.length > 0) throw new ValidationError(`${source} has keys that are not allowed:`, { issues: forbidden });
  return parsed;
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
  const forbidden = forbiddenKeys(input);
  const parsed = forbidden.length > 0 ? undefined : environmentSpecSchema.safeParse(input);
  if (!parsed?.success) {
    const shape = forbidden.length > 0 ? forbidden : toIssues((parsed as { error: z.ZodError }).error, { input });
    const shaped = new Set(shape.map((issue) => issue.path));
    const rest = forbidden.length > 0 ? [] : integrityOfInvalid(input).filter((issue) => !shaped.has(issue.path));
    const violations = [...shape.map((issue): Violation => ({ ...issue, rule: 'schema', severity: 'error' })), ...rest.map((issue): Violation => ({ ...issue, rule: 'integrity', severity: 'error' }))];
    return { violations, ok: false };
  }
  const report = evaluatePolicies({ spec: parsed.data }, rules);
  return { spec: parsed.data, violations: report.violations, ok: report.ok };
}
