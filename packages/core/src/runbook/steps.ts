/**
 * The built-in migration steps, in the order of the story: check policies, provision the target,
 * configure its servers (which deploys the apps from git as their system users), copy the data,
 * verify it, lower the DNS TTLs ahead of time, switch DNS, and optionally decommission the source.
 *
 * Each is a factory returning a `MigrationStep`; `standardMigrationSteps` strings them together
 * from one definition. Every step is idempotent: provisioning converges, configuration is the
 * config manager's own idempotent apply, data copies resume from their chunk checkpoints, and DNS
 * upserts the same records again.
 */
import { existsSync } from 'node:fs';
import pLimit from 'p-limit';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyEnvironment, destroyEnvironment } from '../apply.js';
import type { CommandChannel, ConfigManagerV1 } from '../config-manager.js';
import type { Duplex } from 'node:stream';
import type { CopyOptions, CopyReport, DataEndpoint, DataMoverV1, DataReplication } from '../data-mover.js';
import { type DnsSnapshot, lowerDnsTtl, switchDns } from '../dns/cutover.js';
import { ValidationError } from '../errors.js';
import { sleep } from '../execute/retry.js';
import { serialJsonWriter } from '../files.js';
import { evaluatePolicies, formatViolations, type PolicyRule } from '../policies/engine.js';
import { builtInRules } from '../policies/rules.js';
import { planDestroy, plan as makePlan } from '../plan/planner.js';
import { renderPlanText } from '../plan/render.js';
import type { DnsService, ProviderV1 } from '../provider.js';
import type { ObservedResource } from '../resources.js';
import { environmentSecrets, type RolePolicy, resolveOutputs, roleOf, rolePolicySchema, type SecretResolver, type ServerPolicies, secretsOf } from '../server/policy.js';
import type { EnvironmentSpec } from '../spec/schema.js';
import { type HostAndPort, isConnectionLost } from '../ssh/tunnel.js';
import type { JsonValue, MigrationStep, StepContext, StepResult } from './runbook.js';

/** What provisioning made, as later steps need it: instances with their role and addresses. */
// Type aliases rather than interfaces: they are plain JSON, recorded in the checkpoint.
export type ProvisionedInstance = {
  name: string;
  id: string;
  role: string | null;
  publicIp: string | null;
  privateIp: string | null;
};

export type ProvisionOutput = {
  provider: string;
  region: string;
  created: number;
  updated: number;
  deleted: number;
  instances: ProvisionedInstance[];
};

type StoreCopied = {
  mover: string;
  items: number;
  bytes: number;
  durationMs: number;
  resumed: boolean;
  /** What the mover could not carry over exactly (see CopyReport.warnings). */
  warnings?: string[];
  /** Replicating since the copy: the copy's report (its position) lets a resumed run attach. */
  replicating?: boolean;
  after?: JsonValue;
};

const text = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);
const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Policies on the target spec and on the plan against the target: any error stops the run before anything is made. */
export function checkPoliciesStep(options: { spec: EnvironmentSpec; provider: ProviderV1; rules?: readonly PolicyRule[]; id?: string }): MigrationStep {
  const rules = options.rules ?? builtInRules;
  const check = async (context: StepContext) => {
    const planned = await makePlan({ spec: options.spec, provider: options.provider, signal: context.signal });
    return evaluatePolicies({ spec: options.spec, plan: planned }, rules);
  };
  return {
    id: options.id ?? 'check-policies',
    title: `Check ${rules.length} policies on ${options.spec.name}`,
    async describe(context) {
      const report = await check(context);
      return [`would check ${rules.length} policies: ${report.errors.length} error(s), ${report.warnings.length} warning(s) today`];
    },
    async run(context) {
      const report = await check(context);
      if (!report.ok) {
        throw new ValidationError(`${report.errors.length} policy violation(s) block the migration:`, {
          issues: report.errors.map((violation) => ({ path: violation.path, message: `${violation.message} [${violation.rule}]`, ...(violation.fix ? { fix: violation.fix } : {}) })),
        });
      }
      return {
        summary: `${rules.length} policies pass${report.warnings.length > 0 ? `, ${count(report.warnings.length, 'warning')}` : ''}`,
        details: report.warnings.length > 0 ? formatViolations(report.warnings).split('\n') : [],
        output: { errors: 0, warnings: report.warnings.length },
      };
    },
  };
}

