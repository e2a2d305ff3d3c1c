/**
 * network -> a Neutron network plus a router to the external network; subnet -> a Neutron subnet,
 * public when the network's router has an interface on it (and so a route to the internet),
 * private when it has none.
 *
 * Neutron networks have no address range of their own: the spec's range is kept as the tag
 * `armada:cidr=...` (core has already checked that every subnet lies inside it).
 */
import {
  AlreadyExistsError,
  ConflictError,
  DependencyViolationError,
  cidrsOverlap,
  ownershipTags,
  parseCidr,
  type ApplyContext,
  type ObservedResource,
  type ResourceAddress,
  type ResourceService,
} from '@armada/core';
import {
  createOnce,
  environmentTag,
  findWithin,
  ignoreNotFound,
  neutronTags,
  ownerOf,
  tagValue,
  whenVisible,
  type OpenStackContext,
} from './context.js';
import { OPENSTACK_PROVIDER_ID } from './errors.js';

const CIDR_TAG = 'armada:cidr';

interface Network {
  id: string;
  name: string;
  tags: string[];
}
interface Router {
  id: string;
  tags: string[];
}
interface Subnet {
  id: string;
  name: string;
  network_id: string;
  cidr: string;
  tags: string[];
}
interface Port {
  id: string;
  device_id: string;
  device_owner: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
}

/** The resources of one logical address, found by its ownership tags. */
function byOwnership<T>(context: OpenStackContext, path: string, key: string, environment: string, address: ResourceAddress): Promise<T[]> {
  return context.client.listAll<T>('network', path, key, { query: { tags: neutronTags(ownershipTags(environment, address)).join(',') } });
}

/**
 * The network's router to the external network: the one its ownership tags name, or a new one.
 * Also called by a public subnet's create, in case a crash came between the network and its router.
 */
async function ensureRouter(context: OpenStackContext, apply: ApplyContext, networkAddress: ResourceAddress, networkName: string): Promise<string> {
  const router = await createOnce(context, apply, networkAddress, 'router', {
    find: async () => (await byOwnership<Router>(context, '/v2.0/routers', 'routers', apply.environment, networkAddress))[0],
    create: async () => {
      const externalNetworkId = await context.externalNetworkId();
      const body = { router: { name: `${apply.environment}-${networkName}-router`, external_gateway_info: { network_id: externalNetworkId }, tags: neutronTags(apply.ownershipTags(networkAddress)) } };
      return (await context.client.request<{ router: Router }>('network', 'POST', '/v2.0/routers', { body })).router;
    },
  });
  return router.id;
}

/**
 * After "overlaps with another subnet": the subnet that holds the range. Ours (our ownership
 * tags, our exact range) is what an earlier attempt made, and is adopted. Anything else is refused,
 * named. The holder may not be listed yet (it was made a moment ago), so it is looked for within
 * the consistency window.
 */
async function adoptOverlapping(context: OpenStackContext, apply: ApplyContext, address: ResourceAddress, networkId: string, cidr: string, conflict: ConflictError): Promise<Subnet> {
  const wanted = parseCidr(cidr);
  const overlaps = (subnet: Subnet) => {
    const range = parseCidr(subnet.cidr);
    return wanted.ok && range.ok && cidrsOverlap(wanted.cidr, range.cidr);
  };
  const holder = await findWithin(context, context.consistencyWindowMs, async () => (await context.client.listAll<Subnet>('network', '/v2.0/subnets', 'subnets', { query: { network_id: networkId } })).find(overlaps), apply.signal);
  if (!holder) throw conflict;
  const owner = ownerOf(holder.tags, apply.environment, 'subnet');
  if (owner?.address === address && holder.cidr === cidr) return holder;
  const whose = owner ? `is ${owner.address} of this environment` : "is not this environment's";
  throw new ConflictError(`${address} (${cidr}) overlaps subnet ${holder.id} ("${holder.name}", ${holder.cidr}) in network ${networkId}, which ${whose}. Delete that subnet or choose another range.`, {
    provider: OPENSTACK_PROVIDER_ID,
    resource: address,
    cause: conflict,
  });
}

