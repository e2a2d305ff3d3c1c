/**
 * Server policies: what runs on each server, described once, neutral of provider and of config
 * tool. Policies are grouped by role (the `role` of the spec's instances). Values may be plain
 * text, a secret (resolved at apply time, never written into artifacts, plans or logs), or an
 * output of provisioning (an instance's private address, say), resolved after apply.
 */
import { z } from 'zod';
import { ValidationError, type ValidationIssue } from '../errors.js';
import type { ObservedResource } from '../resources.js';
import { readFile } from 'node:fs/promises';
import { parseSpecText, toIssues } from '../spec/load.js';
import { resolveRuntime } from './runtimes.js';

const unixName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'must be a Unix name: lower-case letters, digits, "_" and "-", at most 32' });

/** A value: text, `{ secret: NAME }`, or `{ output: { instance, value } }`. */
export const valueSchema = z.union(
  [
    z.string(),
    z.strictObject({ secret: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'secret names are letters, digits and "_"' }) }),
    z.strictObject({ output: z.strictObject({ instance: z.string().min(1), value: z.string().min(1) }) }),
  ],
  { error: 'must be text, { secret: NAME } or { output: { instance, value } }' },
);
export type PolicyValue = z.infer<typeof valueSchema>;

export const systemUserSchema = z.strictObject({
  name: unixName,
  groups: z.array(unixName).default([]),
  shell: z.string().startsWith('/').default('/bin/bash'),
  sshKeys: z.array(z.string().regex(/^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/, { error: 'must be an OpenSSH public key' })).default([]),
});

export const fileSchema = z.strictObject({
  path: z.string().startsWith('/', { error: 'must be an absolute path' }),
  /** The whole content; or a `template` with {{NAME}} placeholders filled from `vars`. */
  content: valueSchema.optional(),
  template: z.string().optional(),
  vars: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), valueSchema).default({}),
  owner: unixName.default('root'),
  group: unixName.default('root'),
  mode: z.string().regex(/^0?[0-7]{3,4}$/, { error: 'must be an octal mode such as "0644"' }).default('0644'),
});

export const serviceSchema = z.strictObject({
  name: z.string().min(1),
  ensure: z.enum(['running', 'stopped']).default('running'),
  enable: z.boolean().default(true),
  /** For services without an init system entry: how to start it and check it is running. */
  start: z.string().min(1).optional(),
  status: z.string().min(1).optional(),
  stop: z.string().min(1).optional(),
});

export const mysqlSchema = z.strictObject({
  role: z.enum(['primary', 'replica', 'standalone']).default('standalone'),
  /** Unique per server in a replication topology. */
  serverId: z.number().int().min(1).max(4294967295).default(1),
  /** For a replica: the primary's address, and the replication account (a user of the primary). */
  source: valueSchema.optional(),
  replicationUser: z.strictObject({ name: z.string().regex(/^[A-Za-z0-9_]{1,32}$/), password: z.strictObject({ secret: z.string() }) }).optional(),
  databases: z.array(z.string().regex(/^[A-Za-z0-9_]{1,64}$/)).default([]),
  users: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_]{1,32}$/),
        /** MySQL host pattern: `%`, `10.0.%`, `localhost`. */
        host: z.string().regex(/^[A-Za-z0-9.%_-]+$/).default('%'),
        password: z.strictObject({ secret: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }, { error: 'passwords are secret references: { secret: NAME }' }),
        grants: z
          .array(z.strictObject({ database: z.string().regex(/^([A-Za-z0-9_]{1,64}|\*)$/), privileges: z.array(z.string().regex(/^[A-Z ]+$/)).min(1) }))
          .default([]),
      }),
    )
    .default([]),
});

export const runtimeSchema = z.strictObject({
  language: z.enum(['java', 'php']),
  version: z.string().regex(/^\d+(\.\d+)?$/, { error: 'a version such as "8", "17" or "5.6"' }),
  modules: z.array(z.string().regex(/^[a-z0-9-]+$/)).default([]),
  /** A third-party repository for versions the distribution no longer ships: `adoptium`, `sury`. */
  repository: z.string().optional(),
});

export const nginxSiteSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/),
  serverNames: z.array(z.string().min(1)).min(1),
  root: z.string().startsWith('/'),
  listen: z.number().int().min(1).max(65535).default(80),
  /** Send PHP requests to the PHP-FPM of this version. */
  php: z.string().regex(/^\d+\.\d+$/).optional(),
});