/** Provisions (converges) the target environment; its instances become the output later steps use. */
export function provisionStep(options: { spec: EnvironmentSpec; provider: ProviderV1; statePath?: string; rules?: readonly PolicyRule[]; id?: string }): MigrationStep {
  const { spec, provider } = options;
  return {
    id: options.id ?? 'provision-target',
    title: `Provision ${spec.name} on ${provider.id} (${provider.region})`,
    async describe(context) {
      return renderPlanText(await makePlan({ spec, provider, signal: context.signal })).split('\n');
    },
    async run(context) {
      const { plan, execution } = await applyEnvironment({
        spec,
        provider,
        signal: context.signal,
        ...(options.rules ? { rules: options.rules } : {}),
        ...(options.statePath ? { statePath: options.statePath } : {}),
        onEvent: (event) => {
          if (event.type === 'succeeded') context.progress(`${event.step} ${event.address}`);
        },
      });
      if (execution.status !== 'succeeded') {
        const failed = execution.failed.map((failure) => `${failure.address}: ${failure.error.message}`);
        throw new ValidationError(`Provisioning ${spec.name} did not finish: ${failed.join('; ') || execution.status}`);
      }
      const instances: ProvisionedInstance[] = execution.resources
        .filter((resource) => resource.kind === 'instance')
        .map((resource) => {
          const role = spec.instances.find((instance) => resource.name === instance.name || resource.name.startsWith(`${instance.name}-`))?.role;
          return { name: resource.name, id: resource.id, role: role ?? null, publicIp: text(resource.outputs.publicIp), privateIp: text(resource.outputs.privateIp) };
        })
        // By name (web-2 before web-10): the order instances finished in is not the report's business.
        .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
      const output: ProvisionOutput = { provider: provider.id, region: provider.region, created: plan.summary.create ?? 0, updated: (plan.summary.update ?? 0) + (plan.summary.replace ?? 0), deleted: plan.summary.delete ?? 0, instances };
      return {
        summary: `${output.created} created, ${output.updated} updated, ${output.deleted} deleted; ${count(instances.length, 'instance')} on ${provider.id}`,
        details: instances.map((instance) => `${instance.name} (${instance.id}) ${instance.role ?? 'no role'}: public ${instance.publicIp ?? '-'}, private ${instance.privateIp ?? '-'}`),
        output,
      };
    },
  };
}

/** A command channel that can be closed (an SSH session). */
export type ServerConnection = CommandChannel & { close?(): void | Promise<void> };

export interface ConfigureServersOptions {
  configManager: ConfigManagerV1<ServerPolicies>;
  policies: ServerPolicies;
  /**
   * How to reach a provisioned instance (SSH to its public address, through a bastion, ...);
   * `instances` are all the provisioned ones (a private instance is reached through a public one).
   */
  connect(instance: ProvisionedInstance, signal: AbortSignal, instances: readonly ProvisionedInstance[]): Promise<ServerConnection>;
  /** Servers configured at once (default 4): four servers take about the time of one. */
  concurrency?: number;
  /** Where secrets the policies name come from (default: environment variables). */
  secrets?: SecretResolver;
  /** The step whose output lists the instances (default `provision-target`). */
  provisioned?: string;
  /**
   * Which part of each role to apply: `system` (everything but the apps), `apps` (only the apps,
   * cloned and checked out as their owners, who the system part made), or `all` (default).
   */
  part?: 'all' | 'system' | 'apps';
  id?: string;
}

/** The policies with each role cut down to one part. */
function partOf(policies: ServerPolicies, part: 'all' | 'system' | 'apps'): ServerPolicies {
  if (part === 'all') return policies;
  const roles = Object.fromEntries(Object.entries(policies.roles).map(([name, policy]) => [name, part === 'system' ? { ...policy, apps: [] } : rolePolicySchema.parse({ apps: policy.apps })]));
  return { ...policies, roles };
}

const isEmptyRole = (policy: RolePolicy) => JSON.stringify(policy) === JSON.stringify(rolePolicySchema.parse({}));

const asObserved = (instances: readonly ProvisionedInstance[]): ObservedResource[] =>
  instances.map((instance) => ({
    address: `instance.${instance.name}`,
    kind: 'instance',
    name: instance.name,
    id: instance.id,
    properties: {} as ObservedResource['properties'],
    outputs: { ...(instance.publicIp ? { publicIp: instance.publicIp } : {}), ...(instance.privateIp ? { privateIp: instance.privateIp } : {}) },
  }));

/**
 * Bootstraps each provisioned instance that has a role over its connection and applies the role's
 * server policies: system users, packages, files, services, databases, and the apps cloned from
 * git and checked out as their owners. What changed on each server is the step's report.
 */
