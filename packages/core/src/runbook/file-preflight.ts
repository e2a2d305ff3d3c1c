/**
 * The preflight of a migration file: what its fields refer to (instances of the target spec,
 * roles of the server policies, DNS records, data stores), and the live checks of what it names
 * (the providers' credentials, the DNS zone, the data endpoints, the SSH key). Every issue's path
 * is the field of the migration file to fix (`data[0].target.instance`).
 */
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { verifyProvider } from '../apply.js';
import type { DataEndpoint, DataMoverV1 } from '../data-mover.js';
import { NotFoundError, ValidationError, type ValidationIssue } from '../errors.js';
import { instanceNames } from '../policies/rules.js';
import type { ProviderV1 } from '../provider.js';
import { roleOf, type ServerPolicies } from '../server/policy.js';
import { parseKnownHosts } from '../ssh/known-hosts.js';
import { cidrContains, parseCidr } from '../spec/cidr.js';
import type { EnvironmentSpec } from '../spec/schema.js';
import type { PreflightCheck } from './preflight.js';
import { type DataRoute, endpointThrough, type MigrationDefinition } from './steps.js';

const list = (names: readonly string[]) => (names.length > 10 ? `${names.slice(0, 10).join(', ')}, ... (${names.length} in all)` : names.join(', ') || '(none)');

/** The expanded instances of a spec (`web` x2 -> `web-1`, `web-2`), each with its group. */
export function specInstances(spec: EnvironmentSpec): Array<{ name: string; group: EnvironmentSpec['instances'][number] }> {
  return spec.instances.flatMap((group) => instanceNames(group).map((name) => ({ name, group })));
}

/** An instance named in the migration file that the target spec does not have. */
export function instanceIssue(path: string, name: string, spec: EnvironmentSpec): ValidationIssue | undefined {
  const names = specInstances(spec).map((instance) => instance.name);
  if (names.includes(name)) return undefined;
  return { path, message: `the target spec has no instance "${name}"`, fix: `name one of its instances: ${list(names)}` };
}

/** Every instance that gets a role must find it in the server policies; `assign` must name instances of the spec. */
export function roleIssues(spec: EnvironmentSpec, policies: ServerPolicies, policiesPath: string): ValidationIssue[] {
  const instances = specInstances(spec);
  const issues: ValidationIssue[] = [];
  for (const instance of instances) {
    const role = roleOf(policies, { name: instance.name, ...(instance.group.role !== undefined ? { role: instance.group.role } : {}) });
    if (role !== undefined && !policies.roles[role]) {
      issues.push({
        path: `${policiesPath}: roles`,
        message: `instance ${instance.name} has role "${role}", which the server policies do not define`,
        fix: `add roles.${role} to the policies, or assign ${instance.name} one of: ${list(Object.keys(policies.roles))}`,
      });
    }
  }
  const names = new Set(instances.map((instance) => instance.name));
  for (const name of Object.keys(policies.assign)) {
    if (!names.has(name)) issues.push({ path: `${policiesPath}: assign.${name}`, message: `the target spec has no instance "${name}"`, fix: `name one of: ${list([...names])}` });
  }
  return issues;
}

/**
 * Whether the mover, on the machine that runs the migration, can reach a data target on a new
 * server: the instance has the address the file names (a public one only in a public subnet), and
 * one of its firewalls admits TCP on `port` from where the mover connects: from outside the network
 * for the public address, from inside it (a CIDR in the network, a subnet or a firewall of it: a
 * tunnel or a bastion) for the private one.
 */