export const appSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
  repository: z.string().min(1),
  /** Branch, tag or commit. */
  ref: z.string().min(1).default('main'),
  path: z.string().startsWith('/'),
  owner: unixName,
});

export const redisSchema = z.strictObject({
  bind: z.array(z.string().min(1)).default(['127.0.0.1']),
  port: z.number().int().min(1).max(65535).default(6379),
  /** Make this server a replica of another. */
  replicaOf: z.strictObject({ host: valueSchema, port: z.number().int().min(1).max(65535).default(6379) }).optional(),
  maxmemory: z.string().regex(/^\d+(mb|gb|kb)?$/i).optional(),
});

export const rolePolicySchema = z.strictObject({
  groups: z.array(unixName).default([]),
  users: z.array(systemUserSchema).default([]),
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/)).default([]),
  files: z.array(fileSchema).default([]),
  /** Written to /etc/environment style files, for every login and service of the host. */
  environment: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), valueSchema).default({}),
  services: z.array(serviceSchema).default([]),
  mysql: mysqlSchema.optional(),
  runtimes: z.array(runtimeSchema).default([]),
  nginx: z.strictObject({ sites: z.array(nginxSiteSchema).min(1) }).optional(),
  apps: z.array(appSchema).default([]),
  redis: redisSchema.optional(),
});

export const serverPoliciesSchema = z.strictObject({
  /** The operating system of the servers, for package names: `debian-12`, `ubuntu-22.04`. */
  os: z.string().default('debian-12'),
  /** Policies by role: instances of the spec with this `role` get them. */
  roles: z.record(z.string().min(1), rolePolicySchema),
  /** Per instance, a role other than the spec's (the replica among two `data` instances). */
  assign: z.record(z.string().min(1), z.string().min(1)).default({}),
});

export type ServerPolicies = z.infer<typeof serverPoliciesSchema>;
export type ServerPoliciesInput = z.input<typeof serverPoliciesSchema>;
export type RolePolicy = z.infer<typeof rolePolicySchema>;

export function parseServerPolicies(input: unknown): ServerPolicies {
  const parsed = serverPoliciesSchema.safeParse(input);
  if (parsed.success) {
    const issues = checkServerPolicies(parsed.data);
    if (issues.length === 0) return parsed.data;
    throw new ValidationError(`The server policies have ${issues.length} problem(s):`, { issues });
  }
  const issues = toIssues(parsed.error, { schema: serverPoliciesSchema, input });
  throw new ValidationError(`The server policies have ${issues.length} problem(s):`, { issues });
}

/** Where secret values come from at apply time. Default: environment variables of the same name. */
export type SecretResolver = (name: string) => string | undefined;
export const environmentSecrets: SecretResolver = (name) => process.env[name];

/** Output references, resolved against what provisioning made (instance outputs by instance name). */
export function resolveOutputs(policies: ServerPolicies, instances: readonly ObservedResource[]): { values: Map<string, string>; issues: ValidationIssue[] } {
  const values = new Map<string, string>();
  const issues: ValidationIssue[] = [];
  const byName = new Map(instances.filter((resource) => resource.kind === 'instance').map((resource) => [resource.name, resource]));
  const visit = (value: PolicyValue | undefined, path: string) => {
    if (value === undefined || typeof value === 'string' || !('output' in value)) return;
    const { instance, value: key } = value.output;
    const found = byName.get(instance);
    const resolved = found?.outputs[key];
    if (!found) issues.push({ path, message: `refers to instance "${instance}", which provisioning did not make`, fix: `use one of: ${[...byName.keys()].join(', ') || '(no instances)'}` });
    else if (resolved === undefined) issues.push({ path, message: `instance "${instance}" has no output "${key}"`, fix: `use one of: ${Object.keys(found.outputs).join(', ')}` });
    else values.set(`${instance}.${key}`, String(resolved));
  };
  for (const [role, policy] of Object.entries(policies.roles)) {
    for (const [name, value] of Object.entries(policy.environment)) visit(value, `roles.${role}.environment.${name}`);
    policy.files.forEach((file, index) => {
      visit(file.content, `roles.${role}.files[${index}].content`);
      for (const [name, value] of Object.entries(file.vars)) visit(value, `roles.${role}.files[${index}].vars.${name}`);
    });
    visit(policy.redis?.replicaOf?.host, `roles.${role}.redis.replicaOf.host`);
    visit(policy.mysql?.source, `roles.${role}.mysql.source`);
  }
  return { values, issues };
}

