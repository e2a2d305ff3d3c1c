/**
 * The resource model between the spec and the providers. A spec compiles to a flat list of
 * desired resources, each with a logical address (`instance.web-1`) and properties written in
 * logical terms: references name other resources of the environment, never cloud ids. Providers
 * report what exists in the same terms, so the planner compares like with like.
 */
import { createHash } from 'node:crypto';
import type { PortRange, Protocol } from './spec/schema.js';

/** Creation order; discovery runs in this order and destroy in the reverse. */
export const RESOURCE_KINDS = ['network', 'subnet', 'firewall', 'keyPair', 'instance', 'dnsRecord'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export type ResourceAddress = `${ResourceKind}.${string}`;

export function addressOf(kind: ResourceKind, name: string): ResourceAddress {
  return `${kind}.${name}`;
}

export function parseAddress(address: string): { kind: ResourceKind; name: string } {
  const dot = address.indexOf('.');
  const kind = address.slice(0, dot) as ResourceKind;
  if (dot < 0 || !RESOURCE_KINDS.includes(kind)) throw new Error(`"${address}" is not a resource address (kind.name)`);
  return { kind, name: address.slice(dot + 1) };
}

/** A rule peer in logical terms: an address block, or a firewall or subnet of the environment by name. */
export type RulePeer = { cidr: string } | { firewall: string } | { subnet: string };

export interface FirewallRule {
  protocol: Protocol;
  /** Absent for icmp and all, and for every port of tcp/udp. */
  ports?: PortRange;
  peer: RulePeer;
  description?: string;
}

export interface NetworkProperties {
  cidr: string;
}

export interface SubnetProperties {
  network: string;
  cidr: string;
  access: 'public' | 'private';
  zone?: string;
}

export interface FirewallProperties {
  network: string;
  description: string;
  ingress: FirewallRule[];
  /** Absent: the provider's default egress (all outbound). */
  egress?: FirewallRule[];
}

export interface KeyPairProperties {
  publicKey: string;
}

export interface InstanceProperties {
  subnet: string;
  firewalls: string[];
  keyPair?: string;
  /** The provider's own size (instance type, size slug), resolved from the portable size. */
  size: string;
  /** The provider's own image (AMI id, image slug), resolved from the portable image. */
  image: string;
  /** User tags (ownership tags are separate and never shown here). */
  tags: Record<string, string>;
  userData?: string;
  role?: string;
}

export interface DnsRecordProperties {
  zone: string;
  name: string;
  type: 'A' | 'AAAA' | 'CNAME' | 'TXT';
  ttl: number;
  values: string[];
}

export interface ResourcePropertiesByKind {
  network: NetworkProperties;
  subnet: SubnetProperties;
  firewall: FirewallProperties;
  keyPair: KeyPairProperties;
  instance: InstanceProperties;
  dnsRecord: DnsRecordProperties;
}

/** Properties whose values never appear in plans, logs or state files. */
export const SENSITIVE_PROPERTIES: { readonly [K in ResourceKind]: readonly (keyof ResourcePropertiesByKind[K])[] } = {
  network: [],
  subnet: [],
  firewall: [],
  keyPair: [],
  instance: ['userData'],
  dnsRecord: [],
};

/**
 * Sensitive values that a cloud cannot give back (EC2 user data) or that should not be read back
 * are reported by providers as a digest; the planner compares digests. Store the digest in a tag at
 * create time and report it from discovery.
 */
export function digestOf(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex')}`;
}

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && /^sha256:[0-9a-f]{64}$/.test(value);
}

export interface DesiredResource<K extends ResourceKind = ResourceKind> {
  address: ResourceAddress;
  kind: K;
  name: string;
  properties: ResourcePropertiesByKind[K];
  /** Addresses this resource needs to exist first, derived from its properties. */
  dependsOn: ResourceAddress[];
  /**
   * Addresses an earlier spec may have given this same resource, in order of preference: the first
   * copy of an instance group is `web` at count 1 and `web-1` above. A resource found only at one
   * of them (and not wanted there) is kept and moved to this address, not replaced.
   */
  movedFrom?: ResourceAddress[];
  /**
   * Properties the provider chose where the spec says nothing (adapt(): the zone of a subnet,
   * where its instance types are offered). Used when the resource is created, never compared with
   * what exists: an existing resource keeps its own (a subnet stays in its zone).
   */
  chosen?: Partial<ResourcePropertiesByKind[K]>;
}