export function networkService(context: OpenStackContext): ResourceService<'network'> {
  const { client } = context;
  const observed = (network: Network, address: ResourceAddress, name: string, routerId: string | undefined): ObservedResource<'network'> => {
    const cidr = tagValue(network.tags, CIDR_TAG) ?? '';
    return { address, kind: 'network', name, id: network.id, properties: { cidr }, outputs: { networkId: network.id, routerId, cidr } };
  };
  return {
    kind: 'network',
    replaceOn: ['cidr'],
    async discover({ environment }) {
      const networks = await client.listAll<Network>('network', '/v2.0/networks', 'networks', { query: { tags: environmentTag(environment) } });
      const routers = await client.listAll<Router>('network', '/v2.0/routers', 'routers', { query: { tags: environmentTag(environment) } });
      return networks.flatMap((network) => {
        const owner = ownerOf(network.tags, environment, 'network');
        if (!owner) return [];
        const router = routers.find((entry) => ownerOf(entry.tags, environment, 'network')?.address === owner.address);
        return [observed(network, owner.address, owner.name, router?.id)];
      });
    },
    async create(resource, apply) {
      // Neutron allows duplicate names: only the ownership tags tell ours (see createOnce).
      const network = await createOnce(context, apply, resource.address, 'network', {
        find: async () => (await byOwnership<Network>(context, '/v2.0/networks', 'networks', apply.environment, resource.address))[0],
        create: async () => {
          const tags = [...neutronTags(apply.ownershipTags(resource.address)), `${CIDR_TAG}=${resource.properties.cidr}`];
          const body = { network: { name: `${apply.environment}-${resource.name}`, description: `Armada network ${resource.properties.cidr}`, admin_state_up: true, tags } };
          return (await client.request<{ network: Network }>('network', 'POST', '/v2.0/networks', { body })).network;
        },
      });
      // The router that gives the public subnets their route to the internet.
      const routerId = await ensureRouter(context, apply, resource.address, resource.name);
      return observed(network, resource.address, resource.name, routerId);
    },
    async delete(current, apply) {
      // Instances first: refuse before touching the router, as Neutron would refuse the network.
      const ports = await client.listAll<Port>('network', '/v2.0/ports', 'ports', { query: { network_id: current.id } });
      const used = ports.filter((port) => port.device_owner !== 'network:router_interface' && port.device_owner !== 'network:dhcp');
      if (used.length > 0) {
        throw new DependencyViolationError(`Network ${current.id} (${current.address}) still has ${used.length} port(s) in use; delete its instances first.`, {
          provider: OPENSTACK_PROVIDER_ID,
          resource: current.address,
        });
      }
      // Then the router: Neutron refuses (409 RouterInUse) while a subnet still has its interface.
      const routers = await byOwnership<Router>(context, '/v2.0/routers', 'routers', apply.environment, current.address);
      for (const router of routers) await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/routers/${router.id}`));
      await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/networks/${current.id}`));
    },
  };
}

