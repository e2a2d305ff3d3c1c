/**
 * The resource services on DigitalOcean. DigitalOcean has no subnets and no key/value tags, so:
 * a network is a VPC (ownership in its description); a firewall is a Cloud Firewall that targets
 * the droplets carrying its tag (ownership in its encoded name); a key pair is an account SSH key
 * (ownership in its name); an instance is a droplet carrying encoded tags (see encoding.ts).
 * Subnets are honoured by the provider's `adapt` (see provider.ts).
 *
 * DigitalOcean has no idempotency token, so a create retried after a lost response meets what its
 * first attempt made: a VPC or key create refused with 422 (`unprocessable_entity`, whatever the
 * message says) first looks for it.
 */
import type { createApiClient } from 'dots-wrapper';
import {
  AlreadyExistsError,
  ArmadaError,
  ConflictError,
  type CreateAttempts,
  NotFoundError,
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  createKey,
  digestOf,
  parseAddress,
  waitUntil,
  type ApplyContext,
  type DesiredResource,
  type FirewallRule,
  type InstanceProperties,
  type ObservedResource,
  type ProbeResult,
  type ResourceAddress,
  type ResourceService,
  type RulePeer,
} from '@armada/core';
import { firewallCloudName, hostName, parseFirewallCloudName, parseTag, tag } from './encoding.js';
import { DIGITALOCEAN_PROVIDER_ID, digitalOceanErrorId, digitalocean } from './errors.js';

export type DotsClient = ReturnType<typeof createApiClient>;

export interface DigitalOceanContext {
  client: DotsClient;
  region: string;
  /** Items per page of list calls (DigitalOcean allows up to 200). */
  pageSize: number;
  pollIntervalMs: number;
  waitTimeoutMs: number;
  /**
   * DigitalOcean takes no idempotency token: each create goes through here, so a repeat after a
   * lost reply finds what the first attempt made (waiting while it may not be listed yet).
   */
  attempts: CreateAttempts;
}

type DoRule = { protocol: string; ports: string; sources?: DoPeer; destinations?: DoPeer };
type DoPeer = { addresses?: string[]; tags?: string[]; droplet_ids?: number[] };
type Links = { pages?: { next?: string } };

/** Every page of a list call: DigitalOcean pages with `links.pages.next` (200 items at most a page). */
export async function listAll<T>(context: string, fetchPage: (page: number) => Promise<{ data: Record<string, unknown> }>, key: string): Promise<T[]> {
  const items: T[] = [];
  for (let page = 1; ; page++) {
    const { data } = await digitalocean(context, () => fetchPage(page));
    items.push(...((data[key] as T[] | undefined) ?? []));
    if (!(data.links as Links | undefined)?.pages?.next) return items;
  }
}

export function waitFor<T>(context: DigitalOceanContext, description: string, probe: () => Promise<ProbeResult<T>>, signal?: AbortSignal): Promise<T> {
  return waitUntil(probe, {
    description,
    minDelayMs: context.pollIntervalMs,
    maxDelayMs: context.pollIntervalMs * 30,
    timeoutMs: context.waitTimeoutMs,
    provider: DIGITALOCEAN_PROVIDER_ID,
    ...(signal ? { signal } : {}),
  });
}

/**
 * Retries a call while it fails with NotFound because something it names was made a moment ago
 * and is not visible yet. Only NotFound: any other failure (a throttle, a lost connection) goes
 * back to the executor, whose retry of the create first looks for what the call may have made.
 */
async function whenVisible<T>(context: DigitalOceanContext, description: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const outcome = await waitFor<{ value: T } | { error: unknown }>(
    context,
    description,
    async () => {
      try {
        return { done: true, value: { value: await call() } };
      } catch (error) {
        if (NotFoundError.isInstance(error)) return { done: false, state: 'not visible yet' };
        return { done: true, value: { error } };
      }
    },
    signal,
  );
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

async function ignoreNotFound(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (!NotFoundError.isInstance(error)) throw error;
  }
}

/** Ownership written where a resource has room for text: a VPC's description, a key's name. */
const ownershipText = (environment: string, address: ResourceAddress) => `${OWNERSHIP_TAG_ENVIRONMENT}=${environment};${OWNERSHIP_TAG_RESOURCE}=${address}`;
function parseOwnership(text: string | undefined): { environment: string; address: ResourceAddress; name: string } | undefined {
  const match = /armada:environment=([^;]+);armada:resource=(.+)$/.exec(text ?? '');
  if (!match) return undefined;
  const address = match[2] as ResourceAddress;
  return { environment: match[1] as string, address, name: parseAddress(address).name };
}

