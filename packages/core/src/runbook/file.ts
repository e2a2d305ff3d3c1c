/**
 * A migration as a file (YAML or JSON), for `armada migrate` and for tooling: which environment
 * moves from which provider to which, how to reach the new servers, which data stores to move and
 * which DNS records to switch. The file holds no secret: passwords and keys are named by the
 * environment variable or the file that holds them, and read only when the migration runs.
 *
 * `migrationFromFile` turns it into the steps of `standardMigrationSteps`, taking providers, data
 * movers and config managers from a plugin registry, so a third-party provider works here as soon
 * as its plugin is registered.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import type { DataEndpoint, DataMoverV1 } from '../data-mover.js';
import { NotFoundError, ValidationError, type ValidationIssue } from '../errors.js';
import { sleep } from '../execute/retry.js';
import type { PluginRegistry } from '../registry.js';
import { loadServerPoliciesFile } from '../server/policy.js';
import { loadSpecFile, parseSpecText, toIssues } from '../spec/load.js';
import { knownHostsStore, withJsonPins, withPins } from '../ssh/known-hosts.js';
import { parseJump, sshConfigFor } from '../ssh/ssh-config.js';
import { connectSsh, fingerprintOf, type SshSession } from '../ssh/transport.js';
import { SessionKeeper } from '../ssh/tunnel.js';
import { discover } from '../plan/planner.js';
import { openReplicationTunnel, replicationPort, type ReplicationTunnel, type SshDataRoute, sshDataRoute } from './data-routes.js';
import { waitUntil } from '../execute/wait.js';
import type { ProviderV1 } from '../provider.js';
import { instanceIssue, targetReachIssue, knownHostsCheck, migrationPreflight, roleIssues, sameEndpointIssue, sshKeyCheck } from './file-preflight.js';
import { knownIssuesCheck, type PreflightCheck } from './preflight.js';
import type { MigrationStep } from './runbook.js';
import { type DataRoute, type DataStoreMove, type DataStoreRoutes, type MigrationDefinition, type ProvisionedInstance, standardMigrationSteps } from './steps.js';

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/i, 'letters, digits, - and _');
const providerRef = z.strictObject({ id: z.string().min(1), region: z.string().min(1) });
const hostPort = z.string().regex(/^[^:\s]+(:\d{1,5})?$/, 'host or host:port');
const fingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'an OpenSSH SHA256 fingerprint (SHA256:... as ssh-keygen -l prints it)');

/**
 * A jump host to reach a store through (an SSH tunnel, as `ssh -L` makes): an instance of the
 * store's own environment by name (the source environment's, found by discovery; the target's,
 * reached as servers.ssh says), or a named bastion. User and key default to servers.ssh's.
 */
const viaSchema = z.union([
  z.strictObject({
    instance: z.string().min(1),
    user: z.string().min(1).optional(),
    /** The instance's host key fingerprints (a source droplet's, from your known_hosts); target instances also take servers.ssh.hostKeys. */
    hostKeys: z.union([fingerprintSchema, z.array(fingerprintSchema).min(1)]).optional(),
  }),
  z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    privateKeyPath: z.string().min(1).optional(),
    /** The bastion's host key fingerprints; without them the known_hosts store decides (strictHostKeys). */
    hostKeys: z.union([fingerprintSchema, z.array(fingerprintSchema).min(1)]).optional(),
  }),
]);

const endpointFields = {
  port: z.number().int().min(1).max(65535),
  /** Reach the store through this jump host instead of directly. */
  via: viaSchema.optional(),
  user: z.string().min(1).optional(),
  /** The environment variable holding the password: the file never holds it. */
  passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
  databases: z.array(z.union([z.string().min(1), z.number().int().min(0)])).optional(),
};
const fixedEndpoint = z.strictObject({ host: z.string().min(1), ...endpointFields });
/** The target is often a server that provisioning makes: name it, and its address is used. */
const instanceEndpoint = z.strictObject({ instance: z.string().min(1), address: z.enum(['publicIp', 'privateIp']).default('privateIp'), ...endpointFields });