export function configureServersStep(options: ConfigureServersOptions): MigrationStep {
  const provisioned = options.provisioned ?? 'provision-target';
  const secrets = options.secrets ?? environmentSecrets;
  const part = options.part ?? 'all';
  const policies = partOf(options.policies, part);
  const rendered = (instances: readonly ProvisionedInstance[]) => {
    const { values, issues } = resolveOutputs(policies, asObserved(instances));
    if (issues.length > 0) throw new ValidationError('The server policies refer to outputs provisioning did not make:', { issues });
    return options.configManager.render(policies, values);
  };
  const roleFor = (instance: ProvisionedInstance) => {
    const role = roleOf(policies, { name: instance.name, ...(instance.role ? { role: instance.role } : {}) });
    // A role with nothing in this part (no apps, say) leaves its servers alone.
    return role && policies.roles[role] && isEmptyRole(policies.roles[role]) ? undefined : role;
  };
  const titles = {
    all: `Configure the servers and deploy the apps with ${options.configManager.id}`,
    system: `Configure the servers with ${options.configManager.id}`,
    apps: `Deploy the apps from git as their users, with ${options.configManager.id}`,
  };
  return {
    id: options.id ?? (part === 'apps' ? 'deploy-apps' : 'configure-servers'),
    title: titles[part],
    async describe(context) {
      if (!context.hasOutput(provisioned)) {
        return Object.entries(policies.roles)
          .filter(([, policy]) => !isEmptyRole(policy))
          .map(([role, policy]) => (part === 'apps' ? `would deploy ${policy.apps.map((app) => `${app.name} (${app.repository} at ${app.ref}, as ${app.owner})`).join(', ')} on each new ${role} instance` : `would apply role ${role} (${options.configManager.id}) on each new instance that has it`));
      }
      const instances = context.outputOf<ProvisionOutput>(provisioned).instances;
      const artifacts = rendered(instances);
      return [
        ...instances.map((instance) => `${instance.name}: ${roleFor(instance) ? `would apply role ${roleFor(instance)}` : 'no role, left alone'}`),
        `${count(artifacts.length, 'artifact')} rendered: ${artifacts.map((artifact) => artifact.path).join(', ')}`,
      ];
    },
    async run(context) {
      const instances = context.outputOf<ProvisionOutput>(provisioned).instances;
      const artifacts = rendered(instances);
      const configureOne = async (instance: ProvisionedInstance, role: string): Promise<{ server: JsonValue; detail: string }> => {
        const policy = policies.roles[role];
        if (!policy) throw new ValidationError(`Instance ${instance.name} has role "${role}", which the server policies do not define.`);
        const missing = secretsOf(policy).filter((name) => secrets(name) === undefined);
        if (missing.length > 0) {
          throw new ValidationError(`Role ${role} needs secrets that are not set: ${missing.join(', ')}.`, {
            issues: missing.map((name) => ({ path: `secrets.${name}`, message: 'not set', fix: `export ${name}=... (or pass a secret resolver)` })),
          });
        }
        context.progress(`${instance.name}: bootstrapping ${options.configManager.id}`);
        const connection = await options.connect(instance, context.signal, instances);
        try {
          const values = Object.fromEntries(secretsOf(policy).map((name) => [name, secrets(name) as string]));
          await options.configManager.bootstrap(connection, artifacts, { secrets: values, signal: context.signal });
          context.progress(`${instance.name}: applying role ${role}`);
          const report = await options.configManager.apply(connection, { role, signal: context.signal });
          const changed = report.resources.filter((resource) => resource.status === 'changed').map((resource) => resource.resource);
          if (report.failed > 0) {
            const failed = report.resources.filter((resource) => resource.status === 'failed').map((resource) => `${resource.resource}${resource.message ? `: ${resource.message}` : ''}`);
            throw new ValidationError(`Role ${role} failed on ${instance.name} (${connection.description}): ${failed.join('; ')}`);
          }
          context.progress(`${instance.name}: ${report.changed} changed, ${report.unchanged} unchanged`);
          return {
            server: { name: instance.name, role, via: connection.description, changed: report.changed, unchanged: report.unchanged },
            detail: `${instance.name} (${role}): ${report.changed} changed, ${report.unchanged} unchanged${changed.length > 0 ? `: ${changed.join(', ')}` : ''}`,
          };
        } finally {
          await connection.close?.();
        }
      };
      // In parallel, bounded; reported in the instances' order. Every server is tried: one that
      // fails does not stop the others, and the first failure is what the step throws.
      const limit = pLimit(options.concurrency ?? 4);
      const withRoles = instances.flatMap((instance) => {
        const role = roleFor(instance);
        return role ? [{ instance, role }] : [];
      });
      const outcomes = await Promise.allSettled(withRoles.map(({ instance, role }) => limit(() => configureOne(instance, role))));
      const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failure) throw failure.reason;
      const done = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
      const servers = done.map((entry) => entry.server);
      const details = done.map((entry) => entry.detail);
      return { summary: `${count(servers.length, 'server')} ${part === 'apps' ? 'deployed' : 'configured'}`, details, output: { servers } };
    },
  };
}

/** One data store to move: its mover, where it is, where it goes. Passwords stay here, in memory. */
export interface DataStoreMove {
  /** Names the store in reports and its checkpoint file: `shop-db`, `sessions`. */
  name: string;
  /** Where the store is described (a migration file's `data[0]`), for the paths of its problems. Default `data.<name>`. */
  path?: string;
  mover: DataMoverV1;
  source: DataEndpoint;
  /** The target's endpoint, or how to find it among the provisioned instances. */
  target: DataEndpoint | ((instances: readonly ProvisionedInstance[]) => DataEndpoint);
  copy?: Omit<CopyOptions, 'checkpointPath' | 'signal' | 'onProgress'>;
  /**
   * `copy` (default): copied once; writes to the source after that are not moved. `replicate`:
   * after the copy (or instead of it, for movers whose replication makes its own full sync) the
   * target follows the source, and at cutover the source is made read-only, the target catches up
   * and is promoted; the write downtime is measured. Needs a mover with `replicate`.
   */
  mode?: 'copy' | 'replicate';
  /** How each side is reached when Armada cannot connect to it directly (a private network). */
  routes?: DataStoreRoutes;
}

/**
 * A way to a data store through a jump host: an SSH tunnel, shared and kept up (see ssh/tunnel.ts
 * and `sshDataRoute`). The mover is handed the tunnel's loopback end as the store's address.
 */
