/**
 * A wire-level emulator of the DigitalOcean API v2 on 127.0.0.1, for the real `dots-wrapper`
 * client: `createApiClient({ token, endpoint: `${emulator.endpoint}/v2` })`. It keeps DigitalOcean's
 * JSON shapes, pagination (`links.pages`, `meta.total`), rate-limit headers, error bodies, droplets
 * going from new to active, droplet actions (`rename`) going from in-progress to completed, the
 * fields DigitalOcean's OpenAPI models require in every reply, and the rules the provider meets:
 * VPC ranges (RFC 1918, /16 to /28, outside DigitalOcean's reserved ranges, not overlapping; see
 * vpc-ranges.ts), a VPC with members cannot be deleted (403), tags named by a firewall must
 * exist, tag names follow DigitalOcean's pattern, and new resources may be invisible for a while
 * (eventual consistency).
 *
 * With `hosts`, every droplet is a real host of a real-host lab (`@armada/testkit/real-hosts`): the
 * emulator hands the lab its tables as a `LabTopology` after every call that may change them (see
 * `labTopology` below), and a droplet is `active` once its host has booted.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCidr } from '@armada/core';
import { startLoopbackServer } from '../loopback-server.js';
import { FaultInjector, LostResponseError, type PortableOperation } from '../faults.js';
import type { HostLab } from '../real-hosts/lab.js';
import type { LabHost, LabNetwork, LabTopology, TrafficRule } from '../real-hosts/topology.js';
import { freeRange, ipv4, rangeRefusal } from './vpc-ranges.js';
import { isDnsRecordType, type DnsRecordSet, type DnsZone, type DnsZoneSource } from '../dns-server.js';

export interface DigitalOceanEmulatorOptions {
  /** Accepted API tokens; default: any non-empty token. */
  tokens?: string[];
  /** new -> active (default 200 ms). */
  bootMs?: number;
  /** A droplet action (a rename) in-progress -> completed (default 50 ms). */
  actionMs?: number;
  /** `retry-after` on a throttled (429) reply, in seconds (default 1). */
  retryAfterSeconds?: number;
  seed?: number;
  /**
   * Run every droplet as a real host of this lab (`@armada/testkit/real-hosts`): its own network
   * namespace at the private and public addresses the API reports (its VPC one network with the
   * VPC's range, reaching the internet), a Debian 12 root, sshd with the droplet's SSH keys for
   * `root`, Cloud Firewalls enforced by nftables. Only `debian-12-x64` boots. The caller owns and
   * closes it.
   */
  hosts?: HostLab;
}

export interface DigitalOceanEmulator extends DnsZoneSource {
  /** Base URL without `/v2`: pass `${endpoint}/v2` to dots-wrapper. */
  endpoint: string;
  faults: FaultInjector;
  createDomain(name: string): void;
  /** The domains and their records, read-only (a `DnsZoneSource` for `startDnsServer`). */
  zones(): DnsZone[];
  inventory(): { vpcs: number; droplets: number; firewalls: number; sshKeys: number; tags: number; domainRecords: number };
  /** Droplets carrying all these tags. */
  dropletsTagged(...tags: string[]): Array<{ id: number; name: string; status: string; tags: string[] }>;
  calls(route?: string): number;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
    /** A body other than the usual `{ id, message, request_id }`, for the endpoints that answer another. */
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const REGIONS = [
  { slug: 'nyc1', name: 'New York 1' },
  { slug: 'nyc3', name: 'New York 3' },
  { slug: 'sfo3', name: 'San Francisco 3' },
  { slug: 'ams3', name: 'Amsterdam 3' },
  { slug: 'fra1', name: 'Frankfurt 1' },
  { slug: 'lon1', name: 'London 1' },
];
/** Memory in MB, as the API gives it. `s-8vcpu-16gb` is not offered in lon1, so tests can check that. */
const SIZES = [
  { slug: 's-1vcpu-512mb-10gb', vcpus: 1, memory: 512 },
  { slug: 's-1vcpu-1gb', vcpus: 1, memory: 1024 },
  { slug: 's-1vcpu-2gb', vcpus: 1, memory: 2048 },
  { slug: 's-2vcpu-2gb', vcpus: 2, memory: 2048 },
  { slug: 's-2vcpu-4gb', vcpus: 2, memory: 4096 },
  { slug: 's-4vcpu-8gb', vcpus: 4, memory: 8192 },
  { slug: 's-8vcpu-16gb', vcpus: 8, memory: 16384 },
].map((size) => ({
  ...size,
  disk: size.memory / 32,
  transfer: 1,
  price_monthly: size.memory / 170,
  price_hourly: size.memory / 170 / 730,
  available: true,
  description: 'Basic',
  regions: REGIONS.map((region) => region.slug).filter((region) => !(size.slug === 's-8vcpu-16gb' && region === 'lon1')),
}));
const IMAGES = [
  { id: 1001, slug: 'debian-12-x64', distribution: 'Debian', name: '12 x64' },
  { id: 1002, slug: 'debian-11-x64', distribution: 'Debian', name: '11 x64' },
  { id: 1003, slug: 'ubuntu-22-04-x64', distribution: 'Ubuntu', name: '22.04 (LTS) x64' },
  { id: 1004, slug: 'ubuntu-24-04-x64', distribution: 'Ubuntu', name: '24.04 (LTS) x64' },
].map((image) => ({
  ...image,
  type: 'base',
  public: true,
  regions: REGIONS.map((region) => region.slug),
  min_disk_size: 10,
  size_gigabytes: 2,
  status: 'available',
  created_at: '2024-07-01T00:00:00Z',
  tags: [],
}));

/** The one image the real-host lab boots (its Debian 12 root); DigitalOcean's Debian images log in as root. */
const REAL_HOST_IMAGE = 'debian-12-x64';
/** Where droplets' public addresses come from in real-host mode (the emulator's own otherwise). */
const REAL_HOST_PUBLIC_POOL = '198.51.100.0/24';

const TAG_PATTERN = /^[a-zA-Z0-9_\-:]{1,255}$/;
const FIREWALL_NAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]+$/;
/** Droplet names are hostnames (OpenAPI droplet_create `name`): letters, numbers, "." and "-", not starting or ending with either. */
const HOSTNAME = /^(?=.{1,255}$)[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$/;
/** What the tag model's `resources` counts (OpenAPI tags/models/tags.yml; tags_new.yml shows each, at 0). */
const TAGGABLE = ['droplets', 'images', 'volumes', 'volume_snapshots', 'databases'];

interface Visible {
  createdAt: number;
}
interface Vpc extends Visible {
  id: string;
  name: string;
  region: string;
  ip_range: string;
  description: string;
  default: boolean;
}
interface Droplet extends Visible {
  id: number;
  name: string;
  region: string;
  size: string;
  image: string;
  vpc_uuid: string;
  tags: string[];
  ssh_keys: number[];
  /** The public keys of `ssh_keys` when the droplet was made: what its root's authorized_keys holds (deleting the account key later changes neither). */
  authorizedKeys: string[];
  user_data: string | undefined;
  privateIp: string;
  publicIp: string;
}
interface SshKey extends Visible {
  id: number;
  name: string;
  public_key: string;
  fingerprint: string;
}
interface FirewallRule {
  protocol: string;
  ports: string;
  sources?: Record<string, unknown>;
  destinations?: Record<string, unknown>;
}
interface Firewall extends Visible {
  id: string;
  name: string;
  inbound_rules: FirewallRule[];
  outbound_rules: FirewallRule[];
  droplet_ids: number[];
  tags: string[];
}
interface DomainRecord {
  id: number;
  type: string;
  name: string;
  data: string;
  ttl: number;
  priority: number | null;
  port: number | null;
  weight: number | null;
  flags: number | null;
  tag: string | null;
}
/**
 * A droplet action (OpenAPI actions/models/action.yml): in-progress, then completed once its time
 * is up, when its effect lands (a rename's new name).
 */
interface Action {
  id: number;
  type: string;
  dropletId: number;
  region: string;
  startedAt: number;
  takesMs: number;
  effect?: () => void;
  /** Also waited for once the time is up (a create on a real host: its boot). */
  ready?: () => boolean;
  completedAt?: number;
}

/**
 * A rule's `ports` (OpenAPI firewall_rule_base): a port (`"22"`), a range (`"8000-9000"`), or every
 * port: `"0"` as the API writes it, `"all"` and an empty or absent value as it also takes.
 * `null`: every port; undefined: not a valid value.
 */
function portRangeOf(ports: unknown): { from: number; to: number } | null | undefined {
  if (ports === undefined || ports === null || ports === '' || ports === '0' || ports === 0 || ports === 'all') return null;
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(ports));
  if (!match) return undefined;
  const from = Number(match[1]);
  const to = Number(match[2] ?? match[1]);
  return from >= 1 && to <= 65535 && from <= to ? { from, to } : undefined;
}

