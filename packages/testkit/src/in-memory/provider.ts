/**
 * The in-memory provider: a complete ProviderV1 on the InMemoryCloud. It is written the way a
 * real provider plugin is (discover by ownership tags with pagination, idempotent creates, waiters,
 * typed errors), so it doubles as the reference for plugin authors.
 */
import {
  AlreadyExistsError,
  NAMED_SIZES,
  NotFoundError,
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  ValidationError,
  providerPlugin,
  parseAddress,
  waitUntil,
  type ApplyContext,
  type ArmadaPlugin,
  type DiscoverContext,
  type DnsRecordProperties,
  type DnsService,
  type FirewallRule,
  type InstanceTypeRequest,
  type ObservedResource,
  type ProviderV1,
  type ResolvedInstanceType,
  type ResourceAddress,
  type ResourceKind,
  type ResourceOutputs,
  type ResourcePropertiesByKind,
  type ResourceService,
  type RulePeer,
} from '@armada/core';
import type { CloudInstance, CloudRule, InMemoryCloud, InstanceState, ListRequest, Page, Tags } from './cloud.js';

export const IN_MEMORY_PROVIDER_ID = 'in-memory';

/** The cloud's size catalogue: the named classes plus bigger ones. */
export const IN_MEMORY_SIZES: ReadonlyArray<{ slug: string; cpus: number; memoryGiB: number }> = [
  ...Object.entries(NAMED_SIZES).map(([name, size]) => ({ slug: `mem-${name}`, ...size })),
  { slug: 'mem-2xlarge', cpus: 8, memoryGiB: 30 },
  { slug: 'mem-4xlarge', cpus: 16, memoryGiB: 60 },
];
export const IN_MEMORY_IMAGES: Readonly<Record<string, string>> = {
  'debian-11': 'img-debian-11',
  'debian-12': 'img-debian-12',
  'ubuntu-22.04': 'img-ubuntu-2204',
  'ubuntu-24.04': 'img-ubuntu-2404',
};

export interface InMemoryProviderOptions {
  cloud: InMemoryCloud;
  region: string;
  /** First poll delay of the waiters. Default 10 ms (the cloud boots instances in tens of ms). */
  pollIntervalMs?: number;
  waitTimeoutMs?: number;
}

const ROLE_TAG = 'armada:role';

function isOwnTag(key: string): boolean {
  return key.startsWith('armada:');
}

function userTags(tags: Tags): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([key]) => !isOwnTag(key)));
}

async function listAll<T>(fetchPage: (request: ListRequest) => Promise<Page<T>>, request: ListRequest): Promise<T[]> {
  const items: T[] = [];
  let nextToken: string | undefined;
  do {
    const page = await fetchPage({ ...request, ...(nextToken ? { nextToken } : {}) });
    items.push(...page.items);
    nextToken = page.nextToken;
  } while (nextToken);
  return items;
}

function observed<K extends ResourceKind>(
  kind: K,
  entity: { id: string; tags: Tags },
  properties: ResourcePropertiesByKind[K],
  outputs: ResourceOutputs = {},
): ObservedResource<K> {
  const address = entity.tags[OWNERSHIP_TAG_RESOURCE] as ResourceAddress;
  return { address, kind, name: parseAddress(address).name, id: entity.id, properties, outputs };
}

/** Tolerates "gone": deleting something already deleted is success. */
async function ignoreNotFound(operation: Promise<void>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (!NotFoundError.isInstance(error)) throw error;
  }
}