/** Every secret name the policies of a role use. */
export function secretsOf(policy: RolePolicy): string[] {
  const names = new Set<string>();
  const visit = (value: PolicyValue | undefined) => {
    if (value !== undefined && typeof value !== 'string' && 'secret' in value) names.add(value.secret);
  };
  for (const value of Object.values(policy.environment)) visit(value);
  for (const file of policy.files) {
    visit(file.content);
    for (const value of Object.values(file.vars)) visit(value);
  }
  for (const user of policy.mysql?.users ?? []) names.add(user.password.secret);
  if (policy.mysql?.replicationUser) names.add(policy.mysql.replicationUser.password.secret);
  return [...names].sort();
}

/** Policy checks that need the whole document: replicas name their source, sites their PHP, runtimes resolve. */
export function checkServerPolicies(policies: ServerPolicies): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const [instance, role] of Object.entries(policies.assign)) {
    if (!(role in policies.roles)) issues.push({ path: `assign.${instance}`, message: `assigns role "${role}", which has no policies`, fix: `use one of: ${Object.keys(policies.roles).join(', ')}` });
  }
  for (const [role, policy] of Object.entries(policies.roles)) {
    const path = `roles.${role}`;
    if (policy.mysql?.role === 'replica' && (!policy.mysql.source || !policy.mysql.replicationUser)) {
      issues.push({ path: `${path}.mysql`, message: 'a replica needs its source and a replicationUser', fix: 'add source: { output: { instance: <primary>, value: privateIp } } and replicationUser' });
    }
    policy.files.forEach((file, index) => {
      const filePath = `${path}.files[${index}]`;
      if ((file.content === undefined) === (file.template === undefined)) {
        issues.push({ path: filePath, message: 'give exactly one of content or template', fix: 'content: "..." for a whole file, template: "...{{NAME}}..." with vars for one with values' });
      }
      for (const name of templatePlaceholders(file.template ?? '')) {
        if (!(name in file.vars)) issues.push({ path: `${filePath}.template`, message: `uses {{${name}}}, which vars does not define`, fix: `add vars: { ${name}: ... }` });
      }
    });
    policy.runtimes.forEach((runtime, index) => {
      try {
        resolveRuntime(runtime, policies.os, `${path}.runtimes[${index}]`);
      } catch (error) {
        if (!ValidationError.isInstance(error)) throw error;
        issues.push(...error.issues);
      }
    });
    policy.nginx?.sites.forEach((site, index) => {
      if (site.php !== undefined && !policy.runtimes.some((runtime) => runtime.language === 'php' && runtime.version === site.php)) {
        issues.push({ path: `${path}.nginx.sites[${index}].php`, message: `site "${site.name}" sends PHP to PHP ${site.php}, which the role does not install`, fix: `add runtimes: [{ language: php, version: "${site.php}" }]` });
      }
    });
  }
  return issues;
}

/** The role whose policies an instance gets: its assignment, else the spec's role. */
export function roleOf(policies: ServerPolicies, instance: { name: string; role?: string | undefined }): string | undefined {
  return policies.assign[instance.name] ?? instance.role;
}

/** Reads server policies from a `.yaml`, `.yml` or `.json` file. */
export async function loadServerPoliciesFile(path: string): Promise<ServerPolicies> {
  return parseServerPolicies(parseSpecText(await readFile(path, 'utf8'), path));
}

/** The {{NAME}} placeholders of a template, in order of first use. */
export function templatePlaceholders(template: string): string[] {
  return [...new Set([...template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((match) => match[1] as string))];
}

/** A template split into literal text and placeholders, for renderers. */
export function templateParts(template: string): Array<{ text: string } | { name: string }> {
  const parts: Array<{ text: string } | { name: string }> = [];
  let last = 0;
  for (const match of template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
    if (match.index > last) parts.push({ text: template.slice(last, match.index) });
    parts.push({ name: match[1] as string });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ text: template.slice(last) });
  return parts;
}
