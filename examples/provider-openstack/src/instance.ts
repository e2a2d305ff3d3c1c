/**
 * instance -> a Nova server booted on a Neutron port. The port is made first, in the instance's
 * subnet with its security groups (so firewalls attach to the port, and change in place); an
 * instance in a public subnet then gets a floating IP on that port.
 *
 * Nova and Neutron have no idempotency token: each of the three (server, port, floating IP) is
 * made once per run with createOnce (context.ts). The server is looked for first (its metadata
 * names its address), since one an earlier attempt made needs no new port; then a port an earlier
 * attempt made or left unbound (its tags name the address). Ports passed to Nova outlive their
 * server, so the delete removes them and their floating IPs once the server is gone.
 */
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  digestOf,
  ownershipTags,
  type DesiredResource,
  type ApplyContext,
  type InstanceProperties,
  type ObservedResource,
  type ResourceAddress,
  type ResourceOutputs,
  type ResourceService,
} from '@armada/core';
import {
  NOVA_MICROVERSION,
  createOnce,
  environmentTag,
  findEarlierAttempt,
  findWithin,
  ignoreNotFound,
  keyPairCloudName,
  neutronTags,
  ownerOf,
  parseKeyPairCloudName,
  rememberingOutcome,
  serverEnvironmentTag,
  waitFor,
  waitGone,
  whenVisible,
  type OpenStackContext,
} from './context.js';
import { OPENSTACK_PROVIDER_ID } from './errors.js';

export const ROLE_METADATA = 'armada:role';
export const USER_DATA_METADATA = 'armada:userdata';

interface Address {
  addr: string;
  'OS-EXT-IPS:type'?: string;
}
interface Server {
  id: string;
  name: string;
  status: string;
  'OS-EXT-STS:task_state'?: string | null;
  flavor: { original_name?: string; id?: string };
  image: { id?: string } | '';
  key_name: string | null;
  metadata: Record<string, string>;
  tags?: string[];
  addresses: Record<string, Address[]>;
  fault?: { message?: string };
}
interface Port {
  id: string;
  network_id: string;
  device_id: string;
  device_owner: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
  security_groups: string[];
}
interface FloatingIp {
  id: string;
  port_id: string | null;
  floating_ip_address: string;
  tags: string[];
}

/** The server's key/value metadata: user tags, role, user data digest, and the ownership. */
export function serverMetadata(properties: InstanceProperties, ownership: Record<string, string>): Record<string, string> {
  return {
    ...properties.tags,
    ...(properties.role !== undefined ? { [ROLE_METADATA]: properties.role } : {}),
    ...(properties.userData !== undefined ? { [USER_DATA_METADATA]: digestOf(properties.userData) } : {}),
    ...ownership,
  };
}

const isArmadaKey = (key: string) => key.startsWith('armada:');
const deleting = (server: Server) => server.status === 'DELETED' || server['OS-EXT-STS:task_state'] === 'deleting';

function addressesOf(server: Server): { privateIp?: string; publicIp?: string } {
  const all = Object.values(server.addresses ?? {}).flat();
  const privateIp = all.find((entry) => entry['OS-EXT-IPS:type'] !== 'floating')?.addr;
  const publicIp = all.find((entry) => entry['OS-EXT-IPS:type'] === 'floating')?.addr;
  return { ...(privateIp ? { privateIp } : {}), ...(publicIp ? { publicIp } : {}) };
}

