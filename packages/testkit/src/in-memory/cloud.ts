/**
 * A small in-process cloud: the "vendor API" behind the in-memory provider. It keeps resources by
 * cloud id and enforces the rules real clouds enforce, so the provider built on it meets the same
 * situations a real one does: CIDR containment and overlap, duplicate names, dependency violations
 * on delete, unknown ids, idempotent instance launches, paginated listings, instance state changes
 * over time, eventual consistency and throttling.
 */
import {
  AlreadyExistsError,
  ConflictError,
  DependencyViolationError,
  NotFoundError,
  ValidationError,
  cidrContains,
  cidrsOverlap,
  parseCidr,
  type Cidr,
} from '@armada/core';
import { FaultInjector, type PortableOperation } from '../faults.js';

export type Tags = Record<string, string>;

export type CloudPeer = { cidr: string } | { firewallId: string } | { subnetId: string };

export interface CloudRule {
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  fromPort?: number;
  toPort?: number;
  peer: CloudPeer;
  description?: string;
}

interface Entity {
  id: string;
  tags: Tags;
  /** performance.now() at creation, for eventual consistency. */
  createdAt: number;
}

export interface CloudNetwork extends Entity {
  cidr: string;
}
export interface CloudSubnet extends Entity {
  networkId: string;
  cidr: string;
  access: 'public' | 'private';
  zone: string;
}
export interface CloudFirewall extends Entity {
  networkId: string;
  name: string;
  description: string;
  ingress: CloudRule[];
  egress: CloudRule[] | undefined;
}
export interface CloudKeyPair extends Entity {
  name: string;
  publicKey: string;
}
export type InstanceState = 'pending' | 'running' | 'shutting-down' | 'terminated';
export interface CloudInstance extends Entity {
  subnetId: string;
  firewallIds: string[];
  keyPairName: string | undefined;
  size: string;
  image: string;
  userData: string | undefined;
  privateIp: string;
  publicIp: string | undefined;
  clientToken: string | undefined;
  /** When the state last changed, and what it becomes next. */
  stateChangedAt: number;
  stateTarget: 'running' | 'terminated';
}
export interface CloudDnsRecord extends Entity {
  zone: string;
  name: string;
  type: 'A' | 'AAAA' | 'CNAME' | 'TXT';
  ttl: number;
  values: string[];
}

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export interface ListRequest {
  /** Only resources carrying all these tags. */
  tags?: Tags;
  nextToken?: string;
  maxResults?: number;
}

export interface InMemoryCloudOptions {
  regions?: string[];
  /** DNS zones that exist in the account. */
  zones?: string[];
  /** Time an instance stays pending, and shutting-down. */
  bootMs?: number;
  terminateMs?: number;
  /** How long terminated instances stay listed (as terminated) before they disappear. */
  terminatedRetentionMs?: number;
  pageSize?: number;
  seed?: number;
}

type Collections = {
  network: Map<string, CloudNetwork>;
  subnet: Map<string, CloudSubnet>;
  firewall: Map<string, CloudFirewall>;
  keyPair: Map<string, CloudKeyPair>;
  instance: Map<string, CloudInstance>;
  dnsRecord: Map<string, CloudDnsRecord>;
};

const ID_PREFIX: Record<keyof Collections, string> = {
  network: 'net',
  subnet: 'subnet',
  firewall: 'fw',
  keyPair: 'key',
  instance: 'i',
  dnsRecord: 'rr',
};

export class InMemoryCloud {
  readonly faults: FaultInjector;
  readonly regions: readonly string[];
  readonly zones: Set<string>;
  private readonly options: Required<Omit<InMemoryCloudOptions, 'regions' | 'zones' | 'seed'>>;
  private readonly collections: Collections = {
    network: new Map(),
    subnet: new Map(),
    firewall: new Map(),
    keyPair: new Map(),
    instance: new Map(),
    dnsRecord: new Map(),
  };
  /** Creates by client token, per kind: a replayed create returns what the first one made. */
  private readonly byClientToken = new Map<string, string>();
  private sequence = 0;
  private nextAddress = 10;
  /** Calls made, by operation: lets tests assert that retries happened, or that nothing was called. */
  readonly calls = new Map<string, number>();

  constructor(options: InMemoryCloudOptions = {}) {
    this.regions = options.regions ?? ['local-1', 'local-2'];
    this.zones = new Set(options.zones ?? ['armada.test']);
    this.faults = new FaultInjector({ seed: options.seed ?? 42 });
    this.options = {
      bootMs: options.bootMs ?? 30,
      terminateMs: options.terminateMs ?? 30,
      terminatedRetentionMs: options.terminatedRetentionMs ?? 60_000,
      pageSize: options.pageSize ?? 50,
    };
  }