export const migrationFileSchema = z.strictObject({
  name,
  /** Where the checkpoint and the step files live (relative to the file). Default: `.armada/migrations/<name>` in the working directory, where `armada status` looks. */
  directory: z.string().min(1).optional(),
  source: z.strictObject({
    /** The source environment's name (what to decommission); its spec is not needed. */
    environment: name,
    provider: providerRef,
  }),
  target: z.strictObject({ spec: z.string().min(1), provider: providerRef, state: z.string().min(1).optional() }),
  servers: z
    .strictObject({
      configManager: z.string().min(1).default('puppet'),
      policies: z.string().min(1),
      /** Servers configured at once. Set 1 when several instances map to one machine (`ssh.hosts`). */
      concurrency: z.number().int().min(1).max(64).default(4),
      ssh: z.strictObject({
        /** Without it: User from your SSH config for the host. */
        user: z.string().min(1).optional(),
        /** Without it: the IdentityFile your SSH config names for the host, or the keys of ssh-agent (SSH_AUTH_SOCK). */
        privateKeyPath: z.string().min(1).optional(),
        /**
         * The SSH config whose Host entries apply (HostName, User, Port, IdentityFile, ProxyJump),
         * as `ssh` reads them for the address connected to. Default `~/.ssh/config`; what the
         * migration file sets itself wins.
         */
        config: z.string().min(1).optional(),
        address: z.enum(['publicIp', 'privateIp']).default('publicIp'),
        /**
         * An instance of the target environment (a public one) through which the instances that
         * have no `address` (the private ones) are reached: their private address, through it.
         */
        jumpHost: z.string().min(1).optional(),
        /** Per instance name (or `*`), where to connect instead: a tunnel, a bastion's forward, a test server. */
        hosts: z.record(z.string().min(1), hostPort).default({}),
        /**
         * The project's pinned host keys, in OpenSSH's known_hosts format (relative to the file).
         * Default: `.armada/known_hosts` in the working directory. Never inside a run's directory:
         * starting a migration over never forgets a pin.
         */
        knownHosts: z.string().min(1).optional(),
        /** Refuse a server whose host key nothing pins (no trust on first use). */
        strictHostKeys: z.boolean().default(false),
        /**
         * Expected host keys per instance name (or `*`): fingerprints (`SHA256:...`), or `console`:
         * the keys the instance printed on its console at first boot, read through the target
         * provider (EC2 GetConsoleOutput) before the first connection.
         */
        hostKeys: z.record(z.string().min(1), z.union([z.literal('console'), fingerprintSchema, z.array(fingerprintSchema).min(1)])).default({}),
        waitSeconds: z.number().int().min(1).default(300),
      }),
    })
    .optional(),
  data: z
    .array(
      z.strictObject({
        name,
        mover: z.string().min(1),
        source: fixedEndpoint,
        target: z.union([fixedEndpoint, instanceEndpoint]),
        /** `replicate`: the target follows the source until the cutover (near-zero write downtime). */
        mode: z.enum(['copy', 'replicate']).default('copy'),
        /**
         * How the target's server reaches the source's while replicating: `direct` at the source's
         * own address (one network, or a site-to-site link such as WireGuard between the clouds),
         * or `tunnel`: a forward on the target host's loopback that Armada keeps up, relayed through
         * the source's jump host. Default: `tunnel` when the source has a `via`, else `direct`.
         */
        replication: z.strictObject({ path: z.enum(['direct', 'tunnel']) }).optional(),
        replaceExisting: z.boolean().default(false),
        concurrency: z.number().int().min(1).max(64).optional(),
        /** Mover-specific copy options (`chunkRows`, `bigKeyBytes`, ...), passed as they are. */
        options: z.record(z.string(), z.unknown()).default({}),
      }),
    )
    .default([]),
  verify: z.strictObject({ sample: z.number().int().min(1).optional() }).default({}),
  dns: z
    .strictObject({
      /** Whose DNS service holds the zone. */
      provider: z.enum(['source', 'target']),
      zone: z.string().min(1),
      lowTtl: z.number().int().min(1).default(60),
      /** Wait at most this long for the old TTL to run out (default: all of it). Shorter risks stale answers. */
      maxWaitSeconds: z.number().int().min(0).optional(),
      records: z
        .array(
          z.strictObject({
            name: z.string().min(1),
            type: z.enum(['A', 'AAAA', 'CNAME']).default('A'),
            to: z.union([z.array(z.string().min(1)).min(1), z.strictObject({ instance: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]), address: z.enum(['publicIp', 'privateIp']).default('publicIp') })]),
          }),
        )
        .min(1),
    })
    .optional(),
  decommissionSource: z.boolean().default(false),
});