/** Tags must exist before a firewall names them; creating one that exists is harmless. */
async function ensureTags(context: DigitalOceanContext, names: string[]): Promise<void> {
  await Promise.all([...new Set(names)].map((name) => digitalocean('createTag', () => context.client.tag.createTag({ name }))));
}

export function networkService(context: DigitalOceanContext): ResourceService<'network'> {
  const { client } = context;
  type Vpc = { id: string; name: string; ip_range: string; description?: string; region: string };
  const observed = (vpc: Vpc, environment: string): ObservedResource<'network'> | undefined => {
    const owner = parseOwnership(vpc.description);
    if (!owner || owner.environment !== environment) return undefined;
    return { address: owner.address, kind: 'network', name: owner.name, id: vpc.id, properties: { cidr: vpc.ip_range }, outputs: { vpcId: vpc.id, cidr: vpc.ip_range, region: vpc.region } };
  };
  const list = () => listAll<Vpc>('listVpcs', (page) => client.vpc.listVpcs({ page, per_page: context.pageSize }) as never, 'vpcs');
  return {
    kind: 'network',
    replaceOn: ['cidr'],
    async discover({ environment }) {
      return (await list()).flatMap((vpc) => observed(vpc, environment) ?? []);
    },
    async create(resource, apply) {
      const description = ownershipText(apply.environment, resource.address);
      const ours = async () => (await list()).map((vpc) => observed(vpc, apply.environment)).find((entry) => entry?.address === resource.address);
      return context.attempts.once(createKey(apply, resource.address), { find: ours, create: () => createVpc(resource, apply, description, ours) }, apply.signal);
    },
    async delete(current) {
      await ignoreNotFound(() => digitalocean('deleteVpc', () => client.vpc.deleteVpc({ vpc_id: current.id })));
    },
  };

  async function createVpc(resource: DesiredResource<'network'>, apply: ApplyContext, description: string, ours: () => Promise<ObservedResource<'network'> | undefined>): Promise<ObservedResource<'network'>> {
    try {
      const { data } = await digitalocean('createVpc', () =>
        client.vpc.createVpc({ name: hostName(`${apply.environment}-${resource.name}`), region: context.region, ip_range: resource.properties.cidr, description }),
      );
      const vpc = (data as unknown as { vpc: Vpc }).vpc;
      return observed(vpc, apply.environment) as ObservedResource<'network'>;
    } catch (error) {
      if (digitalOceanErrorId(error) !== 'unprocessable_entity') throw error;
      // Perhaps a retry after a lost response: the VPC is ours if its description says so.
      const found = await ours();
      if (found) return found;
      // Not listed yet, but DigitalOcean says it is there (by its wording: a last resort): wait for it.
      if (!AlreadyExistsError.isInstance(error)) throw error;
      return waitFor<ObservedResource<'network'>>(context, `VPC of ${resource.address} to be visible`, async () => {
        const later = await ours();
        return later ? { done: true, value: later } : { done: false };
      });
    }
  }
}