export interface DataRoute {
  /** For progress and reports: `through admin@203.0.113.7:22`. */
  readonly description: string;
  /** A local address that reaches `destination` from the jump host. */
  forward(destination: HostAndPort, signal?: AbortSignal): Promise<HostAndPort>;
  /** A stream to `destination` from the jump host (the far end of a replication path). */
  dial(destination: HostAndPort): Promise<Duplex>;
}

export interface DataStoreRoutes {
  source?: DataRoute;
  /** Or how to make it from the provisioned instances (a jump host among them). */
  target?: DataRoute | ((instances: readonly ProvisionedInstance[]) => DataRoute);
  /**
   * How the target's server reaches the source's for replication, when not at the source's own
   * address: makes the path (a forward on the target's loopback, kept up by the runbook) and says
   * the address the target must name. Absent: the source's own address (one network, or a
   * site-to-site link between the clouds).
   */
  replicationPath?: (instances: readonly ProvisionedInstance[], signal?: AbortSignal) => Promise<HostAndPort>;
}

/**
 * Replications started by the copy step and ended by the cutover step of one run. After a crash
 * the cutover step attaches to the replication still running on the target.
 */
export class ReplicationRegistry {
  private readonly running = new Map<string, DataReplication>();
  set(name: string, replication: DataReplication): void {
    this.running.set(name, replication);
  }
  take(name: string): DataReplication | undefined {
    const replication = this.running.get(name);
    this.running.delete(name);
    return replication;
  }
  async closeAll(): Promise<void> {
    await Promise.all([...this.running.values()].map((replication) => replication.close().catch(() => undefined)));
    this.running.clear();
  }
}

const replicates = (store: DataStoreMove) => store.mode === 'replicate';

function replicatorOf(store: DataStoreMove): NonNullable<DataMoverV1['replicate']> {
  if (!store.mover.replicate) {
    throw new ValidationError(`Data store ${store.name}: the ${store.mover.id} mover cannot replicate.`, { issues: [{ path: `data.${store.name}.mode`, message: 'no replication in this mover', fix: "use mode 'copy'" }] });
  }
  return store.mover.replicate.bind(store.mover);
}

const describeRoutes = (store: DataStoreMove) =>
  [store.routes?.source ? `source ${store.routes.source.description}` : '', store.routes?.target ? `target ${typeof store.routes.target === 'function' ? 'through its jump host' : store.routes.target.description}` : ''].filter(Boolean).map((text) => `, ${text}`).join('');