export function targetReachIssue(spec: EnvironmentSpec, instanceName: string, port: number, address: 'publicIp' | 'privateIp', path: string): ValidationIssue | undefined {
  const group = specInstances(spec).find((instance) => instance.name === instanceName)?.group;
  if (!group) return undefined;
  const subnet = spec.network.subnets.find((entry) => entry.name === group.subnet);
  if (address === 'publicIp' && subnet?.access !== 'public') {
    return { path: `${path}.address`, message: `${instanceName} is in the private subnet ${group.subnet}: it has no public address`, fix: 'use address: privateIp (through a tunnel or from inside the network)' };
  }
  const network = parseCidr(spec.network.cidr);
  const inside = (cidr: string) => {
    const parsed = parseCidr(cidr);
    return network.ok && parsed.ok && cidrContains(network.cidr, parsed.cidr);
  };
  const fromWhere = (peer: { cidr: string } | { firewall: string } | { subnet: string }) => ('cidr' in peer ? (inside(peer.cidr) ? 'inside' : 'outside') : 'inside');
  const firewalls = spec.firewalls.filter((firewall) => group.firewalls.includes(firewall.name));
  const admitting = firewalls.flatMap((firewall) =>
    firewall.ingress.filter((rule) => (rule.protocol === 'tcp' || rule.protocol === 'all') && (!rule.ports || (rule.ports.from <= port && port <= rule.ports.to))),
  );
  const wanted = address === 'publicIp' ? 'outside' : 'inside';
  if (admitting.some((rule) => fromWhere(rule.from) === wanted || ('cidr' in rule.from && rule.from.cidr === '0.0.0.0/0'))) return undefined;
  return {
    path: `${path}.port`,
    message: `no firewall of ${instanceName} admits TCP port ${port} from ${wanted === 'outside' ? 'outside the network (the mover connects to its public address)' : 'inside the network (the mover connects to its private address)'}`,
    fix: `admit tcp ${port} in a firewall of ${instanceName} from where the mover runs${wanted === 'inside' ? ' (a subnet, a firewall, or a CIDR of the network)' : ' (its address, as a CIDR)'}`,
  };
}

const sameHost = (a: string, b: string) => {
  const loopback = (host: string) => (host === 'localhost' || host === '::1' || host.startsWith('127.') ? 'loopback' : host.toLowerCase());
  return loopback(a) === loopback(b);
};

/** Source and target the same server and (some of) the same databases: a copy onto itself. */
export function sameEndpointIssue(path: string, source: { host: string; port: number; databases?: Array<string | number> | undefined }, target: { host: string; port: number; databases?: Array<string | number> | undefined }): ValidationIssue | undefined {
  if (!sameHost(source.host, target.host) || source.port !== target.port) return undefined;
  const overlap = !source.databases || !target.databases || source.databases.some((database) => target.databases?.map(String).includes(String(database)));
  if (!overlap) return undefined;
  return { path, message: `the target is the source itself (${target.host}:${target.port}): the copy would overwrite what it reads`, fix: 'name the new server as the target' };
}

/** The target provider's (or the source's) credentials and region, with the provider's own verify. */
export function providerCheck(provider: ProviderV1, path: string, signal?: AbortSignal): PreflightCheck {
  return {
    what: `${path === 'target.provider' ? 'target' : 'source'} provider ${provider.id} (${provider.region}): credentials and region`,
    path,
    async check(context) {
      await verifyProvider(provider, { signal: signal ?? context.signal });
      return [];
    },
  };
}

/** The DNS zone is held by the provider the file names, and its records can be read. */
export function dnsZoneCheck(
  dns: NonNullable<ProviderV1['dns']>,
  owner: { id: string; which: 'source' | 'target' } | undefined,
  zone: string,
  records: ReadonlyArray<{ name: string; type?: string | undefined }> = [],
): PreflightCheck {
  const holder = owner ? `the ${owner.which} provider (${owner.id})` : 'its DNS service';
  return {
    what: `DNS zone ${zone} on ${holder}: held, with the ${records.length} record(s) to move`,
    path: 'dns.zone',
    async check(context) {
      try {
        // The cutover lowers the TTL of each record first: one that is not there would stop it mid-run.
        const present = await dns.listRecords(zone, { signal: context.signal });
        return records.flatMap((record, index) => {
          const type = record.type ?? 'A';
          if (present.some((entry) => entry.name === record.name && entry.type === type)) return [];
          const other = present.find((entry) => entry.name === record.name);
          return [{ path: `dns.records[${index}]`, message: other ? `${record.name} in ${zone} is a ${other.type} record, not ${type}` : `${zone} has no ${type} record ${record.name}`, fix: other ? `set type: ${other.type}, or change the record first` : 'check the name and type, or create the record before the migration' }];
        });
      } catch (error) {
        if (!NotFoundError.isInstance(error)) throw error;
        return [{ path: 'dns.zone', message: `${holder} holds no zone ${zone}`, fix: 'create the zone there, or set dns.provider to the provider that holds it' }];
      }
    },
  };
}