export function keyPairService(context: DigitalOceanContext): ResourceService<'keyPair'> {
  const { client } = context;
  type Key = { id: number; name: string; public_key: string; fingerprint: string };
  const cloudName = (environment: string, address: ResourceAddress) => `armada ${ownershipText(environment, address)}`;
  const observed = (key: Key, environment: string): ObservedResource<'keyPair'> | undefined => {
    const owner = parseOwnership(key.name);
    if (!owner || owner.environment !== environment) return undefined;
    return { address: owner.address, kind: 'keyPair', name: owner.name, id: String(key.id), properties: { publicKey: key.public_key }, outputs: { keyId: key.id, fingerprint: key.fingerprint } };
  };
  const list = () => listAll<Key>('listSshKeys', (page) => client.sshKey.listSshKeys({ page, per_page: context.pageSize }) as never, 'ssh_keys');
  return {
    kind: 'keyPair',
    replaceOn: ['publicKey'],
    async discover({ environment }) {
      return (await list()).flatMap((key) => observed(key, environment) ?? []);
    },
    async create(resource, apply) {
      const ours = async () => (await list()).map((key) => observed(key, apply.environment)).find((entry) => entry?.address === resource.address);
      return context.attempts.once(createKey(apply, resource.address), { find: ours, create: () => createSshKey(resource, apply) }, apply.signal);
    },
    async delete(current) {
      await ignoreNotFound(() => digitalocean('destroySshKey', () => client.sshKey.destroySshKey({ ssh_key_id: current.id })));
    },
  };

  async function createSshKey(resource: DesiredResource<'keyPair'>, apply: ApplyContext): Promise<ObservedResource<'keyPair'>> {
    try {
      const { data } = await digitalocean('createSshKey', () =>
        client.sshKey.createSshKey({ name: cloudName(apply.environment, resource.address), public_key: resource.properties.publicKey }),
      );
      return observed((data as unknown as { ssh_key: Key }).ssh_key, apply.environment) as ObservedResource<'keyPair'>;
    } catch (error) {
      if (digitalOceanErrorId(error) !== 'unprocessable_entity') throw error;
      // A key is once per account: a retry after a lost response finds the one it made.
      const existing = (await list()).find((key) => key.public_key.split(/\s+/)[1] === resource.properties.publicKey.split(/\s+/)[1]);
      if (!existing && !AlreadyExistsError.isInstance(error)) throw error;
      const adopted = existing && observed(existing, apply.environment);
      if (!adopted || adopted.address !== resource.address) {
        throw new AlreadyExistsError(
          `This public key is already an SSH key of the DigitalOcean account ("${existing?.name ?? 'unknown'}"), not this environment's. DigitalOcean allows a key once per account: delete that key or use another.`,
          { provider: DIGITALOCEAN_PROVIDER_ID, resource: resource.address },
        );
      }
      return adopted;
    }
  }
}

/** Portable rules to DigitalOcean's, which have no "all" protocol and no descriptions. */
function toCloudRules(rules: FirewallRule[], environment: string, direction: 'sources' | 'destinations'): DoRule[] {
  const peerOf = (peer: RulePeer): DoPeer =>
    'cidr' in peer ? { addresses: [peer.cidr] } : 'firewall' in peer ? { tags: [tag('armada:fw', environment, peer.firewall)] } : { tags: [tag('armada:subnet', environment, peer.subnet)] };
  return rules.flatMap((rule) => {
    const ports = rule.ports ? (rule.ports.from === rule.ports.to ? String(rule.ports.from) : `${rule.ports.from}-${rule.ports.to}`) : '0';
    const protocols = rule.protocol === 'all' ? ['tcp', 'udp', 'icmp'] : [rule.protocol];
    return protocols.map((protocol) => ({ protocol, ports: protocol === 'icmp' ? '0' : ports, [direction]: peerOf(rule.peer) }));
  });
}

/** DigitalOcean's rules back to portable ones; tcp + udp + icmp to one peer on all ports is "all". */
function fromCloudRules(rules: DoRule[], direction: 'sources' | 'destinations'): FirewallRule[] {
  const single: FirewallRule[] = [];
  for (const rule of rules) {
    const peers: RulePeer[] = [];
    const target = rule[direction] ?? {};
    for (const address of target.addresses ?? []) peers.push({ cidr: address });
    for (const name of target.tags ?? []) {
      const parsed = parseTag(name);
      if (parsed.kind === 'armada:fw') peers.push({ firewall: parsed.values[1] ?? name });
      else if (parsed.kind === 'armada:subnet') peers.push({ subnet: parsed.values[1] ?? name });
    }
    const [from, to] = rule.ports === '0' || rule.ports === '' || rule.ports === 'all' ? [] : rule.ports.split('-').map(Number);
    for (const peer of peers) {
      single.push({
        protocol: rule.protocol as FirewallRule['protocol'],
        ...(from !== undefined && rule.protocol !== 'icmp' ? { ports: { from, to: to ?? from } } : {}),
        peer,
      });
    }
  }
  const key = (rule: FirewallRule) => JSON.stringify([rule.peer, rule.ports ?? null]);
  const merged: FirewallRule[] = [];
  for (const rule of single) {
    const siblings = single.filter((other) => key(other) === key(rule) && !other.ports);
    const isAll = !rule.ports && ['tcp', 'udp', 'icmp'].every((protocol) => siblings.some((other) => other.protocol === protocol));
    if (isAll) {
      if (!merged.some((entry) => entry.protocol === 'all' && key(entry) === key(rule))) merged.push({ protocol: 'all', peer: rule.peer });
    } else merged.push(rule);
  }
  return merged;
}