export function createInMemoryProvider(options: InMemoryProviderOptions): ProviderV1 {
  const { cloud, region } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 10;
  const waitTimeoutMs = options.waitTimeoutMs ?? 60_000;
  const owned = (context: DiscoverContext): ListRequest => ({ tags: { [OWNERSHIP_TAG_ENVIRONMENT]: context.environment } });

  const toCloudRule = (rule: FirewallRule, context: ApplyContext, selfAddress: ResourceAddress, selfId: string): CloudRule => {
    const peer = rule.peer;
    const cloudPeer =
      'cidr' in peer
        ? { cidr: peer.cidr }
        : 'firewall' in peer
          ? { firewallId: `firewall.${peer.firewall}` === selfAddress ? selfId : context.idOf(`firewall.${peer.firewall}`) }
          : { subnetId: context.idOf(`subnet.${peer.subnet}`) };
    return {
      protocol: rule.protocol,
      ...(rule.ports ? { fromPort: rule.ports.from, toPort: rule.ports.to } : {}),
      peer: cloudPeer,
      ...(rule.description ? { description: rule.description } : {}),
    };
  };

  const network: ResourceService<'network'> = {
    kind: 'network',
    replaceOn: ['cidr'],
    async discover(context) {
      const networks = await listAll((request) => cloud.listNetworks(request), owned(context));
      return networks.map((item) => observed('network', item, { cidr: item.cidr }, { cidr: item.cidr }));
    },
    async create(resource, context) {
      // The client token makes a retry after a lost response return the network the first call made.
      const created = await cloud.createNetwork({
        cidr: resource.properties.cidr,
        tags: { Name: resource.name, ...context.ownershipTags(resource.address) },
        clientToken: context.idempotencyToken(resource.address),
      });
      return observed('network', created, { cidr: created.cidr }, { cidr: created.cidr });
    },
    delete: (current) => ignoreNotFound(cloud.deleteNetwork(current.id)),
  };

  const subnet: ResourceService<'subnet'> = {
    kind: 'subnet',
    replaceOn: ['network', 'cidr', 'access', 'zone'],
    async discover(context) {
      const subnets = await listAll((request) => cloud.listSubnets(request), owned(context));
      return subnets.map((item) =>
        observed(
          'subnet',
          item,
          { network: context.findById(item.networkId)?.name ?? `(foreign ${item.networkId})`, cidr: item.cidr, access: item.access, zone: item.zone },
          { cidr: item.cidr, zone: item.zone },
        ),
      );
    },
    async create(resource, context) {
      const { properties } = resource;
      const created = await cloud.createSubnet({
        networkId: context.idOf(`network.${properties.network}`),
        cidr: properties.cidr,
        access: properties.access,
        ...(properties.zone ? { zone: properties.zone } : {}),
        tags: { Name: resource.name, ...context.ownershipTags(resource.address) },
        clientToken: context.idempotencyToken(resource.address),
      });
      return observed('subnet', created, { ...properties, zone: created.zone }, { cidr: created.cidr, zone: created.zone });
    },
    delete: (current) => ignoreNotFound(cloud.deleteSubnet(current.id)),
  };

  const firewall: ResourceService<'firewall'> = {
    kind: 'firewall',
    replaceOn: ['network', 'description'],
    async discover(context) {
      const firewalls = await listAll((request) => cloud.listFirewalls(request), owned(context));
      // Peers may name other firewalls of this same listing: map their ids first.
      const nameById = new Map(firewalls.map((item) => [item.id, parseAddress(item.tags[OWNERSHIP_TAG_RESOURCE] ?? 'firewall.?').name]));
      const toRule = (rule: CloudRule): FirewallRule => {
        const peer: RulePeer =
          'cidr' in rule.peer
            ? { cidr: rule.peer.cidr }
            : 'firewallId' in rule.peer
              ? { firewall: nameById.get(rule.peer.firewallId) ?? `(foreign ${rule.peer.firewallId})` }
              : { subnet: context.findById(rule.peer.subnetId)?.name ?? `(foreign ${rule.peer.subnetId})` };
        return {
          protocol: rule.protocol,
          ...(rule.fromPort !== undefined && rule.toPort !== undefined ? { ports: { from: rule.fromPort, to: rule.toPort } } : {}),
          peer,
          ...(rule.description ? { description: rule.description } : {}),
        };
      };
      return firewalls.map((item) =>
        observed('firewall', item, {
          network: context.findById(item.networkId)?.name ?? `(foreign ${item.networkId})`,
          description: item.description,
          ingress: item.ingress.map(toRule),
          ...(item.egress ? { egress: item.egress.map(toRule) } : {}),
        }),
      );
    },
    async create(resource, context) {
      const { properties } = resource;
      const networkId = context.idOf(`network.${properties.network}`);
      let created: { id: string; tags: Tags };
      try {
        created = await cloud.createFirewall({
          networkId,
          name: resource.name,
          description: properties.description,
          tags: context.ownershipTags(resource.address),
          clientToken: context.idempotencyToken(resource.address),
        });
      } catch (error) {
        // Made by an earlier run (a retry in this one is replayed by its token): adopt ours, refuse someone else's.
        if (!AlreadyExistsError.isInstance(error)) throw error;
        const existing = (await listAll((request) => cloud.listFirewalls(request), { tags: context.ownershipTags(resource.address) })).find(
          (item) => item.networkId === networkId,
        );
        if (!existing) throw error;
        created = existing;
      }
      return firewall.update?.(resource, observed('firewall', created, properties), context) as Promise<ObservedResource<'firewall'>>;
    },
    async update(resource, current, context) {
      const { properties } = resource;
      const rules = (list: FirewallRule[] | undefined) => list?.map((rule) => toCloudRule(rule, context, resource.address, current.id));
      await cloud.setFirewallRules(current.id, { ingress: rules(properties.ingress) ?? [], egress: rules(properties.egress) });
      return { ...current, properties };
    },
    delete: (current) => ignoreNotFound(cloud.deleteFirewall(current.id)),
  };

  const keyPair: ResourceService<'keyPair'> = {
    kind: 'keyPair',
    replaceOn: ['publicKey'],
    async discover(context) {
      const keyPairs = await listAll((request) => cloud.listKeyPairs(request), owned(context));
      return keyPairs.map((item) => observed('keyPair', item, { publicKey: item.publicKey }, { cloudName: item.name }));
    },
    async create(resource, context) {
      try {
        const created = await cloud.importKeyPair({
          name: resource.name,
          publicKey: resource.properties.publicKey,
          tags: context.ownershipTags(resource.address),
          clientToken: context.idempotencyToken(resource.address),
        });
        return observed('keyPair', created, { publicKey: created.publicKey }, { cloudName: created.name });
      } catch (error) {
        if (!AlreadyExistsError.isInstance(error)) throw error;
        const ours = await listAll((request) => cloud.listKeyPairs(request), { tags: context.ownershipTags(resource.address) });
        const existing = ours.find((item) => item.name === resource.name);
        if (!existing) {
          throw new AlreadyExistsError(
            `A key pair named "${resource.name}" already exists in the account and does not belong to environment "${context.environment}". Rename the key pair in the spec or delete the old one.`,
            { resource: resource.address, provider: IN_MEMORY_PROVIDER_ID },
          );
        }
        return observed('keyPair', existing, { publicKey: existing.publicKey }, { cloudName: existing.name });
      }
    },
    delete: (current) => ignoreNotFound(cloud.deleteKeyPair(current.id)),
  };

  // The cloud stores key pairs by name, and Armada names them by their logical name.
  const instanceProperties = (item: CloudInstance, context: DiscoverContext): ResourcePropertiesByKind['instance'] => {
    const find = (id: string) => context.findById(id)?.name ?? `(foreign ${id})`;
    return {
      subnet: find(item.subnetId),
      firewalls: item.firewallIds.map(find),
      ...(item.keyPairName !== undefined ? { keyPair: item.keyPairName } : {}),
      size: item.size,
      image: item.image,
      tags: userTags(item.tags),
      ...(item.userData !== undefined ? { userData: item.userData } : {}),
      ...(item.tags[ROLE_TAG] !== undefined ? { role: item.tags[ROLE_TAG] } : {}),
    };
  };
  const instanceOutputs = (item: CloudInstance & { state: InstanceState }): ResourceOutputs => ({
    state: item.state,
    privateIp: item.privateIp,
    publicIp: item.publicIp,
  });
  const instanceTags = (properties: ResourcePropertiesByKind['instance'], context: ApplyContext, address: ResourceAddress): Tags => ({
    ...properties.tags,
    ...(properties.role !== undefined ? { [ROLE_TAG]: properties.role } : {}),
    ...context.ownershipTags(address),
  });

  const instance: ResourceService<'instance'> = {
    kind: 'instance',
    replaceOn: ['subnet', 'keyPair', 'size', 'image', 'userData'],
    async discover(context) {
      const instances = await listAll((request) => cloud.listInstances(request), owned(context));
      return instances
        .filter((item) => item.state !== 'terminated' && item.state !== 'shutting-down')
        .map((item) => observed('instance', item, instanceProperties(item, context), instanceOutputs(item)));
    },
    async create(resource, context) {
      const { properties } = resource;
      const launched = await cloud.runInstance({
        subnetId: context.idOf(`subnet.${properties.subnet}`),
        firewallIds: properties.firewalls.map((name) => context.idOf(`firewall.${name}`)),
        ...(properties.keyPair !== undefined ? { keyPairName: String(context.resourceAt(`keyPair.${properties.keyPair}`).outputs.cloudName) } : {}),
        size: properties.size,
        image: properties.image,
        ...(properties.userData !== undefined ? { userData: properties.userData } : {}),
        tags: instanceTags(properties, context, resource.address),
        clientToken: context.idempotencyToken(resource.address),
      });
      const running = await waitUntil(
        async () => {
          const item = await cloud.describeInstance(launched.id);
          return item.state === 'running' ? { done: true as const, value: item } : { done: false as const, state: item.state };
        },
        { description: `instance ${launched.id} (${resource.address}) to be running`, minDelayMs: pollIntervalMs, maxDelayMs: pollIntervalMs * 20, timeoutMs: waitTimeoutMs, signal: context.signal, provider: IN_MEMORY_PROVIDER_ID },
      );
      return observed('instance', running, properties, instanceOutputs(running));
    },
    async update(resource, current, context) {
      const { properties } = resource;
      await cloud.setInstanceFirewalls(current.id, properties.firewalls.map((name) => context.idOf(`firewall.${name}`)));
      await cloud.setTags(current.id, instanceTags(properties, context, resource.address));
      return { ...current, properties };
    },
    async delete(current, context) {
      await ignoreNotFound(cloud.terminateInstance(current.id));
      await waitUntil(
        async () => {
          try {
            const item = await cloud.describeInstance(current.id);
            return item.state === 'terminated' ? { done: true as const, value: undefined } : { done: false as const, state: item.state };
          } catch (error) {
            if (NotFoundError.isInstance(error)) return { done: true as const, value: undefined };
            throw error;
          }
        },
        { description: `instance ${current.id} (${current.address}) to be terminated`, minDelayMs: pollIntervalMs, maxDelayMs: pollIntervalMs * 20, timeoutMs: waitTimeoutMs, signal: context.signal, provider: IN_MEMORY_PROVIDER_ID },
      );
    },
  };

  const recordProperties = (item: DnsRecordProperties): DnsRecordProperties => ({ zone: item.zone, name: item.name, type: item.type, ttl: item.ttl, values: [...item.values] });

  const dnsRecord: ResourceService<'dnsRecord'> = {
    kind: 'dnsRecord',
    replaceOn: ['zone', 'name', 'type'],
    async discover(context) {
      const records = await listAll((request) => cloud.listDnsRecords(request), owned(context));
      return records.map((item) => observed('dnsRecord', item, recordProperties(item)));
    },
    async create(resource, context) {
      const created = await cloud.createDnsRecord({ ...resource.properties, tags: context.ownershipTags(resource.address) });
      return observed('dnsRecord', created, recordProperties(created));
    },
    async update(resource, current) {
      await cloud.updateDnsRecord(current.id, { ttl: resource.properties.ttl, values: resource.properties.values });
      return { ...current, properties: resource.properties };
    },
    delete: (current) => ignoreNotFound(cloud.deleteDnsRecord(current.id)),
  };

  const dns: DnsService = {
    async listRecords(zone) {
      return (await listAll((request) => cloud.listDnsRecords({ ...request, zone }), {})).map(recordProperties);
    },
    async upsertRecord(record) {
      const existing = (await listAll((request) => cloud.listDnsRecords({ ...request, zone: record.zone }), {})).find(
        (item) => item.name === record.name && item.type === record.type,
      );
      if (existing) await cloud.updateDnsRecord(existing.id, { ttl: record.ttl, values: record.values });
      else await cloud.createDnsRecord({ ...record, tags: {} });
    },
    async deleteRecord(record) {
      const existing = (await listAll((request) => cloud.listDnsRecords({ ...request, zone: record.zone }), {})).find(
        (item) => item.name === record.name && item.type === record.type,
      );
      if (existing) await ignoreNotFound(cloud.deleteDnsRecord(existing.id));
    },
  };

  return {
    specificationVersion: 'v1',
    id: IN_MEMORY_PROVIDER_ID,
    region,
    capabilities: {
      subnets: 'native',
      firewallTargets: 'group',
      firewallPeers: { cidr: true, firewall: true, subnet: true },
      egressRules: true,
      tags: 'key-value',
      dns: true,
    },
    services: { network, subnet, firewall, keyPair, instance, dnsRecord },
    dns,
    async verify() {
      if (!cloud.regions.includes(region)) {
        throw new ValidationError(`Unknown region "${region}" for provider "${IN_MEMORY_PROVIDER_ID}".`, {
          issues: [{ path: 'provider.region', message: `"${region}" is not a region of this cloud`, fix: `use one of: ${cloud.regions.join(', ')}` }],
          provider: IN_MEMORY_PROVIDER_ID,
        });
      }
    },
    resolveInstanceType(request: InstanceTypeRequest): ResolvedInstanceType {
      const issues = [];
      let size = typeof request.options.size === 'string' ? request.options.size : undefined;
      if (size === undefined) {
        const wanted = typeof request.size === 'string' ? NAMED_SIZES[request.size] : request.size;
        size = IN_MEMORY_SIZES.find((entry) => entry.cpus >= wanted.cpus && entry.memoryGiB >= wanted.memoryGiB)?.slug;
        if (size === undefined) {
          issues.push({ path: 'size', message: `no size has ${wanted.cpus} CPUs and ${wanted.memoryGiB} GiB`, fix: `the largest is ${IN_MEMORY_SIZES.at(-1)?.slug}` });
        }
      } else if (!IN_MEMORY_SIZES.some((entry) => entry.slug === size)) {
        issues.push({ path: `${IN_MEMORY_PROVIDER_ID}.size`, message: `unknown size "${size}"`, fix: `use one of: ${IN_MEMORY_SIZES.map((entry) => entry.slug).join(', ')}` });
      }
      const image = typeof request.options.image === 'string' ? request.options.image : IN_MEMORY_IMAGES[request.image];
      if (image === undefined) {
        issues.push({ path: 'image', message: `no image for "${request.image}"`, fix: `use one of: ${Object.keys(IN_MEMORY_IMAGES).join(', ')}` });
      }
      if (issues.length > 0 || size === undefined || image === undefined) {
        throw new ValidationError(`Instance "${request.instance}" cannot be built on ${IN_MEMORY_PROVIDER_ID}.`, { issues, provider: IN_MEMORY_PROVIDER_ID });
      }
      return { size, image };
    },
  };
}

/** The plugin: registers provider id `in-memory`, backed by the cloud you pass. */
export function inMemoryProviderPlugin(options: { cloud: InMemoryCloud; pollIntervalMs?: number; waitTimeoutMs?: number }): ArmadaPlugin {
  return providerPlugin({
    pluginId: '@armada/testkit/in-memory',
    providerId: IN_MEMORY_PROVIDER_ID,
    create: ({ region }) => createInMemoryProvider({ ...options, region }),
  });
}