/** A data store's endpoints, by its mover's own check (reachable, credentials, privileges, an empty target, not the source itself). */
export function dataStoreCheck(options: {
  path: string;
  name: string;
  mover: DataMoverV1;
  source: DataEndpoint;
  /** Undefined: the target is on a server provisioning makes; only the source is checked now. */
  target: DataEndpoint | undefined;
  replaceExisting: boolean;
  mode: 'copy' | 'replicate';
  options: Record<string, unknown>;
  /** How the source and a fixed target are reached when not directly (their jump hosts' tunnels). */
  routes?: { source?: DataRoute; target?: DataRoute };
}): PreflightCheck {
  const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}`;
  const { mover } = options;
  return {
    what: `${options.path === `data.${options.name}` ? `data store ${options.name}` : `${options.path} (${options.name})`} with ${mover.id}: source ${where(options.source)}${options.target ? ` and target ${where(options.target)}` : ''}: reachable, credentials, privileges${options.target ? ', target empty' : ''}`,
    path: options.path,
    async check(context) {
      if (!mover.check) return [];
      // Resumed: the target holds what this migration copied so far; only the source is checked again.
      const wanted = context.resuming ? undefined : options.target;
      const source = await endpointThrough(options.routes?.source, options.source, context.signal);
      const target = wanted ? await endpointThrough(options.routes?.target, wanted, context.signal) : undefined;
      const found = await mover.check(source, target, { replaceExisting: options.replaceExisting, mode: options.mode, options: options.options, signal: context.signal });
      return found.map((issue) => ({ ...issue, path: `${options.path}.${issue.path}` }));
    },
  };
}

/** The SSH private key is a file, readable, a key ssh2 can use (not passphrase-protected: there is no passphrase to give). */
export function sshKeyCheck(path: string, keyPath: string): PreflightCheck {
  return {
    what: `${path}: a readable private key`,
    path,
    async check() {
      let text: string;
      try {
        text = await readFile(keyPath, 'utf8');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        return [{ path, message: `${keyPath} cannot be read (${code})`, fix: 'name the private key file the new servers accept (its public half is in the spec\'s key pair)' }];
      }
      // ssh2 is CommonJS: its `utils` is reached through the default export under Node's ESM.
      const parsed = ssh2.utils.parseKey(text);
      const failure = parsed instanceof Error ? parsed : Array.isArray(parsed) ? undefined : parsed.isPrivateKey() ? undefined : new Error('it is a public key');
      if (!failure) return [];
      return [{ path, message: `${keyPath} is not a usable private key: ${failure.message}`, fix: 'name the private key (not the .pub), without a passphrase, or load it into ssh-agent' }];
    },
  };
}

/**
 * The live checks of a migration definition (for a migration built in code; migrationFromFile adds
 * the file's own): the target provider (and the source's, when its API is used), the DNS zone, and
 * every data store by its mover. Pass the result to runMigration as `preflight`.
 */
export function migrationPreflight(definition: MigrationDefinition, options: { dnsOwner?: { id: string; which: 'source' | 'target' } } = {}): PreflightCheck[] {
  // The source's API is needed only to switch DNS it holds, or to tear it down.
  const needsSource = options.dnsOwner?.which === 'source' || definition.decommissionSource === true;
  return [
    providerCheck(definition.target.provider, 'target.provider'),
    ...(needsSource ? [providerCheck(definition.source.provider, 'source.provider')] : []),
    ...(definition.dns ? [dnsZoneCheck(definition.dns.dns, options.dnsOwner, definition.dns.zone, definition.dns.records)] : []),
    ...(definition.data ?? []).map((store) =>
      dataStoreCheck({
        path: store.path ?? `data.${store.name}`,
        name: store.name,
        mover: store.mover,
        source: store.source,
        target: typeof store.target === 'function' ? undefined : store.target,
        routes: { ...(store.routes?.source ? { source: store.routes.source } : {}), ...(store.routes?.target && typeof store.routes.target !== 'function' ? { target: store.routes.target } : {}) },
        replaceExisting: store.copy?.replaceExisting ?? false,
        mode: store.mode ?? 'copy',
        options: { ...store.copy },
      }),
    ),
  ];
}

/** The project's known_hosts file, if there is one, is a file OpenSSH could read (a damaged line is named before anything is made). */
export function knownHostsCheck(path: string, file: string): PreflightCheck {
  return {
    what: `${path}: ${file}, pinned host keys readable`,
    path,
    async check() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        return [{ path, message: `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`, fix: 'check its permissions' }];
      }
      try {
        parseKnownHosts(text, file);
        return [];
      } catch (error) {
        if (!ValidationError.isInstance(error)) throw error;
        return error.issues.map((issue) => ({ path, message: `line ${issue.path.slice(file.length + 1)} of ${file} ${issue.message}`, ...(issue.fix ? { fix: issue.fix } : {}) }));
      }
    },
  };
}