/** Outbound traffic is denied on DigitalOcean unless allowed: no egress in the spec means all of it. */
const ALLOW_ALL_OUTBOUND: FirewallRule[] = [
  { protocol: 'all', peer: { cidr: '0.0.0.0/0' } },
  { protocol: 'all', peer: { cidr: '::/0' } },
];

export function firewallService(context: DigitalOceanContext): ResourceService<'firewall'> {
  const { client } = context;
  type Firewall = { id: string; name: string; inbound_rules: DoRule[]; outbound_rules: DoRule[]; tags: string[] };
  const observed = (firewall: Firewall, environment: string): ObservedResource<'firewall'> | undefined => {
    const owner = parseFirewallCloudName(firewall.name);
    if (!owner || owner.environment !== environment) return undefined;
    return {
      address: `firewall.${owner.name}`,
      kind: 'firewall',
      name: owner.name,
      id: firewall.id,
      // DigitalOcean firewalls belong to no VPC and keep no description (see adapt).
      properties: { network: '', description: '', ingress: fromCloudRules(firewall.inbound_rules, 'sources'), egress: fromCloudRules(firewall.outbound_rules, 'destinations') },
      outputs: { firewallId: firewall.id, targetTag: firewall.tags[0] },
    };
  };
  const body = (name: string, properties: ObservedResource<'firewall'>['properties'], environment: string) => {
    const inbound = toCloudRules(properties.ingress, environment, 'sources');
    const outbound = toCloudRules(properties.egress ?? ALLOW_ALL_OUTBOUND, environment, 'destinations');
    const targetTag = tag('armada:fw', environment, name);
    const named = [targetTag, ...[...inbound.map((rule) => rule.sources), ...outbound.map((rule) => rule.destinations)].flatMap((peer) => peer?.tags ?? [])];
    return { request: { name: firewallCloudName(environment, name), inbound_rules: inbound, outbound_rules: outbound, tags: [targetTag], droplet_ids: [] }, tags: named };
  };
  const list = () => listAll<Firewall>('listFirewalls', (page) => client.firewall.listFirewalls({ page, per_page: context.pageSize }) as never, 'firewalls');
  return {
    kind: 'firewall',
    replaceOn: [],
    async discover({ environment }) {
      return (await list()).flatMap((firewall) => observed(firewall, environment) ?? []);
    },
    async create(resource, apply) {
      const { request, tags } = body(resource.name, resource.properties, apply.environment);
      await ensureTags(context, tags);
      // Made by an earlier attempt (its name says whose it is): its rules are set again, as asked now.
      const earlier = await context.attempts.find(createKey(apply, resource.address), async () => (await list()).find((firewall) => firewall.name === request.name), apply.signal);
      const firewallOf = ({ data }: { data: unknown }) => (data as { firewall: Firewall }).firewall;
      const firewall = earlier
        ? firewallOf(await digitalocean('updateFirewall', () => client.firewall.updateFirewall({ ...request, id: earlier.id } as never)))
        : await context.attempts.remember(createKey(apply, resource.address), async () => firewallOf(await digitalocean('createFirewall', () => client.firewall.createFirewall(request as never))));
      return { ...(observed(firewall, apply.environment) as ObservedResource<'firewall'>), properties: resource.properties };
    },
    async update(resource, current, apply) {
      const { request, tags } = body(resource.name, resource.properties, apply.environment);
      await ensureTags(context, tags);
      // PUT replaces the whole firewall, so every field is sent.
      await digitalocean('updateFirewall', () => client.firewall.updateFirewall({ ...request, id: current.id } as never));
      return { ...current, properties: resource.properties };
    },
    async delete(current) {
      await ignoreNotFound(() => digitalocean('deleteFirewall', () => client.firewall.deleteFirewall({ firewall_id: current.id })));
    },
  };
}

/** A droplet action (OpenAPI actions/models/action.yml). */
type DropletAction = { id: number; status: 'in-progress' | 'completed' | 'errored'; type: string };
type Droplet = { id: number; name: string; status: string; size_slug: string; image?: { slug?: string }; tags: string[]; vpc_uuid: string; networks?: { v4?: Array<{ ip_address: string; type: string }> } };