export function instanceService(context: OpenStackContext): ResourceService<'instance'> {
  const { client } = context;
  const compute = { microversion: NOVA_MICROVERSION };

  const listServers = (environment: string) =>
    client.listAll<Server>('compute', '/servers/detail', 'servers', { ...compute, query: { tags: serverEnvironmentTag(environment) } }).then((servers) =>
      servers.filter((server) => server.metadata?.[OWNERSHIP_TAG_ENVIRONMENT] === environment && !deleting(server)),
    );
  const getServer = async (id: string) => (await client.request<{ server: Server }>('compute', 'GET', `/servers/${id}`, compute)).server;
  const portsOwnedBy = (environment: string, address: ResourceAddress) =>
    client.listAll<Port>('network', '/v2.0/ports', 'ports', { query: { tags: neutronTags(ownershipTags(environment, address)).join(',') } });
  const portOfServer = (serverId: string, signal?: AbortSignal) =>
    waitFor<Port>(
      context,
      `the port of server ${serverId} to be visible`,
      async () => {
        const [port] = await client.listAll<Port>('network', '/v2.0/ports', 'ports', { query: { device_id: serverId } });
        return port ? { done: true, value: port } : { done: false, state: 'no port yet' };
      },
      signal,
    );

  const ownedBy = (server: Server, environment: string, address: ResourceAddress) =>
    server.metadata?.[OWNERSHIP_TAG_ENVIRONMENT] === environment && server.metadata[OWNERSHIP_TAG_RESOURCE] === address;
  const ourServer = async (environment: string, address: ResourceAddress) => (await listServers(environment)).find((server) => ownedBy(server, environment, address));

  /** A port in the instance's subnet with its groups: one an earlier attempt made or left unbound, or a new one. */
  async function ensurePort(resource: DesiredResource<'instance'>, apply: ApplyContext): Promise<Port> {
    const { properties } = resource;
    const subnetAddress = `subnet.${properties.subnet}` as ResourceAddress;
    const subnetId = apply.idOf(subnetAddress);
    const groupIds = properties.firewalls.map((name) => apply.idOf(`firewall.${name}`));
    const port = await createOnce(context, apply, resource.address, 'port', {
      find: async () => (await portsOwnedBy(apply.environment, resource.address)).find((entry) => !entry.device_id && entry.fixed_ips[0]?.subnet_id === subnetId),
      create: async () => {
        const networkId = String(apply.resourceAt(subnetAddress).outputs.networkId ?? '');
        const body = { port: { network_id: networkId, name: `${apply.environment}-${resource.name}`, fixed_ips: [{ subnet_id: subnetId }], security_groups: groupIds, tags: neutronTags(apply.ownershipTags(resource.address)) } };
        return (await whenVisible(context, `the subnet and security groups of ${resource.address} to be visible`, () => client.request<{ port: Port }>('network', 'POST', '/v2.0/ports', { body }), apply.signal)).port;
      },
    });
    // A port left by an interrupted run may carry the groups of an older spec.
    if ([...port.security_groups].sort().join() !== [...groupIds].sort().join()) {
      await client.request('network', 'PUT', `/v2.0/ports/${port.id}`, { body: { port: { security_groups: groupIds } } });
    }
    return port;
  }

  /** POST /servers on the port. Nova's "port in use" means a server holds it already: see adoptServerOnPort. */
  async function bootServer(resource: DesiredResource<'instance'>, apply: ApplyContext, port: Port): Promise<{ id: string }> {
    const { properties } = resource;
    const keyName = properties.keyPair === undefined ? undefined : String(apply.resourceAt(`keyPair.${properties.keyPair}`).outputs.cloudName ?? keyPairCloudName(apply.environment, properties.keyPair));
    const body = {
      server: {
        name: resource.name,
        flavorRef: await context.flavorId(properties.size),
        imageRef: properties.image,
        ...(keyName !== undefined ? { key_name: keyName } : {}),
        networks: [{ port: port.id }],
        metadata: serverMetadata(properties, apply.ownershipTags(resource.address)),
        tags: [serverEnvironmentTag(apply.environment)],
        ...(properties.userData !== undefined ? { user_data: Buffer.from(properties.userData).toString('base64') } : {}),
      },
    };
    try {
      return (await whenVisible(context, `port ${port.id} of ${resource.address} to be visible`, () => client.request<{ server: { id: string } }>('compute', 'POST', '/servers', { ...compute, body }), apply.signal)).server;
    } catch (error) {
      if (!ConflictError.isInstance(error) || !/still in use/i.test(error.message)) throw error;
      return adoptServerOnPort(port, resource.address, apply, error);
    }
  }

  /**
   * After "port in use": the server bound to our port. Ours (its metadata names this address) is
   * what an earlier attempt made, and is adopted; anything else is refused, named. It may not be
   * visible yet, which the wait allows for.
   */
  async function adoptServerOnPort(port: Port, address: ResourceAddress, apply: ApplyContext, conflict: ConflictError): Promise<{ id: string }> {
    const { port: bound } = await client.request<{ port: Port }>('network', 'GET', `/v2.0/ports/${port.id}`);
    if (!bound.device_owner.startsWith('compute:')) throw conflict;
    const server = await whenVisible(context, `server ${bound.device_id} on port ${port.id} to be visible`, () => getServer(bound.device_id), apply.signal);
    if (ownedBy(server, apply.environment, address)) return server;
    throw new ConflictError(`Port ${port.id} of ${address} is bound to server ${server.id} ("${server.name}"), which is not ${address}. Delete that server, or the port.`, {
      provider: OPENSTACK_PROVIDER_ID,
      resource: address,
      cause: conflict,
    });
  }

  /** A floating IP on the port, from the external network (public subnets only). */
  async function ensureFloatingIp(port: Port, address: ResourceAddress, apply: ApplyContext): Promise<string> {
    const onPort = async () => (await client.listAll<FloatingIp>('network', '/v2.0/floatingips', 'floatingips', { query: { port_id: port.id } }))[0];
    const ours = (found: FloatingIp | undefined) => found !== undefined && ownerOf(found.tags, apply.environment, 'instance')?.address === address;
    const ip = await createOnce(context, apply, address, 'floating IP', {
      find: async () => {
        const found = await onPort();
        return ours(found) ? found : undefined;
      },
      create: async () => {
        const body = { floatingip: { floating_network_id: await context.externalNetworkId(), port_id: port.id, description: `Armada ${address}`, tags: neutronTags(apply.ownershipTags(address)) } };
        try {
          return (await whenVisible(context, `port ${port.id} of ${address} to be visible`, () => postFloatingIp(body, address), apply.signal)).floatingip;
        } catch (error) {
          if (!AlreadyExistsError.isInstance(error)) throw error;
          // The port has one already, which Neutron sees before its lists do: ours (an earlier
          // attempt's), adopted; or someone else's, refused.
          const holder = await findWithin(context, context.consistencyWindowMs, onPort, apply.signal);
          if (holder && ours(holder)) return holder;
          throw new ConflictError(`Port ${port.id} of ${address} already has floating IP ${holder ? `${holder.floating_ip_address} (${holder.id}), which is not ${address}'s` : '(not listed yet)'}.`, {
            provider: OPENSTACK_PROVIDER_ID,
            resource: address,
            cause: error,
          });
        }
      },
    });
    return ip.floating_ip_address;
  }

  async function postFloatingIp(body: unknown, address: ResourceAddress): Promise<{ floatingip: FloatingIp }> {
    try {
      return await client.request<{ floatingip: FloatingIp }>('network', 'POST', '/v2.0/floatingips', { body });
    } catch (error) {
      // Not "not visible yet": the subnet has no router to the external network.
      if (NotFoundError.isInstance(error) && /not reachable/i.test(error.message)) {
        throw new ConflictError(`${address} is in a public subnet, but the subnet has no router interface to the external network: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  const observed = (server: Server, address: ResourceAddress, name: string, properties: InstanceProperties, extra: ResourceOutputs = {}): ObservedResource<'instance'> => ({
    address,
    kind: 'instance',
    name,
    id: server.id,
    properties,
    outputs: { serverId: server.id, status: server.status, ...addressesOf(server), ...extra },
  });

  return {
    kind: 'instance',
    // Security groups (on the port) and metadata change in place.
    replaceOn: ['subnet', 'keyPair', 'size', 'image', 'userData'],
    async discover({ environment, findById }) {
      const servers = await listServers(environment);
      if (servers.length === 0) return [];
      const ports = await client.listAll<Port>('network', '/v2.0/ports', 'ports', { query: { tags: environmentTag(environment) } });
      const nameOf = (id: string) => findById(id)?.name ?? `(foreign ${id})`;
      return servers.flatMap((server): ObservedResource<'instance'>[] => {
        const address = server.metadata[OWNERSHIP_TAG_RESOURCE] as ResourceAddress | undefined;
        if (!address?.startsWith('instance.')) return [];
        const port = ports.find((entry) => entry.device_id === server.id);
        const key = server.key_name ? parseKeyPairCloudName(server.key_name) : undefined;
        const metadata = server.metadata;
        const properties: InstanceProperties = {
          subnet: port?.fixed_ips[0] ? nameOf(port.fixed_ips[0].subnet_id) : '(no port)',
          firewalls: (port?.security_groups ?? []).map(nameOf),
          ...(server.key_name ? { keyPair: key?.environment === environment ? key.name : `(foreign ${server.key_name})` } : {}),
          size: server.flavor.original_name ?? server.flavor.id ?? '',
          image: server.image === '' ? '' : (server.image.id ?? ''),
          tags: Object.fromEntries(Object.entries(metadata).filter(([entry]) => !isArmadaKey(entry))),
          ...(metadata[USER_DATA_METADATA] !== undefined ? { userData: metadata[USER_DATA_METADATA] } : {}),
          ...(metadata[ROLE_METADATA] !== undefined ? { role: metadata[ROLE_METADATA] } : {}),
        };
        return [observed(server, address, address.slice('instance.'.length), properties, port ? { portId: port.id } : {})];
      });
    },
    async create(resource, apply) {
      const { properties } = resource;
      // The server first: one an earlier attempt made needs no new port. Not createOnce, because
      // the port comes in between, and a port's lost reply is not the server's (see ensurePort).
      let server: { id: string } | undefined = await findEarlierAttempt(context, apply, resource.address, 'server', () => ourServer(apply.environment, resource.address));
      if (!server) {
        const port = await ensurePort(resource, apply);
        server = await rememberingOutcome(context, apply, resource.address, 'server', () => bootServer(resource, apply, port));
      }
      const id = server.id;
      const active = await waitFor<Server>(
        context,
        `server ${id} (${resource.address}) to be ACTIVE`,
        async () => {
          const server = await getServer(id);
          if (server.status === 'ERROR') {
            throw new ConflictError(`Server ${id} (${resource.address}) went to ERROR: ${server.fault?.message ?? 'no fault given'}. Delete it, or re-plan to replace it.`, { resource: resource.address });
          }
          return server.status === 'ACTIVE' ? { done: true, value: server } : { done: false, state: server.status };
        },
        apply.signal,
      );
      const port = await portOfServer(id, apply.signal);
      const subnet = apply.resourceAt(`subnet.${properties.subnet}`) as ObservedResource<'subnet'>;
      const publicIp = subnet.properties.access === 'public' ? await ensureFloatingIp(port, resource.address, apply) : undefined;
      return observed(active, resource.address, resource.name, properties, { portId: port.id, privateIp: port.fixed_ips[0]?.ip_address, ...(publicIp ? { publicIp } : {}) });
    },
    async update(resource, current, apply) {
      const { properties } = resource;
      const port = await portOfServer(current.id, apply.signal);
      const groupIds = properties.firewalls.map((name) => apply.idOf(`firewall.${name}`));
      if ([...port.security_groups].sort().join() !== [...groupIds].sort().join()) {
        await client.request('network', 'PUT', `/v2.0/ports/${port.id}`, { body: { port: { security_groups: groupIds } } });
      }
      // PUT replaces the whole metadata, so the ownership goes with it.
      await client.request('compute', 'PUT', `/servers/${current.id}/metadata`, { ...compute, body: { metadata: serverMetadata(properties, apply.ownershipTags(resource.address)) } });
      return { ...current, properties };
    },
    async delete(current, apply) {
      await ignoreNotFound(() => client.request('compute', 'DELETE', `/servers/${current.id}`, compute));
      await waitGone(context, `server ${current.id} (${current.address}) to be deleted`, () => getServer(current.id), apply.signal);
      // Its ports (and any a failed create left), and their floating IPs. A port bound to another
      // server claiming the same address is that server's, and stays.
      const ports = (await portsOwnedBy(apply.environment, current.address)).filter((port) => !port.device_id || port.device_id === current.id);
      const portIds = new Set(ports.map((port) => port.id));
      const floating = await client.listAll<FloatingIp>('network', '/v2.0/floatingips', 'floatingips', {
        query: { tags: neutronTags(ownershipTags(apply.environment, current.address)).join(',') },
      });
      for (const ip of floating.filter((entry) => entry.port_id === null || portIds.has(entry.port_id))) {
        await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/floatingips/${ip.id}`));
      }
      for (const port of ports) await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/ports/${port.id}`));
    },
  };
}