  private newId(kind: keyof Collections): string {
    this.sequence++;
    return `${ID_PREFIX[kind]}-${this.sequence.toString(16).padStart(8, '0')}`;
  }

  /**
   * An idempotent create: with a client token, a second call (a retry after a lost response)
   * returns what the first one made, visible or not yet, and never makes a second one.
   */
  private once<K extends keyof Collections>(kind: K, clientToken: string | undefined, make: () => NonNullable<ReturnType<Collections[K]['get']>>) {
    const key = clientToken === undefined ? undefined : `${kind}/${clientToken}`;
    const madeId = key === undefined ? undefined : this.byClientToken.get(key);
    const made = madeId === undefined ? undefined : (this.collections[kind].get(madeId) as ReturnType<Collections[K]['get']> | undefined);
    if (made) return structuredClone(made) as NonNullable<typeof made>;
    const entity = make();
    if (key !== undefined) this.byClientToken.set(key, (entity as Entity).id);
    return structuredClone(entity);
  }

  private call<T>(operation: PortableOperation, label: string, body: () => T): Promise<T> {
    this.calls.set(label, (this.calls.get(label) ?? 0) + 1);
    return this.faults.run(operation, body, label);
  }

  private get<K extends keyof Collections>(kind: K, id: string, options: { visibleOnly?: boolean } = {}) {
    const entity = this.collections[kind].get(id) as ReturnType<Collections[K]['get']>;
    if (!entity || (options.visibleOnly && !this.faults.isVisible(entity.createdAt))) {
      throw new NotFoundError(`The ${kind} id "${id}" does not exist.`, { resource: id, provider: 'in-memory' });
    }
    return entity as NonNullable<ReturnType<Collections[K]['get']>>;
  }

  private list<T extends Entity>(source: Iterable<T>, request: ListRequest, include: (item: T) => boolean = () => true): Page<T> {
    const wanted = Object.entries(request.tags ?? {});
    const matching: T[] = [];
    for (const item of source) {
      if (!this.faults.isVisible(item.createdAt) || !include(item)) continue;
      if (wanted.every(([key, value]) => item.tags[key] === value)) matching.push(item);
    }
    const start = request.nextToken ? Number(request.nextToken) : 0;
    const size = Math.min(request.maxResults ?? this.options.pageSize, 1000);
    const items = matching.slice(start, start + size).map((item) => structuredClone(item));
    return start + size < matching.length ? { items, nextToken: String(start + size) } : { items };
  }

  private static cidr(text: string, path: string): Cidr {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new ValidationError(`Invalid CIDR "${text}": ${parsed.reason}`, { issues: [{ path, message: parsed.reason }] });
    return parsed.cidr;
  }

  // --- networks -----------------------------------------------------------------------------

  createNetwork(input: { cidr: string; tags: Tags; clientToken?: string }): Promise<CloudNetwork> {
    return this.call('createNetwork', 'CreateNetwork', () =>
      this.once('network', input.clientToken, () => {
        InMemoryCloud.cidr(input.cidr, 'cidr');
        const network: CloudNetwork = { id: this.newId('network'), cidr: input.cidr, tags: { ...input.tags }, createdAt: performance.now() };
        this.collections.network.set(network.id, network);
        return network;
      }),
    );
  }

  listNetworks(request: ListRequest = {}): Promise<Page<CloudNetwork>> {
    return this.call('describe', 'ListNetworks', () => this.list(this.collections.network.values(), request));
  }

  deleteNetwork(id: string): Promise<void> {
    return this.call('deleteNetwork', 'DeleteNetwork', () => {
      this.get('network', id);
      const inUse = [...this.collections.subnet.values(), ...this.collections.firewall.values()].find((item) => item.networkId === id);
      if (inUse) throw new DependencyViolationError(`The network "${id}" has dependencies (${inUse.id}) and cannot be deleted.`, { resource: id, provider: 'in-memory' });
      this.collections.network.delete(id);
    });
  }

  // --- subnets ------------------------------------------------------------------------------

