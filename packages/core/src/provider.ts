/**
 * The provider plugin interface, version 1. A provider is a small object: its id, the capabilities
 * it declares, a way to map portable sizes and images onto its own, and one service per resource
 * kind. Everything else (planning, ordering, retries, waiting for dependents) is core's job.
 *
 * Versioned so that a plugin written against v1 keeps working when v2 arrives: core will accept
 * both and adapt.
 */
import type { DnsRecordProperties, DesiredResource, ObservedResource, ResourceAddress, ResourceKind } from './resources.js';
import type { Size } from './spec/schema.js';

/**
 * What a cloud can honour natively. The planner maps the portable spec onto these and warns, or
 * fails with an UnsupportedError, where a feature cannot be honoured.
 */
export interface ProviderCapabilities {
  /**
   * `native`: the cloud has subnets (EC2). `emulated`: it does not, and the provider honours a
   * subnet's access (public/private) by other means, which it explains in a plan note.
   */
  subnets: 'native' | 'emulated';
  /** How a firewall finds its instances: by group membership (EC2) or by tag (DigitalOcean). */
  firewallTargets: 'group' | 'tag';
  /** Which rule peers the cloud accepts. */
  firewallPeers: { cidr: boolean; firewall: boolean; subnet: boolean };
  /** Whether egress rules can be set (otherwise all outbound traffic is allowed). */
  egressRules: boolean;
  /** `key-value` tags (EC2) or plain string tags (DigitalOcean, encoded). */
  tags: 'key-value' | 'plain';
  /** Whether the provider has a DNS service (`services.dnsRecord` and `dns`). */
  dns: boolean;
}

/** Capability names, as the conformance suite's skip list takes them. */
export type CapabilityName = 'dns' | 'egressRules' | 'firewallPeerByFirewall' | 'firewallPeerBySubnet' | 'nativeSubnets';

export function missingCapabilities(capabilities: ProviderCapabilities): CapabilityName[] {
  const missing: CapabilityName[] = [];
  if (!capabilities.dns) missing.push('dns');
  if (!capabilities.egressRules) missing.push('egressRules');
  if (!capabilities.firewallPeers.firewall) missing.push('firewallPeerByFirewall');
  if (!capabilities.firewallPeers.subnet) missing.push('firewallPeerBySubnet');
  if (capabilities.subnets !== 'native') missing.push('nativeSubnets');
  return missing;
}

/** The portable instance settings a provider maps onto its own. */
export interface InstanceTypeRequest {
  /** Logical instance name, for error messages. */
  instance: string;
  size: Size;
  image: string;
  /** The block under the provider's own key in the spec (`aws: { instanceType }`). */
  options: Record<string, unknown>;
}

export interface ResolvedInstanceType {
  size: string;
  image: string;
}

/** A note in a plan: how the provider honoured a portable feature, or why it could not fully. */
export interface PlanNote {
  severity: 'info' | 'warning';
  /** Spec path or resource address the note is about. */
  path: string;
  message: string;
  /** The capability involved, when there is one. */
  capability?: string;
}

export interface AdaptResult {
  resources: DesiredResource[];
  notes: PlanNote[];
}

export interface DiscoverContext {
  environment: string;
  signal?: AbortSignal;
  /**
   * A resource of this environment already discovered, found by its cloud id. Kinds are
   * discovered in RESOURCE_KINDS order, so an instance's subnet is known when instances are read.
   */
  findById(id: string): ObservedResource | undefined;
}

export interface ApplyContext {
  environment: string;
  signal: AbortSignal;
  /** The cloud id of a resource this one depends on (created earlier in the run or discovered). */
  idOf(address: ResourceAddress): string;
  /** The observed state of a resource this one depends on. */
  resourceAt(address: ResourceAddress): ObservedResource;
  /** Tags to put on everything created: environment and address, so a re-run finds it. */
  ownershipTags(address: ResourceAddress): Record<string, string>;
  /**
   * Optional, from a create: the resource exists and has its cloud id, though the create goes on
   * (routes, rules, attributes). Dependents that need only its id (EXISTENCE_ONLY_REFERENCES) may
   * start now. A provider that never calls it loses nothing but that head start.
   */
  announce(resource: ObservedResource): void;
  /**
   * A token for the vendor's idempotent create (EC2 ClientToken): the same for every retry of one
   * create in one run, so a timeout followed by a retry never makes a second resource.
   */
  idempotencyToken(address: ResourceAddress): string;
}