export function subnetService(context: OpenStackContext): ResourceService<'subnet'> {
  const { client } = context;

  /** Ports that are router interfaces, by subnet id. */
  const routerInterfaces = async (query: Record<string, string> = {}): Promise<Map<string, Port>> => {
    const ports = await client.listAll<Port>('network', '/v2.0/ports', 'ports', { query: { device_owner: 'network:router_interface', ...query } });
    return new Map(ports.flatMap((port) => port.fixed_ips.map((ip) => [ip.subnet_id, port] as const)));
  };

  const setAccess = async (subnetId: string, access: 'public' | 'private', networkAddress: ResourceAddress, apply: ApplyContext) => {
    const existing = (await routerInterfaces({ fixed_ips: `subnet_id=${subnetId}` })).get(subnetId);
    if (access === 'public' && !existing) {
      const network = apply.resourceAt(networkAddress);
      const routerId = typeof network.outputs.routerId === 'string' ? network.outputs.routerId : await ensureRouter(context, apply, networkAddress, network.name);
      try {
        await whenVisible(context, `subnet ${subnetId} to be visible to its router`, () =>
          client.request('network', 'PUT', `/v2.0/routers/${routerId}/add_router_interface`, { body: { subnet_id: subnetId } }),
        apply.signal);
      } catch (error) {
        // An earlier attempt added it, and its reply was lost (the interface port may not be listed yet).
        if (!AlreadyExistsError.isInstance(error)) throw error;
      }
    }
    if (access === 'private' && existing) {
      await ignoreNotFound(() => client.request('network', 'PUT', `/v2.0/routers/${existing.device_id}/remove_router_interface`, { body: { subnet_id: subnetId } }));
    }
  };

  return {
    kind: 'subnet',
    // Access changes in place (a router interface added or removed); zones are dropped by adapt().
    replaceOn: ['network', 'cidr'],
    async discover({ environment, findById }) {
      const subnets = await client.listAll<Subnet>('network', '/v2.0/subnets', 'subnets', { query: { tags: environmentTag(environment) } });
      if (subnets.length === 0) return [];
      const interfaces = await routerInterfaces();
      return subnets.flatMap((subnet): ObservedResource<'subnet'>[] => {
        const owner = ownerOf(subnet.tags, environment, 'subnet');
        if (!owner) return [];
        const access = interfaces.has(subnet.id) ? 'public' : 'private';
        return [
          {
            ...owner,
            kind: 'subnet',
            id: subnet.id,
            properties: { network: findById(subnet.network_id)?.name ?? `(foreign ${subnet.network_id})`, cidr: subnet.cidr, access },
            outputs: { subnetId: subnet.id, networkId: subnet.network_id, cidr: subnet.cidr },
          },
        ];
      });
    },
    async create(resource, apply) {
      const { properties } = resource;
      const networkAddress = `network.${properties.network}` as ResourceAddress;
      const networkId = apply.idOf(networkAddress);
      const subnet = await createOnce(context, apply, resource.address, 'subnet', {
        find: async () => (await byOwnership<Subnet>(context, '/v2.0/subnets', 'subnets', apply.environment, resource.address))[0],
        create: async () => {
          const body = { subnet: { network_id: networkId, cidr: properties.cidr, ip_version: 4, name: `${apply.environment}-${resource.name}`, enable_dhcp: true, tags: neutronTags(apply.ownershipTags(resource.address)) } };
          try {
            return (await whenVisible(context, `network ${networkId} of ${resource.address} to be visible`, () => client.request<{ subnet: Subnet }>('network', 'POST', '/v2.0/subnets', { body }), apply.signal)).subnet;
          } catch (error) {
            // Neutron checks ranges against subnets it does not list yet: this may be our own.
            if (!ConflictError.isInstance(error) || !/overlaps with another subnet/i.test(error.message)) throw error;
            return adoptOverlapping(context, apply, resource.address, networkId, properties.cidr, error);
          }
        },
      });
      await setAccess(subnet.id, properties.access, networkAddress, apply);
      return { address: resource.address, kind: 'subnet', name: resource.name, id: subnet.id, properties: { network: properties.network, cidr: subnet.cidr, access: properties.access }, outputs: { subnetId: subnet.id, networkId, cidr: subnet.cidr } };
    },
    async update(resource, current, apply) {
      await setAccess(current.id, resource.properties.access, `network.${resource.properties.network}` as ResourceAddress, apply);
      return { ...current, properties: { ...current.properties, access: resource.properties.access } };
    },
    async delete(current) {
      const existing = (await routerInterfaces({ fixed_ips: `subnet_id=${current.id}` })).get(current.id);
      if (existing) await ignoreNotFound(() => client.request('network', 'PUT', `/v2.0/routers/${existing.device_id}/remove_router_interface`, { body: { subnet_id: current.id } }));
      await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/subnets/${current.id}`));
    },
  };
}