const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}${endpoint.databases ? ` (${endpoint.databases.join(', ')})` : ''}`;

function instancesOf(context: StepContext, provisioned: string): readonly ProvisionedInstance[] {
  return context.hasOutput(provisioned) ? context.outputOf<ProvisionOutput>(provisioned).instances : [];
}

function targetOf(store: DataStoreMove, context: StepContext, provisioned: string): DataEndpoint {
  if (typeof store.target !== 'function') return store.target;
  return store.target(instancesOf(context, provisioned));
}

/** An endpoint as the mover must be handed it: the tunnel's end when routed, its own address as the peer. */
export async function endpointThrough(route: DataRoute | undefined, endpoint: DataEndpoint, signal?: AbortSignal): Promise<DataEndpoint> {
  if (!route) return endpoint;
  const local = await route.forward({ host: endpoint.host, port: endpoint.port }, signal);
  return { ...endpoint, ...local, peer: endpoint.peer ?? { host: endpoint.host, port: endpoint.port } };
}

/** Both sides of a store as its mover connects to them now, tunnels opened, the replication path made. */
async function reach(store: DataStoreMove, context: StepContext, provisioned: string, options: { replication?: boolean } = {}): Promise<{ source: DataEndpoint; target: DataEndpoint }> {
  const source = await endpointThrough(store.routes?.source, store.source, context.signal);
  const targetRoute = store.routes?.target;
  const target = await endpointThrough(typeof targetRoute === 'function' ? targetRoute(instancesOf(context, provisioned)) : targetRoute, targetOf(store, context, provisioned), context.signal);
  if (options.replication && store.routes?.replicationPath) {
    source.peer = await store.routes.replicationPath(instancesOf(context, provisioned), context.signal);
  }
  return { source, target };
}

/**
 * Runs `work` again while it fails because a connection through a route was lost (the jump host
 * went away), until `patienceMs` has passed without progress: the copy resumes from its
 * checkpoint once the tunnel is back. Stores without a route fail at once, as before.
 */
async function acrossDrops<T>(store: DataStoreMove, context: StepContext, work: () => Promise<T>, patienceMs = 300_000): Promise<T> {
  if (!store.routes?.source && !store.routes?.target) return work();
  let firstDrop: number | undefined;
  let delay = 1_000;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      firstDrop ??= performance.now();
      if (context.signal.aborted || !isConnectionLost(error) || performance.now() - firstDrop > patienceMs) throw error;
      context.progress(`${store.name}: the connection was lost (${(error as Error).message.split('\n')[0]}); trying again through the tunnel in ${delay / 1000} s`);
      await sleep(delay, context.signal);
      delay = Math.min(delay * 2, 15_000);
    }
  }
}

/** Every store's endpoints by its mover's check, all at once; throws with every problem found, before anything is written. */
async function checkStores(stores: readonly DataStoreMove[], endpointsFor: (store: DataStoreMove) => Promise<{ source: DataEndpoint; target: DataEndpoint }>, signal: AbortSignal): Promise<void> {
  const found = await Promise.all(
    stores.map(async (store) => {
      if (!store.mover.check) return [];
      const { source, target } = await endpointsFor(store);
      const issues = await store.mover.check(source, target, { replaceExisting: store.copy?.replaceExisting ?? false, mode: store.mode ?? 'copy', options: { ...store.copy }, signal });
      return issues.map((issue) => ({ ...issue, path: `${store.path ?? `data.${store.name}`}.${issue.path}` }));
    }),
  );
  const issues = found.flat();
  if (issues.length > 0) throw new ValidationError(`The data stores are not ready to copy: ${issues.length} problem(s); nothing was copied:`, { issues });
}

/**
 * Copies each store with its mover. Each store keeps its mover's chunk checkpoint in the step's
 * directory, so a run killed in the middle of a copy resumes at the chunk where it stopped; stores
 * finished before the kill are not copied again.
 */
export function copyDataStep(options: { stores: readonly DataStoreMove[]; provisioned?: string; replications?: ReplicationRegistry; id?: string }): MigrationStep {
  const provisioned = options.provisioned ?? 'provision-target';
  const replications = options.replications ?? new ReplicationRegistry();
  return {
    id: options.id ?? 'copy-data',
    title: `Copy ${options.stores.map((store) => `${store.name} (${store.mover.id})`).join(', ')}`,
    async describe(context) {
      return options.stores.map((store) => {
        const target = context.hasOutput(provisioned) || typeof store.target !== 'function' ? where(targetOf(store, context, provisioned)) : 'the new server';
        const how = !replicates(store) ? 'copy' : store.mover.replicationStartsFrom === 'empty' ? 'replicate' : 'copy, then replicate,';
        return `would ${how} ${store.name} with ${store.mover.id} from ${where(store.source)} to ${target}${store.copy?.replaceExisting ? ', replacing what is there' : ''}`;
      });
    },
    async run(context) {
      const donePath = join(context.workDirectory, 'finished.json');
      const finished: Record<string, StoreCopied> = existsSync(donePath) ? JSON.parse(await readFile(donePath, 'utf8')) : {};
      const saveFinished = serialJsonWriter(donePath);
      const checkpointOf = (store: DataStoreMove) => join(context.workDirectory, `${store.name}.checkpoint.json`);
      // Now that the new servers exist, and before any data moves: each store as its copy will meet
      // it (a store whose copy already began is the copy's to resume).
      await checkStores(
        options.stores.filter((store) => !finished[store.name] && !existsSync(checkpointOf(store))),
        (store) => reach(store, context, provisioned),
        context.signal,
      );
      for (const store of options.stores) {
        if (finished[store.name]) continue;
        const shown = targetOf(store, context, provisioned);
        const { source, target } = await reach(store, context, provisioned, { replication: replicates(store) });
        const via = describeRoutes(store);
        if (replicates(store) && store.mover.replicationStartsFrom === 'empty') {
          // Replication makes its own full copy (Redis: REPLICAOF's full sync).
          context.progress(`${store.name}: replicating from ${where(store.source)} to ${where(shown)}${via}`);
          const started = performance.now();
          const replication = await replicatorOf(store)(source, target, { signal: context.signal, ...(store.copy?.replaceExisting ? { replaceExisting: true } : {}) });
          replications.set(store.name, replication);
          const lag = await replication.status();
          finished[store.name] = { mover: store.mover.id, items: 0, bytes: 0, durationMs: Math.round(performance.now() - started), resumed: false, replicating: true };
          context.progress(`${store.name}: replica in sync (${lag.lag})`);
          await saveFinished(finished);
          continue;
        }
        context.progress(`${store.name}: copying from ${where(store.source)} to ${where(shown)}${via}`);
        const report = await acrossDrops(store, context, () => store.mover.copy(source, target, {
          ...store.copy,
          checkpointPath: checkpointOf(store),
          signal: context.signal,
          onProgress: (progress) => {
            const total = progress.totalItems ? ` of ${progress.totalItems.toLocaleString('en-US')}` : '';
            const eta = progress.etaSeconds === undefined ? '' : `, ETA ${Math.ceil(progress.etaSeconds)} s`;
            const rate = progress.bytesPerSecond === undefined ? '' : `, ${(progress.bytesPerSecond / 1_048_576).toFixed(1)} MiB/s`;
            const fraction = progress.fraction ?? (progress.totalItems ? progress.items / progress.totalItems : undefined);
            const percent = progress.fraction === undefined ? '' : ` (${Math.floor(progress.fraction * 100)} %)`;
            context.progress(`${store.name}: ${progress.phase} ${progress.items.toLocaleString('en-US')}${total}${percent}${rate}${eta}`, fraction);
          },
        }));
        finished[store.name] = { mover: store.mover.id, items: report.items, bytes: report.bytes, durationMs: Math.round(report.durationMs), resumed: report.resumed, ...(report.warnings?.length ? { warnings: report.warnings } : {}) };
        if (replicates(store)) {
          // From the copy's snapshot on, the target follows the source (MySQL: its binlog position).
          context.progress(`${store.name}: starting replication from the copy's position`);
          const replication = await replicatorOf(store)(source, target, { after: report, signal: context.signal });
          replications.set(store.name, replication);
          Object.assign(finished[store.name] as StoreCopied, { replicating: true, after: JSON.parse(JSON.stringify(report)) as JsonValue });
          context.progress(`${store.name}: replica in sync (${(await replication.status()).lag})`);
        }
        await saveFinished(finished);
      }
      const stores = options.stores.map((store) => ({ name: store.name, ...(finished[store.name] as StoreCopied) }));
      const items = stores.reduce((sum, store) => sum + store.items, 0);
      const bytes = stores.reduce((sum, store) => sum + store.bytes, 0);
      return {
        summary: `${count(stores.length, 'store')} copied: ${items.toLocaleString('en-US')} items, ${(bytes / 1_048_576).toFixed(1)} MiB`,
        details: stores.flatMap((store) => [
          store.replicating && store.items === 0
            ? `${store.name} (${store.mover}): replicating, first sync in ${seconds(store.durationMs)}`
            : `${store.name} (${store.mover}): ${store.items.toLocaleString('en-US')} items, ${(store.bytes / 1_048_576).toFixed(1)} MiB in ${seconds(store.durationMs)}${store.resumed ? ', resumed' : ''}${store.replicating ? ', then replicating' : ''}`,
          ...(store.warnings ?? []).map((warning) => `${store.name}: warning: ${warning}`),
        ]),
        output: { items, bytes, stores },
      };
    },
  };
}