  createSubnet(input: { networkId: string; cidr: string; access: 'public' | 'private'; zone?: string; tags: Tags; clientToken?: string }): Promise<CloudSubnet> {
    return this.call('createSubnet', 'CreateSubnet', () => this.once('subnet', input.clientToken, () => {
      const network = this.get('network', input.networkId);
      const cidr = InMemoryCloud.cidr(input.cidr, 'cidr');
      if (!cidrContains(InMemoryCloud.cidr(network.cidr, 'network'), cidr)) {
        throw new ValidationError(`The CIDR "${input.cidr}" is not inside the network's ${network.cidr}.`, {
          issues: [{ path: 'cidr', message: `not inside ${network.cidr}`, fix: `choose a block inside ${network.cidr}` }],
          provider: 'in-memory',
        });
      }
      for (const other of this.collections.subnet.values()) {
        if (other.networkId === input.networkId && cidrsOverlap(InMemoryCloud.cidr(other.cidr, 'cidr'), cidr)) {
          throw new ConflictError(`The CIDR "${input.cidr}" conflicts with subnet ${other.id} (${other.cidr}).`, { resource: other.id, provider: 'in-memory' });
        }
      }
      const subnet: CloudSubnet = {
        id: this.newId('subnet'),
        networkId: input.networkId,
        cidr: input.cidr,
        access: input.access,
        zone: input.zone ?? `${this.regions[0]}a`,
        tags: { ...input.tags },
        createdAt: performance.now(),
      };
      this.collections.subnet.set(subnet.id, subnet);
      return subnet;
    }));
  }

  listSubnets(request: ListRequest = {}): Promise<Page<CloudSubnet>> {
    return this.call('describe', 'ListSubnets', () => this.list(this.collections.subnet.values(), request));
  }

  deleteSubnet(id: string): Promise<void> {
    return this.call('deleteSubnet', 'DeleteSubnet', () => {
      this.get('subnet', id);
      const instance = [...this.collections.instance.values()].find((item) => item.subnetId === id && this.stateOf(item) !== 'terminated');
      if (instance) throw new DependencyViolationError(`The subnet "${id}" has dependencies (${instance.id}) and cannot be deleted.`, { resource: id, provider: 'in-memory' });
      this.collections.subnet.delete(id);
    });
  }

  // --- firewalls ----------------------------------------------------------------------------

  private checkRules(rules: CloudRule[]): void {
    for (const rule of rules) {
      if ('firewallId' in rule.peer) this.get('firewall', rule.peer.firewallId);
      if ('subnetId' in rule.peer) this.get('subnet', rule.peer.subnetId);
      if ('cidr' in rule.peer) InMemoryCloud.cidr(rule.peer.cidr, 'peer');
    }
  }

  createFirewall(input: { networkId: string; name: string; description: string; tags: Tags; clientToken?: string }): Promise<CloudFirewall> {
    return this.call('createFirewall', 'CreateFirewall', () => this.once('firewall', input.clientToken, () => {
      this.get('network', input.networkId);
      for (const other of this.collections.firewall.values()) {
        if (other.networkId === input.networkId && other.name === input.name) {
          throw new AlreadyExistsError(`A firewall named "${input.name}" already exists in ${input.networkId} (${other.id}).`, { resource: other.id, provider: 'in-memory' });
        }
      }
      const firewall: CloudFirewall = {
        id: this.newId('firewall'),
        networkId: input.networkId,
        name: input.name,
        description: input.description,
        ingress: [],
        egress: undefined,
        tags: { ...input.tags },
        createdAt: performance.now(),
      };
      this.collections.firewall.set(firewall.id, firewall);
      return firewall;
    }));
  }

  /** Replaces the firewall's rules (the provider computes the set; the cloud checks the peers). */
  setFirewallRules(id: string, rules: { ingress: CloudRule[]; egress: CloudRule[] | undefined }): Promise<CloudFirewall> {
    return this.call('updateFirewall', 'SetFirewallRules', () => {
      const firewall = this.get('firewall', id);
      this.checkRules([...rules.ingress, ...(rules.egress ?? [])]);
      firewall.ingress = structuredClone(rules.ingress);
      firewall.egress = rules.egress && structuredClone(rules.egress);
      return structuredClone(firewall);
    });
  }

  setTags(id: string, tags: Tags): Promise<void> {
    return this.call('updateTags', 'SetTags', () => {
      const entity = [...Object.values(this.collections)].map((collection) => (collection as Map<string, Entity>).get(id)).find(Boolean);
      if (!entity) throw new NotFoundError(`The id "${id}" does not exist.`, { resource: id, provider: 'in-memory' });
      entity.tags = { ...tags };
    });
  }

  listFirewalls(request: ListRequest = {}): Promise<Page<CloudFirewall>> {
    return this.call('describe', 'ListFirewalls', () => this.list(this.collections.firewall.values(), request));
  }