export type MigrationFile = z.infer<typeof migrationFileSchema> & { /** The file's directory: relative paths are read from it. */ baseDirectory: string };

/** Reads and validates a migration file; every problem is listed at once. */
export async function loadMigrationFile(path: string): Promise<MigrationFile> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new ValidationError(`Cannot read the migration file ${path}: ${error.code ?? error.message}.`);
  });
  const input = parseSpecText(text, path);
  const parsed = migrationFileSchema.safeParse(input);
  if (!parsed.success) {
    const issues = toIssues(parsed.error, { schema: migrationFileSchema, input });
    throw new ValidationError(`The migration file ${path} has ${issues.length} problem(s):`, { issues });
  }
  return { ...parsed.data, baseDirectory: dirname(resolve(path)) };
}

export interface MigrationFromFileOptions {
  registry: PluginRegistry;
  /** Where secrets come from (passwords by `passwordEnv`, server policy secrets). Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** How the DNS step waits out the old TTL (tests shorten it). */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The working directory: the default checkpoint directory is `.armada/migrations/<name>` in it. Default: process.cwd(). */
  cwd?: string;
}

export interface LoadedMigration {
  name: string;
  directory: string;
  definition: MigrationDefinition;
  steps: MigrationStep[];
  /** Checked before anything is created, in the dry run and in every real run: pass to runMigration. */
  preflight: PreflightCheck[];
  /**
   * Ends what the migration keeps open between steps: its SSH tunnels to the data stores and the
   * replication paths. Call it when the run ends (the `armada` command does); a replica whose
   * path is closed waits, reconnecting, until a resumed run opens it again.
   */
  close(): Promise<void>;
}

const expandHome = (path: string) => (path.startsWith('~/') ? join(homedir(), path.slice(2)) : path);

/**
 * The fingerprints of the host keys an instance printed on its console, waiting (up to `timeoutMs`)
 * while it has printed none yet: a new instance writes them at the end of its first boot.
 */
async function consoleFingerprints(provider: ProviderV1, instance: ProvisionedInstance, timeoutMs: number, signal?: AbortSignal): Promise<string[]> {
  const read = provider.consoleHostKeys?.bind(provider);
  if (!read) throw new ValidationError(`The target provider (${provider.id}) cannot read the console output of ${instance.name}.`);
  const keys = await waitUntil(
    async () => {
      const found = await read(instance.id, signal ? { signal } : {});
      return found.length > 0 ? { done: true, value: found } : { done: false, state: 'no host keys on its console yet' };
    },
    { description: `the host keys of ${instance.name} (${instance.id}) on its console`, minDelayMs: 1000, maxDelayMs: 10_000, timeoutMs, ...(signal ? { signal } : {}), provider: provider.id },
  );
  return keys.map((key) => fingerprintOf(Buffer.from(key.split(' ')[1] ?? '', 'base64')));
}

/** A file the migration names that cannot be read or is not valid, as issues at the field that names it. */
function fileIssues(field: string, path: string, error: unknown): ValidationIssue[] {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return [{ path: field, message: `${path} does not exist`, fix: 'correct the path (a relative path is read from the migration file\'s directory)' }];
  if (code) return [{ path: field, message: `${path} cannot be read (${code})`, fix: 'check the path and its permissions' }];
  if (ValidationError.isInstance(error) && error.issues.length > 0) return error.issues.map((issue) => ({ ...issue, path: `${field} (${path}): ${issue.path || '(root)'}` }));
  return [{ path: field, message: `${path}: ${(error as Error).message.split('\n')[0]}` }];
}

/** A plugin the file names, or an issue naming the field and what is registered. */
function registered<T>(found: ValidationIssue[], field: string, what: string, id: string, known: string[], make: () => T): T | undefined {
  try {
    return make();
  } catch (error) {
    if (!NotFoundError.isInstance(error)) throw error;
    found.push({ path: field, message: `no ${what} "${id}" is registered`, fix: known.length > 0 ? `use one of: ${known.join(', ')}; or register its plugin (--plugin)` : 'register its plugin (--plugin)' });
    return undefined;
  }
}