/**
 * For replicated stores: the source is made read-only, the target applies the rest and is promoted.
 * Runs after the TTLs are lowered and before verify and the DNS switch; the write downtime (the
 * longest of the stores') is the step's output and goes into the report. A resumed run attaches to
 * the replication still running, and a store already promoted is reported as such.
 */
export function cutoverDataStep(options: { stores: readonly DataStoreMove[]; provisioned?: string; copied?: string; replications?: ReplicationRegistry; id?: string }): MigrationStep {
  const provisioned = options.provisioned ?? 'provision-target';
  const copied = options.copied ?? 'copy-data';
  const replications = options.replications ?? new ReplicationRegistry();
  const stores = options.stores.filter(replicates);
  return {
    id: options.id ?? 'cutover-data',
    title: `Cut over ${stores.map((store) => store.name).join(', ')}: source read-only, target promoted`,
    async describe() {
      return stores.map((store) => `would make ${store.name}'s source read-only, let the target catch up, and promote it`);
    },
    async run(context) {
      const results: Array<{ name: string; writeDowntimeMs: number | null; alreadyPromoted: boolean }> = [];
      const earlier = context.hasOutput(copied) ? (context.outputOf<{ stores: Array<{ name: string; after?: JsonValue }> }>(copied).stores ?? []) : [];
      for (const store of stores) {
        const after = earlier.find((entry) => entry.name === store.name)?.after as CopyReport | undefined;
        const attach = async () => {
          const { source, target } = await reach(store, context, provisioned, { replication: true });
          return replicatorOf(store)(source, target, { signal: context.signal, ...(after ? { after } : {}) });
        };
        let replication = replications.take(store.name);
        if (!replication) {
          context.progress(`${store.name}: attaching to the replication on the target`);
          replication = await attach();
        }
        try {
          context.progress(`${store.name}: source read-only, waiting for the target to catch up`);
          // Connections made before a tunnel dropped are dead: attach anew (the cutover is
          // idempotent) once the tunnel is back.
          const result = await acrossDrops(store, context, async () => {
            try {
              return await (replication as DataReplication).cutover({ signal: context.signal });
            } catch (error) {
              if (isConnectionLost(error)) {
                await replication?.close().catch(() => undefined);
                replication = undefined;
                replication = await attach();
              }
              throw error;
            }
          });
          results.push({ name: store.name, ...result, writeDowntimeMs: result.writeDowntimeMs === null ? null : Math.round(result.writeDowntimeMs) });
        } finally {
          await replication?.close();
        }
      }
      const measured = results.flatMap((result) => (result.writeDowntimeMs === null ? [] : [result.writeDowntimeMs]));
      const writeDowntimeMs = measured.length > 0 ? Math.max(...measured) : null;
      return {
        summary: `${count(results.length, 'store')} promoted${writeDowntimeMs === null ? '' : `, write downtime ${writeDowntimeMs} ms`}`,
        details: results.map((result) => `${result.name}: ${result.alreadyPromoted ? 'promoted in an earlier run' : `writes refused for ${result.writeDowntimeMs} ms`}`),
        output: { writeDowntimeMs, stores: results },
      };
    },
  };
}