/** The droplet tags that say what the spec asked for. */
export function dropletTags(environment: string, address: ResourceAddress, properties: InstanceProperties): string[] {
  return [
    tag('armada:env', environment),
    tag('armada:res', address),
    tag('armada:subnet', environment, properties.subnet),
    ...properties.firewalls.map((name) => tag('armada:fw', environment, name)),
    ...(properties.keyPair !== undefined ? [tag('armada:key', properties.keyPair)] : []),
    ...(properties.role !== undefined ? [tag('armada:role', properties.role)] : []),
    ...(properties.userData !== undefined ? [`armada:userdata:${digestOf(properties.userData).slice('sha256:'.length)}`] : []),
    ...Object.entries(properties.tags).map(([key, value]) => tag('tag', key, value)),
  ];
}

function observedDroplet(droplet: Droplet, environment: string): ObservedResource<'instance'> | undefined {
  const parsed = droplet.tags.map(parseTag);
  const value = (kind: string) => parsed.find((entry) => entry.kind === kind)?.values;
  if (value('armada:env')?.[0] !== environment) return undefined;
  const address = value('armada:res')?.[0] as ResourceAddress | undefined;
  if (!address) return undefined;
  const userData = droplet.tags.find((entry) => entry.startsWith('armada:userdata:'))?.slice('armada:userdata:'.length);
  const networks = droplet.networks?.v4 ?? [];
  return {
    address,
    kind: 'instance',
    name: parseAddress(address).name,
    id: String(droplet.id),
    properties: {
      subnet: value('armada:subnet')?.[1] ?? '',
      firewalls: parsed.filter((entry) => entry.kind === 'armada:fw').map((entry) => entry.values[1] ?? ''),
      ...(value('armada:key') ? { keyPair: value('armada:key')?.[0] as string } : {}),
      size: droplet.size_slug,
      image: droplet.image?.slug ?? '',
      tags: Object.fromEntries(parsed.filter((entry) => entry.kind === 'tag').map((entry) => [entry.values[0] ?? '', entry.values[1] ?? ''])),
      ...(userData ? { userData: `sha256:${userData}` } : {}),
      ...(value('armada:role') ? { role: value('armada:role')?.[0] as string } : {}),
    },
    outputs: {
      dropletId: droplet.id,
      hostname: droplet.name,
      status: droplet.status,
      privateIp: networks.find((network) => network.type === 'private')?.ip_address,
      publicIp: networks.find((network) => network.type === 'public')?.ip_address,
    },
  };
}