  deleteFirewall(id: string): Promise<void> {
    return this.call('deleteFirewall', 'DeleteFirewall', () => {
      this.get('firewall', id);
      const instance = [...this.collections.instance.values()].find((item) => item.firewallIds.includes(id) && this.stateOf(item) !== 'terminated');
      if (instance) throw new DependencyViolationError(`The firewall "${id}" is in use by ${instance.id}.`, { resource: id, provider: 'in-memory' });
      const referrer = [...this.collections.firewall.values()].find(
        (other) => other.id !== id && [...other.ingress, ...(other.egress ?? [])].some((rule) => 'firewallId' in rule.peer && rule.peer.firewallId === id),
      );
      if (referrer) throw new DependencyViolationError(`The firewall "${id}" is referenced by a rule of ${referrer.id}.`, { resource: id, provider: 'in-memory' });
      this.collections.firewall.delete(id);
    });
  }

  // --- key pairs ----------------------------------------------------------------------------

  importKeyPair(input: { name: string; publicKey: string; tags: Tags; clientToken?: string }): Promise<CloudKeyPair> {
    return this.call('createKeyPair', 'ImportKeyPair', () =>
      this.once('keyPair', input.clientToken, () => {
        const existing = [...this.collections.keyPair.values()].find((keyPair) => keyPair.name === input.name);
        if (existing) throw new AlreadyExistsError(`The key pair "${input.name}" already exists.`, { resource: existing.id, provider: 'in-memory' });
        const keyPair: CloudKeyPair = { id: this.newId('keyPair'), name: input.name, publicKey: input.publicKey, tags: { ...input.tags }, createdAt: performance.now() };
        this.collections.keyPair.set(keyPair.id, keyPair);
        return keyPair;
      }),
    );
  }

  listKeyPairs(request: ListRequest = {}): Promise<Page<CloudKeyPair>> {
    return this.call('describe', 'ListKeyPairs', () => this.list(this.collections.keyPair.values(), request));
  }

  deleteKeyPair(id: string): Promise<void> {
    return this.call('deleteKeyPair', 'DeleteKeyPair', () => {
      this.get('keyPair', id);
      this.collections.keyPair.delete(id);
    });
  }

  // --- instances ----------------------------------------------------------------------------

  /** The state now, from the time of the last change: instances boot and shut down over time. */
  stateOf(instance: CloudInstance): InstanceState {
    const elapsed = performance.now() - instance.stateChangedAt;
    if (instance.stateTarget === 'running') return elapsed >= this.options.bootMs ? 'running' : 'pending';
    return elapsed >= this.options.terminateMs ? 'terminated' : 'shutting-down';
  }

  private allocateAddress(cidr: string): string {
    const parsed = InMemoryCloud.cidr(cidr, 'cidr');
    const host = parsed.network + BigInt(this.nextAddress++);
    return [24n, 16n, 8n, 0n].map((shift) => ((host >> shift) & 255n).toString()).join('.');
  }

  runInstance(input: {
    subnetId: string;
    firewallIds: string[];
    keyPairName?: string;
    size: string;
    image: string;
    userData?: string;
    tags: Tags;
    clientToken?: string;
  }): Promise<CloudInstance & { state: InstanceState }> {
    return this.call('createInstance', 'RunInstance', () => {
      // Idempotent launch: the same token returns the instance it launched, never a second one.
      const launched = this.once('instance', input.clientToken, () => this.launch(input));
      return { ...launched, state: this.stateOf(launched) };
    });
  }

  private launch(input: Parameters<InMemoryCloud['runInstance']>[0]): CloudInstance {
    const subnet = this.get('subnet', input.subnetId);
    for (const firewallId of input.firewallIds) this.get('firewall', firewallId);
    if (input.keyPairName !== undefined && ![...this.collections.keyPair.values()].some((keyPair) => keyPair.name === input.keyPairName)) {
      throw new NotFoundError(`The key pair "${input.keyPairName}" does not exist.`, { resource: input.keyPairName, provider: 'in-memory' });
    }
    const now = performance.now();
    const instance: CloudInstance = {
      id: this.newId('instance'),
      subnetId: input.subnetId,
      firewallIds: [...input.firewallIds],
      keyPairName: input.keyPairName,
      size: input.size,
      image: input.image,
      userData: input.userData,
      privateIp: this.allocateAddress(subnet.cidr),
      publicIp: subnet.access === 'public' ? `198.51.100.${(this.sequence % 250) + 1}` : undefined,
      clientToken: input.clientToken,
      tags: { ...input.tags },
      createdAt: now,
      stateChangedAt: now,
      stateTarget: 'running',
    };
    this.collections.instance.set(instance.id, instance);
    return instance;
  }