/** One service per resource kind. A provider that lacks a kind omits its service. */
export interface ResourceService<K extends ResourceKind> {
  readonly kind: K;
  /** Properties that cannot change in place: a change to one replaces the resource. */
  readonly replaceOn: readonly string[];
  /** Every resource of this kind carrying the environment's ownership tags (all pages). */
  discover(context: DiscoverContext): Promise<Array<ObservedResource<K>>>;
  /** Creates the resource and waits until it is usable. Tolerates "already exists" from a retried create. */
  create(resource: DesiredResource<K>, context: ApplyContext): Promise<ObservedResource<K>>;
  /** Changes what can change in place. Absent: every change replaces. */
  update?(resource: DesiredResource<K>, current: ObservedResource<K>, context: ApplyContext): Promise<ObservedResource<K>>;
  /** Deletes and waits until gone. Tolerates "not found". */
  delete(current: ObservedResource<K>, context: ApplyContext): Promise<void>;
}

export type NetworkService = ResourceService<'network'>;
export type SubnetService = ResourceService<'subnet'>;
export type FirewallService = ResourceService<'firewall'>;
export type KeyPairService = ResourceService<'keyPair'>;
export type InstanceService = ResourceService<'instance'>;
export type DnsRecordService = ResourceService<'dnsRecord'>;

export interface ProviderServices {
  network: NetworkService;
  subnet: SubnetService;
  firewall: FirewallService;
  keyPair: KeyPairService;
  instance: InstanceService;
  /** Optional: present when `capabilities.dns` is true. */
  dnsRecord?: DnsRecordService;
}

/**
 * Direct DNS access for cutover (issue: data movers and DNS), outside any environment: records of
 * a zone the team already owns.
 */
export interface DnsService {
  listRecords(zone: string, options?: { signal?: AbortSignal }): Promise<DnsRecordProperties[]>;
  /** Creates or replaces the record set `name`/`type` and waits until the change is live. */
  upsertRecord(record: DnsRecordProperties, options?: { signal?: AbortSignal }): Promise<void>;
  deleteRecord(record: Pick<DnsRecordProperties, 'zone' | 'name' | 'type'>, options?: { signal?: AbortSignal }): Promise<void>;
}

export interface ProviderV1 {
  readonly specificationVersion: 'v1';
  /** Registry id: `aws`, `digitalocean`, `in-memory`. */
  readonly id: string;
  readonly region: string;
  readonly capabilities: ProviderCapabilities;
  readonly services: ProviderServices;
  readonly dns?: DnsService;
  /**
   * Checks credentials, region and anything else that would fail every call, before anything is
   * created. Throws a ValidationError naming the option or variable to fix.
   */
  verify?(options?: { signal?: AbortSignal }): Promise<void>;
  /** Maps a portable size and image onto this cloud's; throws a ValidationError naming what to fix. */
  resolveInstanceType(request: InstanceTypeRequest): ResolvedInstanceType | Promise<ResolvedInstanceType>;
  /**
   * Optional: reshapes the desired resources for this cloud (drops what it lacks, strips fields it
   * cannot store) and says how each portable feature was honoured. Runs before discovery.
   */
  adapt?(resources: DesiredResource[]): AdaptResult;
  /**
   * Optional: the SSH host public keys (OpenSSH text, `ssh-ed25519 AAAA...`) an instance printed on
   * its console at first boot (EC2 GetConsoleOutput), to pin before the first connection instead of
   * trusting it. Empty while the console shows none yet.
   */
  consoleHostKeys?(instanceId: string, options?: { signal?: AbortSignal }): Promise<string[]>;
}

/**
 * The host keys in a console output, as cloud-init prints them: the lines between
 * `-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----` (an `ec2: ` prefix
 * allowed), each `type base64 [comment]`, returned as `type base64`.
 */
export function hostKeysInConsole(output: string): string[] {
  const lines = output.split(/\r?\n/).map((line) => line.replace(/^ec2:\s?/, '').trim());
  const start = lines.indexOf('-----BEGIN SSH HOST KEY KEYS-----');
  const end = lines.indexOf('-----END SSH HOST KEY KEYS-----', start + 1);
  if (start < 0 || end < 0) return [];
  return lines
    .slice(start + 1, end)
    .map((line) => line.split(/\s+/))
    .filter(([type, key]) => type && key && /^(ssh-|ecdsa-)/.test(type) && /^[A-Za-z0-9+/]+={0,2}$/.test(key))
    .map(([type, key]) => `${type} ${key}`);
}

export type Provider = ProviderV1;