/** Compares each store's source and target; a difference stops the run before DNS moves. */
export function verifyDataStep(options: { stores: readonly DataStoreMove[]; provisioned?: string; sample?: number; id?: string }): MigrationStep {
  const provisioned = options.provisioned ?? 'provision-target';
  return {
    id: options.id ?? 'verify-data',
    title: `Verify ${options.stores.map((store) => store.name).join(', ')}`,
    async describe() {
      return options.stores.map((store) => `would compare ${store.name} on both sides with ${store.mover.id}${options.sample ? ` (a sample of ${options.sample})` : ' (complete)'}`);
    },
    async run(context) {
      const stores: JsonValue[] = [];
      for (const store of options.stores) {
        context.progress(`${store.name}: verifying`);
        const { source, target } = await reach(store, context, provisioned);
        const report = await acrossDrops(store, context, () => store.mover.verify(source, target, { signal: context.signal, ...(options.sample ? { sample: options.sample } : {}) }));
        if (!report.ok) {
          const listed = (report.differences ?? []).slice(0, 20).map((difference) => `\n  ${difference.kind}: ${difference.object}: ${difference.detail}`);
          const more = (report.differences?.length ?? 0) > listed.length ? `\n  ... and ${(report.differences?.length ?? 0) - listed.length} more` : '';
          throw new ValidationError(`${store.name} differs between source and target: ${listed.length > 0 ? `${listed.join('')}${more}` : (report.firstDifference ?? 'no detail')}`);
        }
        stores.push({ name: store.name, ok: true, compared: report.compared, notes: report.notes ?? [] });
      }
      return {
        summary: `${count(stores.length, 'store')} identical`,
        details: stores.flatMap((entry) => {
          const store = entry as { name: string; compared: number; notes: string[] };
          return [`${store.name}: ${Number(store.compared).toLocaleString('en-US')} compared, identical`, ...store.notes.map((note) => `${store.name}: note: ${note}`)];
        }),
        output: { stores },
      };
    },
  };
}

/** A record to move, and where it should point: fixed addresses or a provisioned instance's. */
export interface DnsRecordMove {
  name: string;
  type: 'A' | 'AAAA' | 'CNAME';
  to: string[] | { instance: string | string[]; address?: 'publicIp' | 'privateIp' };
}

export interface DnsStepOptions {
  dns: DnsService;
  zone: string;
  records: readonly DnsRecordMove[];
  /** TTL during and after the move (default 60 s). */
  lowTtl?: number;
  id?: string;
}

/** Ahead of time: lower the TTLs (the old records are the output: what a rollback restores). */
export function lowerDnsTtlStep(options: DnsStepOptions): MigrationStep {
  const lowTtl = options.lowTtl ?? 60;
  const switches = options.records.map((record) => ({ name: record.name, type: record.type, to: [] }));
  return {
    id: options.id ?? 'lower-dns-ttl',
    title: `Lower the TTLs in ${options.zone} to ${lowTtl} s`,
    async describe(context) {
      const live = await options.dns.listRecords(options.zone, { signal: context.signal });
      return options.records.map((record) => {
        const found = live.find((entry) => entry.name === record.name && entry.type === record.type);
        return found ? `${record.name} ${record.type}: TTL ${found.ttl} -> ${lowTtl}` : `${record.name} ${record.type}: MISSING from ${options.zone}`;
      });
    },
    async run(context) {
      const snapshot = await lowerDnsTtl(options.dns, { zone: options.zone, records: switches, lowTtl, signal: context.signal });
      return {
        summary: `${count(snapshot.records.length, 'record')} lowered to ${lowTtl} s (longest old TTL ${snapshot.longestTtl} s)`,
        details: snapshot.records.map((record) => `${record.name} ${record.type} ${record.values.join(', ')} (was TTL ${record.ttl})`),
        output: snapshot as unknown as JsonValue,
      };
    },
  };
}