/** The netmask of a VPC's range (`10.0.0.0/16` -> `255.255.0.0`): a droplet's private interface has its VPC's. */
function netmaskOf(range: string | undefined): string {
  const prefix = Number(range?.split('/')[1] ?? 24);
  return ipv4(((1n << 32n) - 1n) ^ ((1n << BigInt(32 - prefix)) - 1n));
}

/** Two rules alike in protocol, ports (every-port spellings alike) and peers (order of a peer list aside). */
function sameRule(a: FirewallRule, b: FirewallRule): boolean {
  const peers = (rule: FirewallRule) => {
    const peer = rule.sources ?? rule.destinations ?? {};
    return JSON.stringify(
      Object.entries(peer)
        .filter(([, value]) => !(Array.isArray(value) && value.length === 0))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([field, value]) => [field, Array.isArray(value) ? value.map(String).sort() : value]),
    );
  };
  const ports = (rule: FirewallRule) => (rule.protocol === 'icmp' ? null : JSON.stringify(portRangeOf(rule.ports)));
  return a.protocol === b.protocol && ports(a) === ports(b) && peers(a) === peers(b);
}

/**
 * A domain as its name servers serve it: `@` is the apex, other names are relative unless they end
 * in a dot; a CNAME, NS or MX target is absolute (the trailing dot optional, as the Armada provider
 * writes it), `@` the apex; one-value records of a name and type make one set (the lowest TTL, as
 * a set has one); TXT data quoted; an MX's `priority` before its host; the SOA DigitalOcean's name
 * servers answer (serial 1: the emulator keeps no zone version).
 */
function dnsZoneOf(domain: string, records: DomainRecord[]): DnsZone {
  const owner = (name: string) => (name === '@' ? domain : name.endsWith('.') ? name : `${name}.${domain}`);
  const target = (data: string) => (data === '@' ? domain : data);
  const sets = new Map<string, DnsRecordSet>([['SOA', { name: domain, type: 'SOA', ttl: 1800, values: [`ns1.digitalocean.com. hostmaster.${domain}. 1 10800 3600 604800 1800`] }]]);
  for (const record of records) {
    if (!isDnsRecordType(record.type) || record.type === 'SOA') continue;
    const value =
      record.type === 'TXT'
        ? `"${record.data.replace(/["\\]/g, '\\$&')}"`
        : record.type === 'MX'
          ? `${record.priority ?? 0} ${target(record.data)}`
          : record.type === 'CNAME' || record.type === 'NS'
            ? target(record.data)
            : record.data;
    const key = `${owner(record.name).toLowerCase()}|${record.type}`;
    const set = sets.get(key) ?? { name: owner(record.name), type: record.type, ttl: record.ttl, values: [] };
    set.ttl = Math.min(set.ttl, record.ttl);
    set.values.push(value);
    sets.set(key, set);
  }
  return { name: domain, records: [...sets.values()] };
}

/** `GET droplets :id actions`, `GET domains :id records :id`: the route of a path, ids generalized. */
function routeKey(method: string, parts: string[]): string {
  return [method, ...parts.map((part, index) => (index % 2 === 1 ? ':id' : part))].join(' ');
}