/** Values a resource exposes once it exists: addresses, DNS names, state. */
export type ResourceOutputs = Record<string, string | number | boolean | undefined>;

export interface ObservedResource<K extends ResourceKind = ResourceKind> {
  address: ResourceAddress;
  kind: K;
  name: string;
  /** The cloud's id for it: `vpc-0abc`, a droplet id, ... */
  id: string;
  /** What exists, in the same logical terms as the desired properties. */
  properties: ResourcePropertiesByKind[K];
  outputs: ResourceOutputs;
  /**
   * Set by discovery when an interrupted run left the resource half made (a subnet without its
   * route table): why, in a few words. The planner then updates it, so the provider finishes it,
   * even when its properties already match.
   */
  unfinished?: string;
}

/** A union that narrows on `kind`, for switch statements over mixed lists. */
export type AnyDesiredResource = { [K in ResourceKind]: DesiredResource<K> }[ResourceKind];
export type AnyObservedResource = { [K in ResourceKind]: ObservedResource<K> }[ResourceKind];

/**
 * Which addresses a resource refers to, and through which property. The planner uses the property
 * to decide whether a replaced dependency forces a replacement or only an update.
 */
export function referencesOf<K extends ResourceKind>(
  kind: K,
  properties: ResourcePropertiesByKind[K],
): Array<{ property: string; address: ResourceAddress }> {
  const references: Array<{ property: string; address: ResourceAddress }> = [];
  const peerReferences = (rules: FirewallRule[] | undefined, property: string) => {
    for (const rule of rules ?? []) {
      if ('firewall' in rule.peer) references.push({ property, address: addressOf('firewall', rule.peer.firewall) });
      if ('subnet' in rule.peer) references.push({ property, address: addressOf('subnet', rule.peer.subnet) });
    }
  };
  switch (kind) {
    case 'subnet':
      references.push({ property: 'network', address: addressOf('network', (properties as SubnetProperties).network) });
      break;
    case 'firewall': {
      const firewall = properties as FirewallProperties;
      references.push({ property: 'network', address: addressOf('network', firewall.network) });
      peerReferences(firewall.ingress, 'ingress');
      peerReferences(firewall.egress, 'egress');
      break;
    }
    case 'instance': {
      const instance = properties as InstanceProperties;
      references.push({ property: 'subnet', address: addressOf('subnet', instance.subnet) });
      for (const firewall of instance.firewalls) references.push({ property: 'firewalls', address: addressOf('firewall', firewall) });
      if (instance.keyPair !== undefined) references.push({ property: 'keyPair', address: addressOf('keyPair', instance.keyPair) });
      break;
    }
    default:
      break;
  }
  return references;
}

/**
 * References that need only the other resource to exist (its cloud id), not its create to be
 * finished: a launch needs the subnet's and groups' ids, a rule needs the peer group's id. When a
 * provider announces a resource as soon as its id exists (ApplyContext.announce), dependents
 * through these references start then, while the rest of its create (routes, rules) goes on.
 */
export const EXISTENCE_ONLY_REFERENCES: { readonly [K in ResourceKind]?: readonly string[] } = {
  instance: ['subnet', 'firewalls', 'keyPair'],
  firewall: ['network', 'ingress', 'egress'],
};

/** The distinct addresses a resource depends on (a firewall that admits itself does not depend on itself). */
export function dependenciesOf<K extends ResourceKind>(
  kind: K,
  name: string,
  properties: ResourcePropertiesByKind[K],
): ResourceAddress[] {
  const self = addressOf(kind, name);
  return [...new Set(referencesOf(kind, properties).map((reference) => reference.address))].filter((address) => address !== self);
}

/**
 * Ownership tags mark every cloud resource Armada makes, so a re-run (even after a crash) finds
 * what an earlier run made. Keys use `:` which both EC2 tags and (encoded) DigitalOcean tags accept.
 */
export const OWNERSHIP_TAG_ENVIRONMENT = 'armada:environment';
export const OWNERSHIP_TAG_RESOURCE = 'armada:resource';

export function ownershipTags(environment: string, address: ResourceAddress): Record<string, string> {
  return { [OWNERSHIP_TAG_ENVIRONMENT]: environment, [OWNERSHIP_TAG_RESOURCE]: address };
}