/**
 * Builds the migration's steps and its preflight from a loaded file, with providers, movers and
 * config managers from the registry. What keeps the migration from being built (a file that is
 * missing, a plugin that is not registered) is thrown at once, with every other problem of the file
 * found so far; problems of what the file refers to go into the preflight, which reports them with
 * the live checks.
 */
export async function migrationFromFile(file: MigrationFile, options: MigrationFromFileOptions): Promise<LoadedMigration> {
  const env = options.env ?? process.env;
  const at = (path: string) => resolve(file.baseDirectory, expandHome(path));
  const directory = file.directory ? at(file.directory) : resolve(options.cwd ?? process.cwd(), '.armada', 'migrations', file.name);
  const { registry } = options;
  const knownHostsPath = (ssh: { knownHosts?: string | undefined }) => (ssh.knownHosts ? at(ssh.knownHosts) : resolve(options.cwd ?? process.cwd(), '.armada', 'known_hosts'));
  const blocking: ValidationIssue[] = [];
  const found: ValidationIssue[] = [];

  const providerAt = (field: 'source' | 'target') =>
    registered(blocking, `${field}.provider.id`, 'provider', file[field].provider.id, registry.providerIds(), () => registry.provider(file[field].provider.id, file[field].provider.region));
  const source = providerAt('source');
  const target = providerAt('target');
  const spec = await loadSpecFile(at(file.target.spec)).catch((error: unknown) => {
    blocking.push(...fileIssues('target.spec', at(file.target.spec), error));
    return undefined;
  });
  if (spec && target && spec.provider.id !== target.id) {
    // One spec serves any cloud: the file's target provider wins over the spec's own.
    Object.assign(spec, { provider: { ...spec.provider, id: target.id, region: target.region } });
  }
  const policies = file.servers
    ? await loadServerPoliciesFile(at(file.servers.policies)).catch((error: unknown) => {
        blocking.push(...fileIssues('servers.policies', at(file.servers?.policies ?? ''), error));
        return undefined;
      })
    : undefined;
  const configManager = file.servers
    ? registered(blocking, 'servers.configManager', 'config manager', file.servers.configManager, registry.configManagerIds(), () => registry.configManager(file.servers?.configManager ?? ''))
    : undefined;
  const movers = file.data.map((store, index) => registered(blocking, `data[${index}].mover`, 'data mover', store.mover, registry.dataMoverIds(), () => registry.dataMover(store.mover)));

  // What the file refers to, checked against the spec and the policies.
  if (spec) {
    file.data.forEach((store, index) => {
      if ('instance' in store.target) {
        const missing = instanceIssue(`data[${index}].target.instance`, store.target.instance, spec);
        if (missing) found.push(missing);
        else {
          const unreachable = targetReachIssue(spec, store.target.instance, store.target.port, store.target.address, `data[${index}].target`);
          if (unreachable) found.push(unreachable);
        }
      }
    });
    file.dns?.records.forEach((record, index) => {
      if (Array.isArray(record.to)) return;
      for (const name of [record.to.instance].flat()) {
        const missing = instanceIssue(`dns.records[${index}].to.instance`, name, spec);
        if (missing) found.push(missing);
      }
    });
    if (policies) found.push(...roleIssues(spec, policies, 'servers.policies'));
    for (const [name, pins] of Object.entries(file.servers?.ssh.hostKeys ?? {})) {
      const missing = name === '*' ? undefined : instanceIssue(`servers.ssh.hostKeys.${name}`, name, spec);
      if (missing) found.push(missing);
      if (pins === 'console' && target && !target.consoleHostKeys) {
        found.push({ path: `servers.ssh.hostKeys.${name}`, message: `the target provider (${target.id}) cannot read an instance's console output`, fix: 'pin the fingerprints instead (SHA256:..., as ssh-keygen -l prints them)' });
      }
    }
  }
  file.data.forEach((store, index) => {
    if ('host' in store.target) {
      const same = sameEndpointIssue(`data[${index}].target`, store.source, store.target);
      if (same) found.push(same);
    }
  });
  if (blocking.length > 0 || !source || !target || !spec) {
    throw new ValidationError(`The migration "${file.name}" cannot be run: ${blocking.length + found.length} problem(s); nothing was created:`, { issues: [...blocking, ...found] });
  }

  const password = (variable: string | undefined, where: string): string | undefined => {
    if (variable === undefined) return undefined;
    const value = env[variable];
    if (value === undefined) found.push({ path: `${where}.passwordEnv`, message: `${variable} is not set`, fix: `export ${variable}=...` });
    return value;
  };
  const endpoint = (fields: z.infer<typeof fixedEndpoint> | z.infer<typeof instanceEndpoint>, host: string, where: string): DataEndpoint => {
    const secret = password(fields.passwordEnv, where);
    return { host, port: fields.port, ...(fields.user ? { user: fields.user } : {}), ...(secret === undefined ? {} : { password: secret }), ...(fields.databases ? { databases: fields.databases } : {}) };
  };

  // SSH, for the servers and for the tunnels to the data stores.
  const ssh = file.servers?.ssh;
  const hostKeys = withJsonPins(knownHostsStore(knownHostsPath(ssh ?? {}), { strict: ssh?.strictHostKeys ?? false }), join(directory, 'known_hosts.json'));
  const sshConfig = ssh?.config ? at(ssh.config) : join(env.HOME ?? homedir(), '.ssh', 'config');
  // Read when a server is first reached (a dry run needs no key), each file once.
  const keys = new Map<string, Promise<string>>();
  const keyAt = (path: string) => {
    let key = keys.get(path);
    if (!key) keys.set(path, (key = readFile(path, 'utf8')));
    return key;
  };
  /** Where and how to reach `name` (an address or a `hosts` alias), the file's settings first, then the SSH config's. */
  const reach = async (name: string, port: number | undefined, user: string | undefined, keyPath?: string, field = 'servers.ssh') => {
    const config = await sshConfigFor(name, sshConfig, env.HOME ?? homedir());
    const privateKeyPath = keyPath ?? (ssh?.privateKeyPath ? at(ssh.privateKeyPath) : config.identityFile);
    const username = user ?? ssh?.user ?? config.user;
    if (!username) throw new ValidationError(`No SSH user for ${name}.`, { issues: [{ path: `${field}.user`, message: `neither the migration file nor ${sshConfig} names a user for ${name}`, fix: `set ${field}.user, or User in your SSH config` }] });
    if (!privateKeyPath && !env.SSH_AUTH_SOCK) throw new ValidationError(`No SSH key for ${name}.`, { issues: [{ path: `${field}.privateKeyPath`, message: 'no key file is named and no ssh-agent runs (SSH_AUTH_SOCK)', fix: `set ${field}.privateKeyPath, IdentityFile in your SSH config, or load the key into ssh-agent` }] });
    return {
      host: config.hostName ?? name,
      port: port ?? config.port ?? 22,
      username,
      ...(privateKeyPath ? { privateKey: await keyAt(privateKeyPath) } : {}),
      ...(env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {}),
      proxyJump: config.proxyJump,
    };
  };
  const waitMs = (ssh?.waitSeconds ?? 300) * 1000;
  const pinsOf = async (instance: ProvisionedInstance, signal?: AbortSignal): Promise<string[]> => {
    const wanted = ssh?.hostKeys[instance.name] ?? ssh?.hostKeys['*'];
    return wanted === 'console' ? consoleFingerprints(target, instance, waitMs, signal) : [wanted ?? []].flat();
  };
  /** An SSH session to a new instance: its `address`, a `hosts` override, or its private address through the jump host. */
  const connectInstance = async (instance: ProvisionedInstance, instances: readonly ProvisionedInstance[], signal?: AbortSignal, user?: string) => {
    const settings = ssh ?? { address: 'publicIp' as const, hosts: {} as Record<string, string>, jumpHost: undefined };
    const override = settings.hosts[instance.name] ?? settings.hosts['*'];
    const jumpName = settings.jumpHost && settings.jumpHost !== instance.name && !instance[settings.address] && !override ? settings.jumpHost : undefined;
    const address = jumpName ? instance.privateIp : instance[settings.address];
    const [name, port] = override ? (override.split(':') as [string, string | undefined]) : [address, undefined];
    if (!name) {
      throw new ValidationError(`Instance ${instance.name} has no ${settings.address} to connect to.`, {
        issues: [{ path: 'servers.ssh.address', message: `${instance.name} has no ${settings.address}`, fix: 'set servers.ssh.jumpHost to a public instance, use the other address, or map the instance in servers.ssh.hosts' }],
      });
    }
    const { proxyJump, ...server } = await reach(name, port === undefined ? undefined : Number(port), user);
    let jumpHost: Awaited<ReturnType<typeof reach>> | undefined;
    if (jumpName) {
      const jump = instances.find((entry) => entry.name === jumpName);
      const jumpAddress = jump?.[settings.address];
      if (!jump || !jumpAddress) throw new ValidationError(`The jump host ${jumpName} has no ${settings.address}.`, { issues: [{ path: 'servers.ssh.jumpHost', message: `${jumpName} is not a provisioned instance with a ${settings.address}`, fix: `use one of: ${instances.filter((entry) => entry[settings.address]).map((entry) => entry.name).join(', ')}` }] });
      jumpHost = await reach(jumpAddress, undefined, user);
    } else if (proxyJump) {
      const jump = parseJump(proxyJump);
      jumpHost = await reach(jump.host, jump.port, jump.user);
    }
    const pins = await pinsOf(instance, signal);
    // The jump host's own key is pinned as for any instance (console keys, fingerprints).
    const jumpInstance = jumpName ? instances.find((entry) => entry.name === jumpName) : undefined;
    const jumpPins = jumpInstance ? await pinsOf(jumpInstance, signal) : [];
    const store = jumpHost && jumpPins.length > 0 ? withPins(hostKeys, `${jumpHost.host}:${jumpHost.port}`, jumpPins) : hostKeys;
    return connectSsh({
      ...server,
      ...(jumpHost ? { jumpHost: { host: jumpHost.host, port: jumpHost.port, username: jumpHost.username, ...(jumpHost.privateKey ? { privateKey: jumpHost.privateKey } : {}), ...(jumpHost.agent ? { agent: jumpHost.agent } : {}) } } : {}),
      hostKeys: withPins(store, `${server.host}:${server.port}`, pins),
      waitTimeoutMs: waitMs,
      ...(signal ? { signal } : {}),
    });
  };

  // Tunnels: one SSH session per jump host, shared by every store behind it and kept up.
  const keepers = new Map<string, SessionKeeper>();
  const routes = new Map<string, SshDataRoute>();
  const replicationTunnels = new Map<string, Promise<ReplicationTunnel>>();
  const routeOf = (key: string, description: string, open: (signal?: AbortSignal) => Promise<SshSession>): SshDataRoute => {
    let route = routes.get(key);
    if (!route) {
      const keeper = new SessionKeeper(open, description);
      keepers.set(key, keeper);
      route = sshDataRoute(keeper);
      routes.set(key, route);
    }
    return route;
  };
  let sourceInstances: Promise<readonly ProvisionedInstance[]> | undefined;
  /** The source environment's instances, found by discovery (read only), for `via: { instance }` on the source side. */
  const discoverSource = () => {
    sourceInstances ??= discover(source, file.source.environment).then((observed) =>
      observed
        .filter((resource) => resource.kind === 'instance')
        .map((resource) => ({
          name: resource.name,
          id: resource.id,
          role: null,
          publicIp: typeof resource.outputs.publicIp === 'string' ? resource.outputs.publicIp : null,
          privateIp: typeof resource.outputs.privateIp === 'string' ? resource.outputs.privateIp : null,
        })),
    );
    return sourceInstances;
  };
  type Via = z.infer<typeof viaSchema>;
  const bastionRoute = (via: Extract<Via, { host: string }>, where: string) =>
    routeOf(`bastion ${via.host}:${via.port ?? 22}`, `${via.user ?? ssh?.user ?? ''}${via.user ?? ssh?.user ? '@' : ''}${via.host}:${via.port ?? 22}`, async (signal) => {
      const { proxyJump: _ignored, ...server } = await reach(via.host, via.port, via.user, via.privateKeyPath ? at(via.privateKeyPath) : undefined, `${where}.via`);
      const pins = via.hostKeys ? [via.hostKeys].flat() : [];
      return connectSsh({ ...server, hostKeys: pins.length > 0 ? withPins(hostKeys, `${server.host}:${server.port}`, pins) : hostKeys, waitTimeoutMs: waitMs, ...(signal ? { signal } : {}) });
    });
  const sourceRouteOf = (via: Via, where: string): DataRoute => {
    if ('host' in via) return bastionRoute(via, where);
    return routeOf(`source instance ${via.instance}`, `${via.instance} of ${file.source.environment}`, async (signal) => {
      const instances = await discoverSource();
      const jump = instances.find((entry) => entry.name === via.instance);
      if (!jump?.publicIp) {
        throw new ValidationError(`${where}.via names ${via.instance}, which the source environment ${file.source.environment} has no public instance of.`, {
          issues: [{ path: `${where}.via.instance`, message: `no public instance ${via.instance} in ${file.source.environment}`, fix: `use one of: ${instances.filter((entry) => entry.publicIp).map((entry) => entry.name).join(', ') || '(none has a public address: name a bastion by host)'}` }],
        });
      }
      const { proxyJump: _ignored, ...server } = await reach(jump.publicIp, undefined, via.user, undefined, `${where}.via`);
      const pins = via.hostKeys ? [via.hostKeys].flat() : [];
      return connectSsh({ ...server, hostKeys: pins.length > 0 ? withPins(hostKeys, `${server.host}:${server.port}`, pins) : hostKeys, waitTimeoutMs: waitMs, ...(signal ? { signal } : {}) });
    });
  };
  const targetRouteOf = (via: Via, where: string): DataRoute | ((instances: readonly ProvisionedInstance[]) => DataRoute) => {
    if ('host' in via) return bastionRoute(via, where);
    return (instances) => {
      const jump = instances.find((entry) => entry.name === via.instance);
      if (!jump) throw new ValidationError(`${where}.via names instance ${via.instance}, which was not provisioned.`, { issues: [{ path: `${where}.via.instance`, message: 'no such instance', fix: `use one of: ${instances.map((entry) => entry.name).join(', ')}` }] });
      return routeOf(`target instance ${via.instance}`, `${via.instance}`, (signal) => connectInstance(jump, instances, signal, via.user));
    };
  };

  const data: DataStoreMove[] = file.data.map((store, index) => {
    const where = `data[${index}]`;
    const sourceEndpoint = endpoint(store.source, store.source.host, `${where}.source`);
    const targetFields = store.target;
    const targetEndpoint =
      'host' in targetFields
        ? endpoint(targetFields, targetFields.host, `${where}.target`)
        : (() => {
            const secret = password(targetFields.passwordEnv, `${where}.target`);
            return (instances: readonly ProvisionedInstance[]) => {
              const instance = instances.find((entry) => entry.name === targetFields.instance);
              const host = instance?.[targetFields.address];
              if (!host) throw new ValidationError(`${where}.target names instance ${targetFields.instance}, which has no ${targetFields.address}.`, { issues: [{ path: `${where}.target.instance`, message: 'no such instance or address', fix: `use one of: ${instances.map((entry) => entry.name).join(', ')}` }] });
              return { ...endpoint({ ...targetFields, passwordEnv: undefined }, host, `${where}.target`), ...(secret === undefined ? {} : { password: secret }) };
            };
          })();
    const sourceRoute = store.source.via ? sourceRouteOf(store.source.via, `${where}.source`) : undefined;
    const targetRoute = targetFields.via ? targetRouteOf(targetFields.via, `${where}.target`) : undefined;
    const path = store.replication?.path ?? (store.source.via ? 'tunnel' : 'direct');
    let replicationPath: DataStoreRoutes['replicationPath'];
    if (store.mode === 'replicate' && path === 'tunnel') {
      if (!('instance' in targetFields)) {
        found.push({ path: `${where}.replication.path`, message: 'a tunnel for replication needs the target on a provisioned instance (target.instance)', fix: "use replication: { path: direct } with a site-to-site link, or name the target's instance" });
      } else {
        replicationPath = async (instances) => {
          let tunnel = replicationTunnels.get(store.name);
          if (!tunnel) {
            const host = instances.find((entry) => entry.name === targetFields.instance);
            if (!host) throw new ValidationError(`${where}.target names instance ${targetFields.instance}, which was not provisioned.`);
            const keeper = new SessionKeeper((openSignal) => connectInstance(host, instances, openSignal), `${host.name} (the replica's host)`);
            keepers.set(`replica host ${store.name}`, keeper);
            tunnel = openReplicationTunnel(keeper, replicationPort(store.name), { host: sourceEndpoint.host, port: sourceEndpoint.port }, sourceRoute);
            replicationTunnels.set(store.name, tunnel);
            tunnel.catch(() => replicationTunnels.delete(store.name));
          }
          return (await tunnel).seenFromTarget;
        };
      }
    }
    const storeRoutes: DataStoreRoutes = {
      ...(sourceRoute ? { source: sourceRoute } : {}),
      ...(targetRoute ? { target: targetRoute } : {}),
      ...(replicationPath ? { replicationPath } : {}),
    };
    return {
      name: store.name,
      path: where,
      mover: movers[index] as DataMoverV1,
      source: sourceEndpoint,
      target: targetEndpoint,
      copy: { ...store.options, replaceExisting: store.replaceExisting, ...(store.concurrency ? { concurrency: store.concurrency } : {}) },
      mode: store.mode,
      ...(Object.keys(storeRoutes).length > 0 ? { routes: storeRoutes } : {}),
    };
  });

  let servers: MigrationDefinition['servers'];
  if (file.servers && policies && configManager) {
    servers = {
      configManager: configManager as NonNullable<MigrationDefinition['servers']>['configManager'],
      policies,
      secrets: (secret) => env[secret],
      connect: (instance, signal, instances) => connectInstance(instance, instances, signal),
      concurrency: file.servers.concurrency,
    };
  }

  let dns: MigrationDefinition['dns'];
  if (file.dns) {
    const owner = file.dns.provider === 'source' ? source : target;
    if (!owner.dns) {
      found.push({ path: 'dns.provider', message: `the ${file.dns.provider} provider (${owner.id}) has no DNS service`, fix: 'put the zone with the other provider' });
    } else {
      const maxWaitMs = file.dns.maxWaitSeconds === undefined ? undefined : file.dns.maxWaitSeconds * 1000;
      const wait = options.wait ?? sleep;
      dns = {
        dns: owner.dns,
        zone: file.dns.zone,
        lowTtl: file.dns.lowTtl,
        records: file.dns.records,
        wait: (ms, signal) => wait(maxWaitMs === undefined ? ms : Math.min(ms, maxWaitMs), signal),
      };
    }
  }

  const definition: MigrationDefinition = {
    name: file.name,
    source: { provider: source, environment: file.source.environment },
    target: { provider: target, spec, ...(file.target.state ? { statePath: at(file.target.state) } : {}) },
    ...(servers ? { servers } : {}),
    ...(data.length > 0 ? { data } : {}),
    ...(file.verify.sample ? { verify: { sample: file.verify.sample } } : {}),
    ...(dns ? { dns } : {}),
    decommissionSource: file.decommissionSource,
  };
  const preflight: PreflightCheck[] = [
    knownIssuesCheck('the migration file: the instances, roles, DNS records, data stores and variables it names', found),
    ...migrationPreflight(definition, file.dns ? { dnsOwner: { id: (file.dns.provider === 'source' ? source : target).id, which: file.dns.provider } } : {}),
    ...(file.servers?.ssh.privateKeyPath ? [sshKeyCheck('servers.ssh.privateKeyPath', at(file.servers.ssh.privateKeyPath))] : []),
    ...(file.servers ? [knownHostsCheck('servers.ssh.knownHosts', knownHostsPath(file.servers.ssh))] : []),
  ];
  const close = async () => {
    await Promise.all([...replicationTunnels.values()].map((tunnel) => tunnel.then((opened) => opened.close()).catch(() => undefined)));
    await Promise.all([...routes.values()].map((route) => route.close()));
    await Promise.all([...keepers.values()].map((keeper) => keeper.close()));
    replicationTunnels.clear();
    routes.clear();
    keepers.clear();
  };
  return { name: file.name, directory, definition, steps: standardMigrationSteps(definition), preflight, close };
}