  /** Visible instances, with their current state; terminated ones are listed until retention ends. */
  listInstances(request: ListRequest = {}): Promise<Page<CloudInstance & { state: InstanceState }>> {
    return this.call('describe', 'ListInstances', () => {
      const now = performance.now();
      for (const instance of this.collections.instance.values()) {
        if (this.stateOf(instance) === 'terminated' && now - instance.stateChangedAt > this.options.terminatedRetentionMs) {
          this.collections.instance.delete(instance.id);
        }
      }
      const page = this.list(this.collections.instance.values(), request);
      return { ...page, items: page.items.map((instance) => ({ ...instance, state: this.stateOf(instance) })) };
    });
  }

  describeInstance(id: string): Promise<CloudInstance & { state: InstanceState }> {
    return this.call('describe', 'DescribeInstance', () => {
      const instance = this.get('instance', id, { visibleOnly: true });
      return { ...structuredClone(instance), state: this.stateOf(instance) };
    });
  }

  setInstanceFirewalls(id: string, firewallIds: string[]): Promise<void> {
    return this.call('updateInstance', 'SetInstanceFirewalls', () => {
      const instance = this.get('instance', id);
      for (const firewallId of firewallIds) this.get('firewall', firewallId);
      instance.firewallIds = [...firewallIds];
    });
  }

  terminateInstance(id: string): Promise<void> {
    return this.call('deleteInstance', 'TerminateInstance', () => {
      const instance = this.get('instance', id);
      if (instance.stateTarget === 'terminated') return;
      instance.stateTarget = 'terminated';
      instance.stateChangedAt = performance.now();
    });
  }

  // --- DNS ----------------------------------------------------------------------------------

  private checkZone(zone: string): void {
    if (!this.zones.has(zone)) throw new NotFoundError(`No hosted zone "${zone}" exists.`, { resource: zone, provider: 'in-memory' });
  }

  createDnsRecord(input: Omit<CloudDnsRecord, 'id' | 'createdAt'>): Promise<CloudDnsRecord> {
    return this.call('createDnsRecord', 'CreateDnsRecord', () => {
      this.checkZone(input.zone);
      const existing = [...this.collections.dnsRecord.values()].find((record) => record.zone === input.zone && record.name === input.name && record.type === input.type);
      if (existing) throw new AlreadyExistsError(`The record ${input.name} ${input.type} already exists in ${input.zone}.`, { resource: existing.id, provider: 'in-memory' });
      const record: CloudDnsRecord = { ...structuredClone(input), id: this.newId('dnsRecord'), createdAt: performance.now() };
      this.collections.dnsRecord.set(record.id, record);
      return structuredClone(record);
    });
  }

  updateDnsRecord(id: string, input: { ttl: number; values: string[]; tags?: Tags }): Promise<CloudDnsRecord> {
    return this.call('updateDnsRecord', 'UpdateDnsRecord', () => {
      const record = this.get('dnsRecord', id);
      record.ttl = input.ttl;
      record.values = [...input.values];
      if (input.tags) record.tags = { ...input.tags };
      return structuredClone(record);
    });
  }

  listDnsRecords(request: ListRequest & { zone?: string } = {}): Promise<Page<CloudDnsRecord>> {
    return this.call('describe', 'ListDnsRecords', () => {
      if (request.zone !== undefined) this.checkZone(request.zone);
      return this.list(this.collections.dnsRecord.values(), request, (record) => request.zone === undefined || record.zone === request.zone);
    });
  }

  deleteDnsRecord(id: string): Promise<void> {
    return this.call('deleteDnsRecord', 'DeleteDnsRecord', () => {
      this.get('dnsRecord', id);
      this.collections.dnsRecord.delete(id);
    });
  }

  /** Everything the cloud holds that is not terminated, for tests that check "nothing left". */
  inventory(): { networks: number; subnets: number; firewalls: number; keyPairs: number; instances: number; dnsRecords: number } {
    return {
      networks: this.collections.network.size,
      subnets: this.collections.subnet.size,
      firewalls: this.collections.firewall.size,
      keyPairs: this.collections.keyPair.size,
      instances: [...this.collections.instance.values()].filter((instance) => this.stateOf(instance) !== 'terminated').length,
      dnsRecords: this.collections.dnsRecord.size,
    };
  }

  /** Instances carrying these tags (any state but terminated), read directly: for duplicate checks. */
  instancesTagged(tags: Tags): CloudInstance[] {
    return [...this.collections.instance.values()].filter(
      (instance) => this.stateOf(instance) !== 'terminated' && Object.entries(tags).every(([key, value]) => instance.tags[key] === value),
    );
  }
}