function operationOf(method: string, resource: string, sub: string | undefined): PortableOperation {
  if (method === 'GET') return 'describe';
  // An action changes the droplet it acts on.
  if (resource === 'droplets' && sub === 'actions') return 'updateInstance';
  // Droplets, tags or rules added to or removed from a firewall change the firewall.
  if (resource === 'firewalls' && sub !== undefined) return 'updateFirewall';
  const table: Record<string, [PortableOperation, PortableOperation, PortableOperation]> = {
    vpcs: ['createNetwork', 'createNetwork', 'deleteNetwork'],
    droplets: ['createInstance', 'updateInstance', 'deleteInstance'],
    firewalls: ['createFirewall', 'updateFirewall', 'deleteFirewall'],
    account: ['createKeyPair', 'createKeyPair', 'deleteKeyPair'],
    tags: ['updateTags', 'updateTags', 'updateTags'],
    domains: ['createDnsRecord', 'updateDnsRecord', 'deleteDnsRecord'],
  };
  const [create, update, remove] = table[resource] ?? ['describe', 'describe', 'describe'];
  return method === 'POST' ? create : method === 'DELETE' ? remove : update;
}

export async function startDigitalOceanEmulator(options: DigitalOceanEmulatorOptions = {}): Promise<DigitalOceanEmulator> {
  const retryAfter = options.retryAfterSeconds ?? 1;
  const faults = new FaultInjector({
    seed: options.seed ?? 42,
    throttleError: () => new ApiError(429, 'too_many_requests', 'API Rate limit exceeded.'),
  });
  const bootMs = options.bootMs ?? 200;
  const lab = options.hosts;
  /** This emulator's part of a lab that other emulators may share. */
  const labOwner = `digitalocean-${randomUUID()}`;
  const actionMs = options.actionMs ?? 50;
  const vpcs = new Map<string, Vpc>();
  const droplets = new Map<number, Droplet>();
  const keys = new Map<number, SshKey>();
  const firewalls = new Map<string, Firewall>();
  const tags = new Set<string>();
  const domains = new Map<string, DomainRecord[]>();
  const actions = new Map<number, Action>();
  const calls = new Map<string, number>();
  let sequence = 100;
  let remaining = 5000;

  const visible = <T extends Visible>(item: T | undefined): T | undefined => (item && faults.isVisible(item.createdAt) ? item : undefined);
  const notFound = () => new ApiError(404, 'not_found', 'The resource you requested could not be found.');
  const found = <T extends Visible>(item: T | undefined): T => {
    const shown = visible(item);
    if (!shown) throw notFound();
    return shown;
  };
  const unprocessable = (message: string) => new ApiError(422, 'unprocessable_entity', message);
  const isoOf = (at: number) => new Date(performance.timeOrigin + at).toISOString();
  function requireHostname(name: string): string {
    if (!HOSTNAME.test(name)) throw unprocessable(`name "${name}" is invalid: a Droplet's name must be a valid hostname (letters, numbers, "." and "-")`);
    return name;
  }

  function page<T>(url: URL, key: string, items: T[]): Record<string, unknown> {
    const perPage = Math.min(Math.max(Number(url.searchParams.get('per_page') ?? 20), 1), 200);
    const current = Math.max(Number(url.searchParams.get('page') ?? 1), 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (pageNumber: number) => {
      const target = new URL(url);
      target.searchParams.set('page', String(pageNumber));
      target.searchParams.set('per_page', String(perPage));
      return target.toString();
    };
    const pages: Record<string, string> = {};
    if (current > 1) Object.assign(pages, { first: link(1), prev: link(current - 1) });
    if (current < last) Object.assign(pages, { next: link(current + 1), last: link(last) });
    return { [key]: items.slice((current - 1) * perPage, current * perPage), links: Object.keys(pages).length ? { pages } : {}, meta: { total: items.length } };
  }

  /** The region model (OpenAPI regions/models/region.yml), also embedded in droplets and actions. */
  const regionJson = (slug: string) => ({
    slug,
    name: REGIONS.find((region) => region.slug === slug)?.name,
    sizes: SIZES.filter((size) => size.regions.includes(slug)).map((size) => size.slug),
    features: ['private_networking', 'backups', 'ipv6', 'metadata'],
    available: true,
  });
  const vpcJson = (vpc: Vpc) => ({
    id: vpc.id,
    urn: `do:vpc:${vpc.id}`,
    name: vpc.name,
    description: vpc.description,
    region: vpc.region,
    ip_range: vpc.ip_range,
    default: vpc.default,
    created_at: isoOf(vpc.createdAt),
  });
  /** `resources` counts what carries the tag, by kind; only droplets are emulated. */
  function tagJson(name: string, origin: string) {
    const tagged = [...droplets.values()].filter((droplet) => droplet.tags.includes(name));
    const last = tagged.at(-1);
    const counted = { count: tagged.length, ...(last ? { last_tagged_uri: `${origin}/v2/droplets/${last.id}` } : {}) };
    return { name, resources: { ...counted, ...Object.fromEntries(TAGGABLE.map((kind) => [kind, kind === 'droplets' ? counted : { count: 0 }])) } };
  }

  /** Completes the actions whose time is up, in the order they started, applying their effects. */
  function settleActions() {
    for (const action of actions.values()) {
      if (action.completedAt !== undefined || performance.now() - action.startedAt < action.takesMs) continue;
      if (action.ready && !action.ready()) continue;
      action.completedAt = action.ready ? performance.now() : action.startedAt + action.takesMs;
      action.effect?.();
    }
  }
  function startAction(type: string, droplet: Droplet, takesMs: number, effect?: () => void, ready?: () => boolean): Action {
    const action: Action = { id: ++sequence, type, dropletId: droplet.id, region: droplet.region, startedAt: performance.now(), takesMs, ...(effect ? { effect } : {}), ...(ready ? { ready } : {}) };
    actions.set(action.id, action);
    return action;
  }
  const actionJson = (action: Action) => ({
    id: action.id,
    status: action.completedAt === undefined ? 'in-progress' : 'completed',
    type: action.type,
    started_at: isoOf(action.startedAt),
    completed_at: action.completedAt === undefined ? null : isoOf(action.completedAt),
    resource_id: action.dropletId,
    resource_type: 'droplet',
    region: regionJson(action.region),
    region_slug: action.region,
  });

  /** A droplet on a real host is active once the host has booted (sshd listens), not before. */
  const booted = (droplet: Droplet) => !lab || lab.status(String(droplet.id))?.booted === true;
  const dropletStatus = (droplet: Droplet) => (performance.now() - droplet.createdAt >= bootMs && booted(droplet) ? 'active' : 'new');
  function dropletJson(droplet: Droplet) {
    const status = dropletStatus(droplet);
    const size = SIZES.find((entry) => entry.slug === droplet.size);
    return {
      id: droplet.id,
      name: droplet.name,
      memory: size?.memory,
      vcpus: size?.vcpus,
      disk: size?.disk,
      locked: false,
      status,
      created_at: isoOf(droplet.createdAt),
      features: ['private_networking'],
      // Required by the droplet model, and null while backups are off (droplet_next_backup_window.yml is nullable).
      next_backup_window: null,
      // Deprecated and null for every Droplet made since 2017 (kernel.yml).
      kernel: null,
      image: IMAGES.find((image) => image.slug === droplet.image),
      size,
      size_slug: droplet.size,
      region: regionJson(droplet.region),
      tags: [...droplet.tags],
      vpc_uuid: droplet.vpc_uuid,
      volume_ids: [],
      backup_ids: [],
      snapshot_ids: [],
      networks: {
        v4:
          status === 'active'
            ? [
                { ip_address: droplet.privateIp, netmask: netmaskOf(vpcs.get(droplet.vpc_uuid)?.ip_range), gateway: '', type: 'private' },
                { ip_address: droplet.publicIp, netmask: '255.255.240.0', gateway: '203.0.113.1', type: 'public' },
              ]
            : [],
        v6: [],
      },
    };
  }

  /**
   * A droplet's private address in its VPC: the next by count of droplets, as ever, unless a droplet
   * of that VPC holds it (one was deleted) or it is past the range: then the lowest free one.
   */
  function privateAddressIn(vpc: Vpc): string {
    const range = parseCidr(vpc.ip_range);
    if (!range.ok) return ipv4(0n);
    const taken = new Set([...droplets.values()].filter((droplet) => droplet.vpc_uuid === vpc.id).map((droplet) => droplet.privateIp));
    const first = range.cidr.network + 2n;
    const last = range.cidr.network + (1n << BigInt(32 - range.cidr.prefixLength)) - 2n;
    const preferred = range.cidr.network + BigInt(2 + droplets.size);
    if (preferred <= last && !taken.has(ipv4(preferred))) return ipv4(preferred);
    for (let candidate = first; candidate <= last; candidate++) if (!taken.has(ipv4(candidate))) return ipv4(candidate);
    throw unprocessable(`VPC ${vpc.name} (${vpc.ip_range}) has no free address left for another Droplet`);
  }

  function requireTags(names: unknown): string[] {
    const list = Array.isArray(names) ? (names as string[]) : [];
    for (const name of list) {
      if (!TAG_PATTERN.test(name)) throw new ApiError(400, 'bad_request', `tag name "${name}" is invalid: must match ^[a-zA-Z0-9_\\-:]+$`);
    }
    return list;
  }

  const sshKeyJson = (key: SshKey) => ({ id: key.id, name: key.name, public_key: key.public_key, fingerprint: key.fingerprint });
  /** A key by id or fingerprint, as `GET|DELETE /v2/account/keys/{id|fingerprint}` take either. */
  const keyAt = (reference: string | undefined) => found([...keys.values()].find((entry) => String(entry.id) === reference || entry.fingerprint === reference));
  function recordsOf(domain: string | undefined): DomainRecord[] {
    const records = domains.get(domain ?? '');
    if (!records) throw notFound();
    return records;
  }
  function recordAt(domain: string | undefined, recordId: string | undefined): DomainRecord {
    const record = recordsOf(domain).find((entry) => String(entry.id) === recordId);
    if (!record) throw notFound();
    return record;
  }

  function firewallFrom(body: Record<string, unknown>, id: string, createdAt: number): Firewall {
    const name = String(body.name ?? '');
    if (!FIREWALL_NAME.test(name)) throw unprocessable(`name "${name}" is invalid: only letters, numbers, "." and "-" are allowed`);
    const { inbound, outbound } = rulesFrom(body);
    if (inbound.length + outbound.length === 0) throw unprocessable('At least one rule must be specified.');
    const targetTags = requireExistingTags(body.tags);
    return { id, name, inbound_rules: inbound, outbound_rules: outbound, droplet_ids: (body.droplet_ids ?? []) as number[], tags: targetTags, createdAt };
  }

  /** Tags a firewall names (as targets or peers): valid names of tags that exist. */
  function requireExistingTags(names: unknown): string[] {
    const list = requireTags(names);
    for (const tag of list) if (!tags.has(tag)) throw unprocessable(`tag "${tag}" does not exist; tags must exist before a firewall names them`);
    return list;
  }

  /** The `inbound_rules` and `outbound_rules` of a firewall body (a create, a PUT, or `…/rules`), checked. */
  function rulesFrom(body: Record<string, unknown>): { inbound: FirewallRule[]; outbound: FirewallRule[] } {
    const inbound = (body.inbound_rules ?? []) as FirewallRule[];
    const outbound = (body.outbound_rules ?? []) as FirewallRule[];
    // OpenAPI firewall_rule_base: protocol is an enum; an inbound rule needs sources, an outbound one destinations.
    for (const [rules, side] of [
      [inbound, 'sources'],
      [outbound, 'destinations'],
    ] as const) {
      for (const rule of rules) {
        if (!['tcp', 'udp', 'icmp'].includes(String(rule.protocol))) throw unprocessable(`protocol "${rule.protocol}" is invalid: one of tcp, udp, icmp`);
        if (rule.protocol !== 'icmp' && portRangeOf(rule.ports) === undefined) throw unprocessable(`ports "${String(rule.ports)}" is invalid: a port ("22"), a range ("8000-9000"), or "0" for all ports`);
        const peer = rule[side];
        const named = peer !== undefined && ['addresses', 'droplet_ids', 'tags', 'load_balancer_uids', 'kubernetes_ids'].some((field) => Array.isArray(peer[field]) && (peer[field] as unknown[]).length > 0);
        if (!named) throw unprocessable(`every ${side === 'sources' ? 'inbound' : 'outbound'} rule must have ${side}`);
        requireExistingTags(peer?.tags);
      }
    }
    return { inbound, outbound };
  }

  const firewallJson = (firewall: Firewall) => ({
    id: firewall.id,
    name: firewall.name,
    status: 'succeeded',
    created_at: isoOf(firewall.createdAt),
    inbound_rules: firewall.inbound_rules,
    outbound_rules: firewall.outbound_rules,
    droplet_ids: firewall.droplet_ids,
    tags: firewall.tags,
    pending_changes: [],
  });

  /**
   * The VPCs and droplets as the real-host lab builds them. A VPC is one network with one subnet,
   * its `ip_range`, that reaches the internet (every droplet has a public address). A droplet's
   * firewall is the union of the rules of every Cloud Firewall that applies to it, by `droplet_ids`
   * or by a tag it carries (DigitalOcean shows a droplet "the union of all of the Firewalls' rules");
   * a peer named by droplet id or tag is those droplets' private and public addresses. A firewall
   * denies what no rule allows, in both directions: a droplet whose firewalls have no outbound rule
   * sends nothing. No firewall applying: everything open. IPv6 peers are left out (the lab is IPv4
   * only), as are load balancers and Kubernetes clusters (none are emulated).
   */
  function labTopology(): LabTopology {
    const networks = [...vpcs.values()].map((vpc): LabNetwork => ({ id: vpc.id, subnets: [{ id: vpc.id, cidr: vpc.ip_range, internet: true }] }));
    const all = [...droplets.values()];
    const peersOf = (peer: Record<string, unknown> | undefined): string[] => {
      const list = (field: string) => (Array.isArray(peer?.[field]) ? (peer?.[field] as unknown[]) : []);
      const addresses = list('addresses').map(String).filter((address) => !address.includes(':'));
      const ids = new Set(list('droplet_ids').map(Number));
      const tagged = new Set(list('tags').map(String));
      const named = all.filter((droplet) => ids.has(droplet.id) || droplet.tags.some((tag) => tagged.has(tag)));
      return [...new Set([...addresses, ...named.flatMap((droplet) => [droplet.privateIp, droplet.publicIp])])];
    };
    const trafficRules = (rules: readonly FirewallRule[], side: 'sources' | 'destinations'): TrafficRule[] =>
      rules.flatMap((rule): TrafficRule[] => {
        const protocol = rule.protocol;
        if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'icmp') return [];
        const peers = peersOf(rule[side]);
        const ports = protocol === 'icmp' ? null : portRangeOf(rule.ports);
        if (peers.length === 0 || ports === undefined) return [];
        return [{ protocol, ...(ports ? { ports } : {}), peers }];
      });
    const hosts = all.map((droplet): LabHost => {
      const applying = [...firewalls.values()].filter((firewall) => firewall.droplet_ids.includes(droplet.id) || firewall.tags.some((tag) => droplet.tags.includes(tag)));
      return {
        id: String(droplet.id),
        networkId: droplet.vpc_uuid,
        subnetId: droplet.vpc_uuid,
        privateIp: droplet.privateIp,
        publicIp: droplet.publicIp,
        hostname: droplet.name,
        login: { user: 'root', authorizedKeys: droplet.authorizedKeys },
        running: true,
        ...(applying.length > 0
          ? { firewall: { inbound: trafficRules(applying.flatMap((firewall) => firewall.inbound_rules), 'sources'), outbound: trafficRules(applying.flatMap((firewall) => firewall.outbound_rules), 'destinations') } }
          : {}),
      };
    });
    return { networks, hosts };
  }

  /** After any call that may have changed something, the lab follows the tables (it coalesces). */
  function syncHosts(method: string): void {
    if (lab && method !== 'GET') lab.sync(labTopology(), labOwner);
  }

  function route(method: string, url: URL, body: Record<string, unknown>): { status: number; json?: unknown } {
    const path = url.pathname.replace(/^\/v2\//, '').split('/').filter(Boolean).map(decodeURIComponent);
    // SSH keys live under `account/keys`: one resource, so that `:id` is the key's.
    const parts = path[0] === 'account' && path[1] === 'keys' ? ['account keys', ...path.slice(2)] : path;
    const [, id, , subId] = parts;
    settleActions();
    switch (routeKey(method, parts)) {
      case 'GET account':
        return { status: 200, json: { account: { droplet_limit: 25, email: 'emulator@armada.test', uuid: 'emulated', email_verified: true, status: 'active' } } };
      case 'GET regions':
        return { status: 200, json: page(url, 'regions', REGIONS.map((region) => regionJson(region.slug))) };
      case 'GET sizes':
        return { status: 200, json: page(url, 'sizes', SIZES) };
      case 'GET images':
        return { status: 200, json: page(url, 'images', IMAGES) };
      case 'GET images :id': {
        const image = IMAGES.find((entry) => entry.slug === id || String(entry.id) === id);
        if (!image) throw notFound();
        return { status: 200, json: { image } };
      }

      case 'POST vpcs': {
        const name = String(body.name ?? '');
        const region = String(body.region ?? '');
        if (!/^[a-zA-Z0-9\-.]+$/.test(name)) throw unprocessable(`name "${name}" is invalid`);
        if (!REGIONS.some((entry) => entry.slug === region)) throw unprocessable(`region "${region}" is invalid`);
        if ([...vpcs.values()].some((vpc) => vpc.name === name)) throw unprocessable(`a VPC named ${name} already exists`);
        const taken = [...vpcs.values()];
        const ipRange = body.ip_range === undefined ? freeRange(taken) : String(body.ip_range);
        const refusal = rangeRefusal(ipRange, taken);
        if (refusal) throw unprocessable(refusal);
        const isFirst = !taken.some((vpc) => vpc.region === region);
        const vpc: Vpc = { id: randomUUID(), name, region, ip_range: ipRange, description: String(body.description ?? ''), default: isFirst, createdAt: performance.now() };
        vpcs.set(vpc.id, vpc);
        return { status: 201, json: { vpc: vpcJson(vpc) } };
      }
      case 'GET vpcs':
        return { status: 200, json: page(url, 'vpcs', [...vpcs.values()].filter((vpc) => visible(vpc)).map(vpcJson)) };
      case 'GET vpcs :id':
        return { status: 200, json: { vpc: vpcJson(found(vpcs.get(id ?? ''))) } };
      case 'GET vpcs :id members': {
        const vpc = found(vpcs.get(id ?? ''));
        const members = [...droplets.values()].filter((droplet) => droplet.vpc_uuid === vpc.id).map((droplet) => ({ urn: `do:droplet:${droplet.id}`, name: droplet.name }));
        return { status: 200, json: page(url, 'members', members) };
      }
      case 'DELETE vpcs :id': {
        const vpc = found(vpcs.get(id ?? ''));
        if ([...droplets.values()].some((droplet) => droplet.vpc_uuid === vpc.id)) throw new ApiError(403, 'forbidden', 'Can not delete VPC with members');
        vpcs.delete(vpc.id);
        return { status: 204 };
      }

      case 'POST account keys': {
        const publicKey = String(body.public_key ?? '').trim();
        const [, keyBody] = publicKey.split(/\s+/);
        if (!keyBody) throw unprocessable("Key invalid type, we support 'ssh-rsa', 'ssh-ed25519' and 'ecdsa-sha2'");
        const fingerprint = createHash('md5').update(Buffer.from(keyBody, 'base64')).digest('hex').match(/../g)?.join(':') ?? '';
        if ([...keys.values()].some((entry) => entry.fingerprint === fingerprint)) throw unprocessable('SSH Key is already in use on your account');
        const key: SshKey = { id: ++sequence, name: String(body.name ?? ''), public_key: publicKey, fingerprint, createdAt: performance.now() };
        keys.set(key.id, key);
        return { status: 201, json: { ssh_key: sshKeyJson(key) } };
      }
      case 'GET account keys':
        return { status: 200, json: page(url, 'ssh_keys', [...keys.values()].filter((entry) => visible(entry)).map(sshKeyJson)) };
      case 'GET account keys :id':
        return { status: 200, json: { ssh_key: sshKeyJson(keyAt(id)) } };
      case 'DELETE account keys :id': {
        keys.delete(keyAt(id).id);
        return { status: 204 };
      }

      case 'POST tags': {
        const name = String(body.name ?? '');
        // The tag endpoints answer a bad name with their own body (OpenAPI tags/responses/tags_bad_request.yml), not `{ id, message }`.
        if (!TAG_PATTERN.test(name)) {
          const error = `Error validating resource tag: "tag-name \\"${name}\\" contains invalid characters"`;
          throw new ApiError(400, 'bad_request', error, { error, messages: null, root_causes: [error] });
        }
        tags.add(name);
        return { status: 201, json: { tag: tagJson(name, url.origin) } };
      }
      case 'GET tags':
        return { status: 200, json: page(url, 'tags', [...tags].map((name) => tagJson(name, url.origin))) };
      case 'GET tags :id': {
        if (!tags.has(id ?? '')) throw notFound();
        return { status: 200, json: { tag: tagJson(id ?? '', url.origin) } };
      }
      case 'DELETE tags :id': {
        if (!tags.delete(id ?? '')) throw notFound();
        for (const droplet of droplets.values()) droplet.tags = droplet.tags.filter((tag) => tag !== id);
        return { status: 204 };
      }
      case 'POST tags :id resources':
      case 'DELETE tags :id resources': {
        const name = id ?? '';
        if (!tags.has(name)) throw notFound();
        for (const entry of (body.resources ?? []) as Array<{ resource_id: string; resource_type: string }>) {
          const droplet = found(droplets.get(Number(entry.resource_id)));
          droplet.tags = method === 'POST' ? [...new Set([...droplet.tags, name])] : droplet.tags.filter((tag) => tag !== name);
        }
        return { status: 204 };
      }

      case 'POST droplets': {
        const region = String(body.region ?? '');
        const size = SIZES.find((entry) => entry.slug === body.size);
        if (!REGIONS.some((entry) => entry.slug === region)) throw unprocessable(`You specified an invalid region for Droplet creation.`);
        if (!size?.regions.includes(region)) throw unprocessable(`You specified an invalid size for Droplet creation.`);
        const image = IMAGES.find((entry) => entry.slug === body.image || entry.id === body.image);
        if (!image) throw unprocessable('You specified an invalid image for Droplet creation.');
        if (lab && image.slug !== REAL_HOST_IMAGE) throw unprocessable(`The real-host lab boots Debian 12 only (image ${REAL_HOST_IMAGE}); image ${String(body.image)} is ${image.distribution} ${image.name}.`);
        const name = requireHostname(String(body.name ?? ''));
        const vpc = body.vpc_uuid ? found(vpcs.get(String(body.vpc_uuid))) : [...vpcs.values()].find((entry) => entry.region === region && entry.default);
        if (!vpc) throw unprocessable('There is no VPC in this region: create one or pass vpc_uuid.');
        if (vpc.region !== region) throw unprocessable(`vpc_uuid ${vpc.id} is in ${vpc.region}: a Droplet must be in its VPC's region (${region} given)`);
        const sshKeys = ((body.ssh_keys ?? []) as Array<number | string>).map((reference) => {
          const key = [...keys.values()].find((entry) => String(entry.id) === String(reference) || entry.fingerprint === reference);
          if (!key) throw unprocessable(`ssh_keys: ${reference} is not a key of this account`);
          return key;
        });
        const dropletTags = requireTags(body.tags);
        const privateIp = privateAddressIn(vpc);
        for (const tag of dropletTags) tags.add(tag);
        const id = ++sequence;
        const droplet: Droplet = {
          id,
          name,
          region,
          size: size.slug,
          image: image.slug,
          vpc_uuid: vpc.id,
          tags: dropletTags,
          ssh_keys: sshKeys.map((key) => key.id),
          authorizedKeys: sshKeys.map((key) => key.public_key),
          user_data: body.user_data === undefined ? undefined : String(body.user_data),
          privateIp,
          publicIp: lab ? lab.allocatePublicIp(REAL_HOST_PUBLIC_POOL) : `198.51.100.${(id % 250) + 1}`,
          createdAt: performance.now(),
        };
        droplets.set(droplet.id, droplet);
        // The create is an action too, done when the droplet is active.
        const create = startAction('create', droplet, bootMs, undefined, lab ? () => booted(droplet) : undefined);
        return { status: 202, json: { droplet: dropletJson(droplet), links: { actions: [{ id: create.id, rel: 'create', href: `${url.origin}/v2/actions/${create.id}` }] } } };
      }
      case 'GET droplets': {
        const tagName = url.searchParams.get('tag_name');
        const list = [...droplets.values()].filter((droplet) => visible(droplet) && (tagName === null || droplet.tags.includes(tagName)));
        return { status: 200, json: page(url, 'droplets', list.map(dropletJson)) };
      }
      case 'GET droplets :id':
        return { status: 200, json: { droplet: dropletJson(found(droplets.get(Number(id)))) } };
      case 'DELETE droplets :id': {
        const droplet = found(droplets.get(Number(id)));
        droplets.delete(droplet.id);
        for (const firewall of firewalls.values()) firewall.droplet_ids = firewall.droplet_ids.filter((dropletId) => dropletId !== droplet.id);
        return { status: 204 };
      }
      case 'POST droplets :id actions': {
        // OpenAPI droplets/dropletActions_post.yml: 201 with the action, which completes later.
        const droplet = found(droplets.get(Number(id)));
        if (body.type !== 'rename') throw unprocessable(`droplet action "${String(body.type)}": the emulator does only rename`);
        const name = requireHostname(String(body.name ?? ''));
        const action = startAction('rename', droplet, actionMs, () => {
          droplet.name = name;
        });
        return { status: 201, json: { action: actionJson(action) } };
      }
      case 'GET droplets :id actions': {
        const droplet = found(droplets.get(Number(id)));
        return { status: 200, json: page(url, 'actions', [...actions.values()].filter((action) => action.dropletId === droplet.id).map(actionJson)) };
      }
      case 'GET droplets :id actions :id': {
        const action = actions.get(Number(subId));
        if (!action || action.dropletId !== Number(id)) throw notFound();
        return { status: 200, json: { action: actionJson(action) } };
      }
      case 'GET actions':
        return { status: 200, json: page(url, 'actions', [...actions.values()].map(actionJson)) };
      case 'GET actions :id': {
        const action = actions.get(Number(id));
        if (!action) throw notFound();
        return { status: 200, json: { action: actionJson(action) } };
      }

      case 'POST firewalls': {
        const firewall = firewallFrom(body, randomUUID(), performance.now());
        firewalls.set(firewall.id, firewall);
        return { status: 202, json: { firewall: firewallJson(firewall) } };
      }
      case 'GET firewalls':
        return { status: 200, json: page(url, 'firewalls', [...firewalls.values()].filter((firewall) => visible(firewall)).map(firewallJson)) };
      case 'GET firewalls :id':
        return { status: 200, json: { firewall: firewallJson(found(firewalls.get(id ?? ''))) } };
      case 'PUT firewalls :id': {
        const existing = found(firewalls.get(id ?? ''));
        // PUT replaces the whole firewall: anything left out is reset.
        const firewall = firewallFrom(body, existing.id, existing.createdAt);
        firewalls.set(firewall.id, firewall);
        return { status: 200, json: { firewall: firewallJson(firewall) } };
      }
      case 'DELETE firewalls :id': {
        const firewall = found(firewalls.get(id ?? ''));
        firewalls.delete(firewall.id);
        return { status: 204 };
      }
      // OpenAPI firewalls_{assign,delete}_droplets, firewalls_{add,delete}_tags, firewalls_{add,delete}_rules: 204 each.
      case 'POST firewalls :id droplets':
      case 'DELETE firewalls :id droplets': {
        const firewall = found(firewalls.get(id ?? ''));
        const named = ((body.droplet_ids ?? []) as unknown[]).map(Number);
        if (method === 'POST') for (const dropletId of named) found(droplets.get(dropletId));
        firewall.droplet_ids = method === 'POST' ? [...new Set([...firewall.droplet_ids, ...named])] : firewall.droplet_ids.filter((dropletId) => !named.includes(dropletId));
        return { status: 204 };
      }
      case 'POST firewalls :id tags':
      case 'DELETE firewalls :id tags': {
        const firewall = found(firewalls.get(id ?? ''));
        const named = method === 'POST' ? requireExistingTags(body.tags) : requireTags(body.tags);
        firewall.tags = method === 'POST' ? [...new Set([...firewall.tags, ...named])] : firewall.tags.filter((tag) => !named.includes(tag));
        return { status: 204 };
      }
      case 'POST firewalls :id rules':
      case 'DELETE firewalls :id rules': {
        const firewall = found(firewalls.get(id ?? ''));
        const { inbound, outbound } = rulesFrom(body);
        if (method === 'POST') {
          firewall.inbound_rules = [...firewall.inbound_rules, ...inbound];
          firewall.outbound_rules = [...firewall.outbound_rules, ...outbound];
        } else {
          // A rule is removed when one given matches it field for field.
          const same = (given: FirewallRule[]) => (rule: FirewallRule) => given.some((entry) => sameRule(entry, rule));
          firewall.inbound_rules = firewall.inbound_rules.filter((rule) => !same(inbound)(rule));
          firewall.outbound_rules = firewall.outbound_rules.filter((rule) => !same(outbound)(rule));
        }
        return { status: 204 };
      }

      case 'GET domains':
        return { status: 200, json: page(url, 'domains', [...domains.keys()].map((name) => ({ name, ttl: 1800, zone_file: '' }))) };
      case 'GET domains :id': {
        if (!domains.has(id ?? '')) throw notFound();
        return { status: 200, json: { domain: { name: id, ttl: 1800, zone_file: '' } } };
      }
      case 'GET domains :id records': {
        const records = recordsOf(id);
        // The name filter takes the fully qualified name; record names are relative.
        const fqdn = url.searchParams.get('name');
        const type = url.searchParams.get('type');
        const relative = (name: string) => (name === '@' ? id : `${name}.${id}`);
        return { status: 200, json: page(url, 'domain_records', records.filter((record) => (fqdn === null || relative(record.name) === fqdn) && (type === null || record.type === type))) };
      }
      case 'POST domains :id records': {
        const records = recordsOf(id);
        const record: DomainRecord = { id: ++sequence, type: String(body.type), name: String(body.name), data: String(body.data), ttl: Number(body.ttl ?? 1800), priority: null, port: null, weight: null, flags: null, tag: null };
        if (!['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'NS', 'SRV', 'CAA'].includes(record.type)) throw unprocessable(`type ${record.type} is invalid`);
        if (record.ttl < 30) throw unprocessable('ttl must be at least 30');
        records.push(record);
        return { status: 201, json: { domain_record: record } };
      }
      case 'GET domains :id records :id':
        return { status: 200, json: { domain_record: recordAt(id, subId) } };
      case 'PUT domains :id records :id':
      case 'PATCH domains :id records :id': {
        const record = recordAt(id, subId);
        for (const field of ['type', 'name', 'data'] as const) if (body[field] !== undefined) record[field] = String(body[field]);
        if (body.ttl !== undefined) record.ttl = Number(body.ttl);
        return { status: 200, json: { domain_record: record } };
      }
      case 'DELETE domains :id records :id': {
        const records = recordsOf(id);
        records.splice(records.indexOf(recordAt(id, subId)), 1);
        return { status: 204 };
      }
      default:
        throw notFound();
    }
  }

  function send(response: ServerResponse, status: number, json: unknown, requestId: string, extra: Record<string, string> = {}) {
    const body = json === undefined ? '' : JSON.stringify(json);
    response.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'ratelimit-limit': '5000',
      'ratelimit-remaining': String(Math.max(0, remaining)),
      'ratelimit-reset': String(Math.floor(Date.now() / 1000) + 60),
      'x-request-id': requestId,
      ...extra,
    });
    response.end(body);
  }

  async function handle(request: IncomingMessage, text: string, response: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(request.url ?? '/', `http://${request.headers.host ?? '127.0.0.1'}`);
    const method = request.method ?? 'GET';
    const [, , resource = '', , sub] = url.pathname.split('/');
    const routeName = `${method} ${resource}`;
    calls.set(routeName, (calls.get(routeName) ?? 0) + 1);
    remaining--;
    try {
      const token = /^Bearer (.+)$/.exec(String(request.headers.authorization ?? ''))?.[1];
      if (!token || (options.tokens && !options.tokens.includes(token))) throw new ApiError(401, 'unauthorized', 'Unable to authenticate you');
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const result = await faults.run(operationOf(method, resource, sub), () => route(method, url, body), routeName);
      syncHosts(method);
      send(response, result.status, result.json, requestId);
    } catch (error) {
      // A call that failed part way, or whose response is lost, may have changed something too.
      syncHosts(method);
      if (error instanceof LostResponseError) {
        response.socket?.destroy();
        return;
      }
      const failure = error instanceof ApiError ? error : new ApiError(500, 'server_error', (error as Error).message);
      const errorBody = failure.body ?? { id: failure.id, message: failure.message, request_id: requestId };
      send(response, failure.status, errorBody, requestId, failure.status === 429 ? { 'retry-after': String(retryAfter) } : {});
    }
  }

  const server = await startLoopbackServer(handle);

  return {
    endpoint: server.endpoint,
    faults,
    createDomain: (name) => {
      domains.set(name, [
        { id: ++sequence, type: 'NS', name: '@', data: 'ns1.digitalocean.com', ttl: 1800, priority: null, port: null, weight: null, flags: null, tag: null },
        { id: ++sequence, type: 'NS', name: '@', data: 'ns2.digitalocean.com', ttl: 1800, priority: null, port: null, weight: null, flags: null, tag: null },
      ]);
    },
    zones: () => [...domains].map(([domain, records]) => dnsZoneOf(domain, records)),
    inventory: () => ({
      vpcs: vpcs.size,
      droplets: droplets.size,
      firewalls: firewalls.size,
      sshKeys: keys.size,
      tags: tags.size,
      domainRecords: [...domains.values()].reduce((sum, records) => sum + records.filter((record) => record.type !== 'NS').length, 0),
    }),
    dropletsTagged: (...wanted) => {
      settleActions();
      return [...droplets.values()].filter((droplet) => wanted.every((tag) => droplet.tags.includes(tag))).map((droplet) => ({ id: droplet.id, name: droplet.name, status: dropletStatus(droplet), tags: [...droplet.tags] }));
    },
    calls: (routeName) => (routeName === undefined ? [...calls.values()].reduce((sum, count) => sum + count, 0) : (calls.get(routeName) ?? 0)),
    close: () => server.close(),
  };
}