export function instanceService(context: DigitalOceanContext): ResourceService<'instance'> {
  const { client } = context;
  const getDroplet = async (id: number) => (await digitalocean('getDroplet', () => client.droplet.getDroplet({ droplet_id: id }))).data.droplet as unknown as Droplet;
  const waitActive = (id: number, address: string, signal: AbortSignal) =>
    waitFor<Droplet>(
      context,
      `droplet ${id} (${address}) to be active`,
      async () => {
        const droplet = await getDroplet(id);
        return droplet.status === 'active' ? { done: true, value: droplet } : { done: false, state: droplet.status };
      },
      signal,
    );
  /**
   * Renames the droplet (OpenAPI droplets/dropletActions_post.yml, `rename`) and waits for the
   * action, which DigitalOcean runs asynchronously. An errored action is retryable: the executor
   * runs the update again.
   */
  const rename = async (id: number, name: string, address: string, signal: AbortSignal) => {
    const started = (await digitalocean('renameDroplet', () => client.droplet.renameDroplet({ droplet_id: id, name }))).data.action as unknown as DropletAction;
    const action = await waitFor<DropletAction>(
      context,
      `the rename of droplet ${id} (${address}) to ${name}`,
      async () => {
        const current = (await digitalocean('getAction', () => client.action.getAction({ action_id: started.id }))).data.action as unknown as DropletAction;
        return current.status === 'in-progress' ? { done: false, state: current.status } : { done: true, value: current };
      },
      signal,
    );
    if (action.status !== 'completed') {
      throw new ArmadaError('Unknown', `The rename of droplet ${id} (${address}) to ${name} ended ${action.status} (action ${action.id}).`, { provider: DIGITALOCEAN_PROVIDER_ID, retryable: true });
    }
  };
  const retag = async (id: string, add: string[], remove: string[]) => {
    await ensureTags(context, add);
    const resources = [{ resource_id: id, resource_type: 'droplet' }];
    for (const name of add) await digitalocean('tagResources', () => client.tag.tagResources({ tag_name: name, resources } as never));
    for (const name of remove) await digitalocean('untagResources', () => client.tag.untagResources({ tag_name: name, resources } as never));
  };
  return {
    kind: 'instance',
    replaceOn: ['keyPair', 'size', 'image', 'userData'],
    async discover({ environment }) {
      const droplets = await listAll<Droplet>('listDroplets', (page) => client.droplet.listDroplets({ page, per_page: context.pageSize, tag_name: tag('armada:env', environment) }) as never, 'droplets');
      return droplets.flatMap((droplet) => observedDroplet(droplet, environment) ?? []);
    },
    async create(resource, apply: ApplyContext) {
      const { properties } = resource;
      const tags = dropletTags(apply.environment, resource.address, properties);
      // No idempotency token on DigitalOcean: a retried create first looks for the droplet an
      // earlier attempt made (its tags name its address; see CreateAttempts), so a lost response
      // never makes two.
      const key = createKey(apply, resource.address);
      const existing = await context.attempts.find(
        key,
        () =>
          listAll<Droplet>(
            'listDroplets',
            (page) => client.droplet.listDroplets({ page, per_page: context.pageSize, tag_name: tag('armada:res', resource.address) }) as never,
            'droplets',
          ).then((droplets) => droplets.find((droplet) => droplet.tags.includes(tag('armada:env', apply.environment)))),
        apply.signal,
      );
      let id = existing?.id;
      if (id === undefined) {
        // What is remembered is what `find` finds: the droplet.
        const droplet = await context.attempts.remember(key, async () => {
          const { data } = await whenVisible(
            context,
            `the VPC and key of ${resource.address} to be visible`,
            () =>
              digitalocean('createDroplet', () =>
                client.droplet.createDroplet({
                  name: hostName(resource.name),
                  region: context.region,
                  size: properties.size,
                  image: properties.image,
                  ssh_keys: properties.keyPair !== undefined ? [Number(apply.idOf(`keyPair.${properties.keyPair}`))] : [],
                  tags,
                  ...(properties.userData !== undefined ? { user_data: properties.userData } : {}),
                  // adapt() makes every instance depend on the environment's network: its VPC.
                  vpc_uuid: apply.idOf(networkAddressOf(resource.dependsOn, resource.address)),
                } as never),
              ),
            apply.signal,
          );
          return (data as unknown as { droplet: Droplet }).droplet;
        });
        id = droplet.id;
      }
      const active = await waitActive(id, resource.address, apply.signal);
      return { ...(observedDroplet(active, apply.environment) as ObservedResource<'instance'>), properties };
    },
    async update(resource, current, apply) {
      // Kept under a new address (count scaling: `web` is now `web-1`): the droplet takes the new
      // name. Renamed first: were the tags moved first and the rename then failed, the droplet
      // would be found under its new address with nothing left to update, and keep its old name.
      const hostname = hostName(resource.name);
      if (current.outputs.hostname !== hostname) await rename(Number(current.id), hostname, resource.address, apply.signal);
      const wanted = dropletTags(apply.environment, resource.address, resource.properties);
      const had = dropletTags(apply.environment, current.address, current.properties);
      await retag(
        current.id,
        wanted.filter((name) => !had.includes(name)),
        had.filter((name) => !wanted.includes(name) && !name.startsWith('armada:userdata:')),
      );
      return { ...current, properties: resource.properties, outputs: { ...current.outputs, hostname } };
    },
    async delete(current, apply) {
      await ignoreNotFound(() => digitalocean('deleteDroplet', () => client.droplet.deleteDroplet({ droplet_id: Number(current.id) })));
      await waitFor(
        context,
        `droplet ${current.id} (${current.address}) to be gone`,
        async () => {
          try {
            await getDroplet(Number(current.id));
            return { done: false, state: 'deleting' };
          } catch (error) {
            if (NotFoundError.isInstance(error)) return { done: true, value: undefined };
            throw error;
          }
        },
        apply.signal,
      );
    },
  };
}

/** The network an instance was made to depend on by adapt(). */
function networkAddressOf(dependsOn: readonly ResourceAddress[], address: ResourceAddress): ResourceAddress {
  const network = dependsOn.find((entry) => entry.startsWith('network.'));
  if (!network) throw new ConflictError(`${address} has no network to place its droplet in (the provider's adapt() should have added it).`);
  return network;
}