export interface SwitchDnsOptions extends DnsStepOptions {
  /** The step that lowered the TTLs (default `lower-dns-ttl`). */
  lowered?: string;
  provisioned?: string;
  /** How to wait out the old TTL (tests and the demo pass a shorter wait). */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Waits out the old TTL, points the records at the target, and reads them back through the API. */
export function switchDnsStep(options: SwitchDnsOptions): MigrationStep {
  const lowered = options.lowered ?? 'lower-dns-ttl';
  const provisioned = options.provisioned ?? 'provision-target';
  const addressesOf = (record: DnsRecordMove, context: StepContext): string[] => {
    if (Array.isArray(record.to)) return record.to;
    const { instance, address = 'publicIp' } = record.to;
    const instances = context.outputOf<ProvisionOutput>(provisioned).instances;
    return [instance].flat().map((name) => {
      const value = instances.find((entry) => entry.name === name)?.[address];
      if (!value) throw new ValidationError(`DNS record ${record.name} should point at ${name}'s ${address}, which provisioning did not report.`);
      return value;
    });
  };
  return {
    id: options.id ?? 'switch-dns',
    title: `Switch ${options.records.map((record) => record.name).join(', ')} to the target`,
    async describe(context) {
      return options.records.map((record) => {
        const to = Array.isArray(record.to) ? record.to.join(', ') : context.hasOutput(provisioned) ? addressesOf(record, context).join(', ') : `the ${record.to.address ?? 'publicIp'} of ${[record.to.instance].flat().join(', ')}`;
        return `would point ${record.name} ${record.type} at ${to}`;
      });
    },
    async run(context) {
      const snapshot = context.outputOf<JsonValue>(lowered) as unknown as DnsSnapshot;
      const records = options.records.map((record) => ({ name: record.name, type: record.type, to: addressesOf(record, context) }));
      // The wait may be capped by the caller: report what was really waited, next to the TTL.
      let waitedMs = 0;
      const wait = async (ms: number, signal?: AbortSignal) => {
        const started = performance.now();
        await (options.wait ?? sleep)(ms, signal);
        waitedMs += performance.now() - started;
      };
      const report = await switchDns(options.dns, snapshot, {
        zone: options.zone,
        records,
        signal: context.signal,
        wait,
        ...(options.lowTtl === undefined ? {} : { lowTtl: options.lowTtl }),
        onProgress: (message) => context.progress(message),
      });
      const cutoverAt = new Date().toISOString();
      const oldTtlMs = report.waitedMs;
      return {
        summary: `${count(report.switched.length, 'record')} switched at ${cutoverAt} after waiting ${seconds(waitedMs)}${waitedMs + 1000 < oldTtlMs ? ` of the old TTL's ${seconds(oldTtlMs)} (capped: resolvers may still hold the old answers)` : ''}`,
        details: report.switched.map((record) => `${record.name} ${record.type} -> ${record.values.join(', ')} (TTL ${record.ttl})`),
        output: { cutoverAt, waitedMs: Math.round(waitedMs), oldTtlMs, switched: report.switched.map((record) => ({ name: record.name, type: record.type, values: record.values, ttl: record.ttl })) },
      };
    },
  };
}

/** Destroys the source environment: last, and only when asked. */
export function decommissionSourceStep(options: { provider: ProviderV1; environment: string; statePath?: string; id?: string }): MigrationStep {
  return {
    id: options.id ?? 'decommission-source',
    title: `Decommission ${options.environment} on ${options.provider.id}`,
    async describe(context) {
      return renderPlanText(await planDestroy({ environment: options.environment, provider: options.provider, signal: context.signal })).split('\n');
    },
    async run(context) {
      const { plan, execution } = await destroyEnvironment({ environment: options.environment, provider: options.provider, signal: context.signal, ...(options.statePath ? { statePath: options.statePath } : {}) });
      if (execution.status !== 'succeeded') throw new ValidationError(`Decommissioning ${options.environment} did not finish: ${execution.failed.map((failure) => failure.error.message).join('; ')}`);
      const deleted = plan.summary.delete ?? 0;
      return { summary: `${count(deleted, 'resource')} deleted on ${options.provider.id}`, output: { deleted } };
    },
  };
}

/** Everything a standard migration needs, in one place. */
export interface MigrationDefinition {
  name: string;
  source: { provider: ProviderV1; environment: string; statePath?: string };
  target: { provider: ProviderV1; spec: EnvironmentSpec; statePath?: string };
  rules?: readonly PolicyRule[];
  servers?: Omit<ConfigureServersOptions, 'provisioned' | 'id' | 'part'>;
  data?: readonly DataStoreMove[];
  verify?: { sample?: number };
  dns?: Omit<SwitchDnsOptions, 'id' | 'lowered' | 'provisioned'>;
  decommissionSource?: boolean;
}

/** The story's order; leave out what the definition does not have. Add, remove or reorder freely. */
export function standardMigrationSteps(definition: MigrationDefinition): MigrationStep[] {
  const { target } = definition;
  const steps: MigrationStep[] = [
    checkPoliciesStep({ spec: target.spec, provider: target.provider, ...(definition.rules ? { rules: definition.rules } : {}) }),
    provisionStep({ spec: target.spec, provider: target.provider, ...(target.statePath ? { statePath: target.statePath } : {}), ...(definition.rules ? { rules: definition.rules } : {}) }),
  ];
  if (definition.servers) {
    // The system first (users, packages, services), then the apps as the users it made.
    const hasApps = Object.values(definition.servers.policies.roles).some((policy) => policy.apps.length > 0);
    steps.push(configureServersStep({ ...definition.servers, part: hasApps ? 'system' : 'all' }));
    if (hasApps) steps.push(configureServersStep({ ...definition.servers, part: 'apps' }));
  }
  const data = definition.data ?? [];
  const verify = verifyDataStep({ stores: data, ...(definition.verify?.sample ? { sample: definition.verify.sample } : {}) });
  if (data.some(replicates)) {
    // Replicated stores keep changing until the cutover: verify after it, while the source is
    // read-only and DNS still points at it, so nothing writes to either side.
    const replications = new ReplicationRegistry();
    steps.push(copyDataStep({ stores: data, replications }));
    if (definition.dns) steps.push(lowerDnsTtlStep(definition.dns));
    steps.push(cutoverDataStep({ stores: data, replications }), verify);
    if (definition.dns) steps.push(switchDnsStep(definition.dns));
  } else {
    if (data.length > 0) steps.push(copyDataStep({ stores: data }), verify);
    if (definition.dns) steps.push(lowerDnsTtlStep(definition.dns), switchDnsStep(definition.dns));
  }
  if (definition.decommissionSource) {
    steps.push(decommissionSourceStep({ provider: definition.source.provider, environment: definition.source.environment, ...(definition.source.statePath ? { statePath: definition.source.statePath } : {}) }));
  }
  return steps;
}

export type { StepResult };
