/**
 * A small wire-level emulator of the OpenStack APIs the plugin calls, on 127.0.0.1, written the way
 * the testkit's emulators are: JSON over HTTP, the vendors' shapes and error bodies, and the
 * testkit's FaultInjector for throttling, latency, eventual consistency and lost responses.
 *
 * - Keystone v3: `POST /v3/auth/tokens` (password method, project scope) answers 201 with the token
 *   in `X-Subject-Token` and a service catalog; every other call needs `X-Auth-Token`.
 * - Neutron v2.0: networks (one external network, `Ext-Net`), subnets, ports, routers (interfaces,
 *   external gateway), floating IPs, security groups and rules; string tags set on create and
 *   filtered with `?tags=a,b`; `NeutronError` bodies; 409 for what is in use.
 * - Nova v2.1: flavors, servers (BUILD -> ACTIVE, metadata, tags, addresses), keypairs;
 *   `itemNotFound` / `conflictingRequest` / `badRequest` / `overLimit` bodies.
 * - Glance v2: `GET /v2/images?name=`.
 * Lists page with `limit` and `marker` and a `<key>_links` next link.
 *
 * One project, and one set of resources shared by every region of the catalog. Key pairs are
 * exempt from eventual consistency (Nova reads them from its database); everything else is not.
 */
import type { OpenStackProviderOptions } from '../../src/index.js';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cidrsOverlap, parseCidr } from '@armada/core';
import { FaultInjector, LostResponseError, bootConsole, standInHostKey, type PortableOperation } from '@armada/testkit';

export interface OpenStackEmulatorOptions {
  /** Accepted users. Default: one user `demo` / `secret` in project `demo`. */
  users?: Array<{ username: string; password: string; project: string }>;
  /** Regions in the catalog. Default: HP Cloud's `region-a.geo-1` and `region-b.geo-1`. */
  regions?: string[];
  /** BUILD -> ACTIVE (default 200 ms). */
  bootMs?: number;
  /** A deleted server answers (task_state `deleting`) for this long before it is gone (default 50 ms). */
  deleteMs?: number;
  /** Token lifetime (default one hour). */
  tokenTtlMs?: number;
  /** `Retry-After` on a 429, in seconds (default 1). */
  retryAfterSeconds?: number;
  seed?: number;
  /** The SSH host public keys every server prints on its console once ACTIVE (os-getConsoleOutput). Default: one of each server's own. */
  hostKeys?: string[];
}

export interface EmulatedServer {
  id: string;
  name: string;
  status: string;
  metadata: Record<string, string>;
  tags: string[];
}

export interface OpenStackEmulator {
  /** The Keystone URL: pass `${endpoint}/v3` as `authUrl`. */
  endpoint: string;
  authUrl: string;
  faults: FaultInjector;
  /** Servers that still exist (including ones being deleted). */
  servers(): EmulatedServer[];
  inventory(): Record<'networks' | 'subnets' | 'ports' | 'routers' | 'floatingIps' | 'securityGroups' | 'servers' | 'keypairs', number>;
  /** Invalidates every issued token: the next call with one gets a 401. */
  revokeTokens(): void;
  calls(route?: string): number;
  close(): Promise<void>;
}

type ErrorStyle = 'keystone' | 'neutron' | 'nova';

class ApiError extends Error {
  constructor(
    readonly status: number,
    /** Neutron's `type` (NetworkInUse) or Nova's body key (itemNotFound). */
    readonly type: string,
    message: string,
    readonly style?: ErrorStyle,
  ) {
    super(message);
  }
}

const FLAVORS = [
  { name: 'standard.xsmall', vcpus: 1, ram: 1024, disk: 30 },
  { name: 'standard.small', vcpus: 1, ram: 2048, disk: 60 },
  { name: 'standard.medium', vcpus: 2, ram: 4096, disk: 120 },
  { name: 'standard.large', vcpus: 4, ram: 8192, disk: 240 },
  { name: 'standard.xlarge', vcpus: 4, ram: 15360, disk: 480 },
  { name: 'standard.2xlarge', vcpus: 8, ram: 30720, disk: 960 },
].map((flavor, index) => ({ id: String(100 + index), ...flavor }));

const IMAGES = ['Debian 11 (bullseye)', 'Debian 12 (bookworm)', 'Ubuntu 22.04 LTS (Jammy Jellyfish)', 'Ubuntu 24.04 LTS (Noble Numbat)'].map((name) => ({
  id: randomUUID(),
  name,
  status: 'active',
  visibility: 'public',
  disk_format: 'qcow2',
  container_format: 'bare',
}));

/** Nova's patterns: metadata keys, keypair names; server tags are at most 60 characters, without "," or "/". */
const METADATA_KEY = /^[a-zA-Z0-9-_:. /]{1,255}$/;
const KEYPAIR_NAME = /^[a-zA-Z0-9 @._-]{1,255}$/;

interface Visible {
  createdAt: number;
}
interface Network extends Visible {
  id: string;
  name: string;
  description: string;
  tags: string[];
  external: boolean;
}
interface Subnet extends Visible {
  id: string;
  network_id: string;
  name: string;
  cidr: string;
  gateway_ip: string;
  tags: string[];
  nextHost: number;
}
interface Port extends Visible {
  id: string;
  name: string;
  network_id: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
  security_groups: string[];
  device_id: string;
  device_owner: string;
  tags: string[];
}
interface Router extends Visible {
  id: string;
  name: string;
  external_gateway_info: { network_id: string } | null;
  tags: string[];
}
interface FloatingIp extends Visible {
  id: string;
  floating_network_id: string;
  floating_ip_address: string;
  port_id: string | null;
  fixed_ip_address: string | null;
  router_id: string | null;
  description: string;
  tags: string[];
}
interface Rule {
  id: string;
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  description: string;
}
interface SecurityGroup extends Visible {
  id: string;
  name: string;
  description: string;
  tags: string[];
}
interface Server extends Visible {
  id: string;
  name: string;
  flavor: (typeof FLAVORS)[number];
  imageId: string;
  key_name: string | null;
  metadata: Record<string, string>;
  tags: string[];
  portIds: string[];
  userData: string | undefined;
  deletedAt: number | undefined;
}
interface Keypair {
  name: string;
  public_key: string;
  fingerprint: string;
  created_at: string;
}

/** Which portable operation a call is, so the conformance suite can aim a fault at it. */
function operationOf(method: string, service: string, resource: string, sub: string | undefined): PortableOperation {
  if (method === 'GET') return 'describe';
  const [create, update, remove]: [PortableOperation, PortableOperation, PortableOperation] =
    service === 'nova' && resource === 'servers'
      ? sub === 'metadata'
        ? ['updateTags', 'updateTags', 'updateTags']
        : ['createInstance', 'updateInstance', 'deleteInstance']
      : service === 'nova' && resource === 'os-keypairs'
        ? ['createKeyPair', 'createKeyPair', 'deleteKeyPair']
        : resource === 'networks' || resource === 'routers'
          ? ['createNetwork', 'createNetwork', 'deleteNetwork']
          : resource === 'subnets'
            ? ['createSubnet', 'createSubnet', 'deleteSubnet']
            : resource === 'security-groups'
              ? ['createFirewall', 'updateFirewall', 'deleteFirewall']
              : resource === 'security-group-rules'
                ? ['updateFirewall', 'updateFirewall', 'updateFirewall']
                : ['updateInstance', 'updateInstance', 'updateInstance']; // ports and floating IPs
  return method === 'POST' ? create : method === 'DELETE' ? remove : update;
}

function ipOf(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 255n).toString()).join('.');
}

export async function startOpenStackEmulator(options: OpenStackEmulatorOptions = {}): Promise<OpenStackEmulator> {
  const users = options.users ?? [{ username: 'demo', password: 'secret', project: 'demo' }];
  const regions = options.regions ?? ['region-a.geo-1', 'region-b.geo-1'];
  const bootMs = options.bootMs ?? 200;
  const deleteMs = options.deleteMs ?? 50;
  const tokenTtlMs = options.tokenTtlMs ?? 3_600_000;
  const retryAfter = options.retryAfterSeconds ?? 1;
  // Throttled calls alternate between the two answers a real cloud gives: 429 overLimit and 503.
  let throttleCount = 0;
  const faults = new FaultInjector({
    seed: options.seed ?? 42,
    throttleError: (label) =>
      ++throttleCount % 2 === 1
        ? new ApiError(429, 'overLimit', `Rate limit exceeded for ${label}; retry after ${retryAfter} s.`)
        : new ApiError(503, 'ServiceUnavailable', `The server is currently unavailable (${label}); please try again later.`),
  });

  const tokens = new Map<string, { expiresAt: number; project: string; userId: string }>();
  const networks = new Map<string, Network>();
  const subnets = new Map<string, Subnet>();
  const ports = new Map<string, Port>();
  const routers = new Map<string, Router>();
  const floatingIps = new Map<string, FloatingIp>();
  const groups = new Map<string, SecurityGroup>();
  const rules = new Map<string, Rule>();
  const servers = new Map<string, Server>();
  const keypairs = new Map<string, Keypair>();
  const calls = new Map<string, number>();
  let nextFloating = 10;
  let endpoint = '';

  const external: Network = { id: randomUUID(), name: 'Ext-Net', description: 'external network', tags: [], external: true, createdAt: -Infinity };
  networks.set(external.id, external);

  const visible = <T extends Visible>(item: T | undefined): T | undefined => (item && faults.isVisible(item.createdAt) ? item : undefined);
  const neutronNotFound = (type: string, id: string) => new ApiError(404, type, `${type.replace('NotFound', '')} ${id} could not be found.`, 'neutron');
  const neutronFound = <T extends Visible>(map: Map<string, T>, id: unknown, type: string): T => {
    const item = visible(map.get(String(id)));
    if (!item) throw neutronNotFound(type, String(id));
    return item;
  };
  const badRequest = (message: string, style: ErrorStyle) => new ApiError(400, style === 'nova' ? 'badRequest' : 'HTTPBadRequest', message, style);
  const inUse = (type: string, message: string) => new ApiError(409, type, message, 'neutron');

  function checkTags(value: unknown): string[] {
    const list = value === undefined ? [] : value;
    if (!Array.isArray(list) || list.some((tag) => typeof tag !== 'string' || tag.length === 0 || tag.length > 255 || tag.includes(','))) {
      throw badRequest(`Invalid input for tags: ${JSON.stringify(value)}; each tag is a string of 1 to 255 characters without ","`, 'neutron');
    }
    return [...new Set(list as string[])];
  }

  /** A Neutron or Nova list page: filters, `?tags=`, `limit` and `marker`. */
  function page<T>(url: URL, key: string, items: T[], idOf: (item: T) => string, filterable: (item: T) => Record<string, unknown>): Record<string, unknown> {
    const reserved = new Set(['limit', 'marker', 'tags', 'fields', 'sort_key', 'sort_dir']);
    const wantedTags = url.searchParams.get('tags')?.split(',').filter(Boolean) ?? [];
    const filtered = items.filter((item) => {
      const fields = filterable(item);
      if (wantedTags.some((tag) => !(fields.tags as string[] | undefined)?.includes(tag))) return false;
      for (const [name, value] of url.searchParams) {
        if (reserved.has(name)) continue;
        if (name === 'fixed_ips') {
          const [field, wanted] = value.split('=');
          const ips = (fields.fixed_ips as Array<Record<string, string>> | undefined) ?? [];
          if (!ips.some((ip) => ip[field ?? ''] === wanted)) return false;
          continue;
        }
        if (String(fields[name]) !== value) return false;
      }
      return true;
    });
    const marker = url.searchParams.get('marker');
    const start = marker === null ? 0 : filtered.findIndex((item) => idOf(item) === marker) + 1;
    if (marker !== null && start === 0) throw new ApiError(400, 'badRequest', `marker [${marker}] not found`, key === 'servers' || key === 'keypairs' ? 'nova' : 'neutron');
    const limit = Math.max(1, Math.min(Number(url.searchParams.get('limit') ?? 1000) || 1000, 1000));
    const slice = filtered.slice(start, start + limit);
    const body: Record<string, unknown> = { [key]: slice.map((item) => filterable(item)) };
    const last = slice.at(-1);
    if (start + limit < filtered.length && last !== undefined) {
      const next = new URL(url);
      next.searchParams.set('marker', idOf(last));
      next.searchParams.set('limit', String(limit));
      body[`${key}_links`] = [{ rel: 'next', href: next.toString() }];
    }
    return body;
  }

  // ---------------------------------------------------------------- Neutron JSON views

  const networkJson = (network: Network) => ({
    id: network.id,
    name: network.name,
    description: network.description,
    status: 'ACTIVE',
    admin_state_up: true,
    shared: false,
    'router:external': network.external,
    subnets: [...subnets.values()].filter((subnet) => subnet.network_id === network.id).map((subnet) => subnet.id),
    tags: [...network.tags],
    project_id: 'demo',
  });
  const subnetJson = (subnet: Subnet) => {
    const parsed = parseCidr(subnet.cidr);
    const base = parsed.ok ? parsed.cidr.network : 0n;
    const size = parsed.ok ? 1n << BigInt(32 - parsed.cidr.prefixLength) : 0n;
    return {
      id: subnet.id,
      network_id: subnet.network_id,
      name: subnet.name,
      cidr: subnet.cidr,
      ip_version: 4,
      gateway_ip: subnet.gateway_ip,
      enable_dhcp: true,
      allocation_pools: [{ start: ipOf(base + 2n), end: ipOf(base + size - 2n) }],
      tags: [...subnet.tags],
      project_id: 'demo',
    };
  };
  const portJson = (port: Port) => ({ ...port, createdAt: undefined, status: port.device_id ? 'ACTIVE' : 'DOWN', admin_state_up: true, project_id: 'demo' });
  const routerJson = (router: Router) => ({ id: router.id, name: router.name, status: 'ACTIVE', admin_state_up: true, external_gateway_info: router.external_gateway_info, tags: [...router.tags], project_id: 'demo' });
  const floatingJson = (ip: FloatingIp) => ({ ...ip, createdAt: undefined, status: ip.port_id ? 'ACTIVE' : 'DOWN', project_id: 'demo' });
  const groupJson = (group: SecurityGroup) => ({
    id: group.id,
    name: group.name,
    description: group.description,
    tags: [...group.tags],
    project_id: 'demo',
    security_group_rules: [...rules.values()].filter((rule) => rule.security_group_id === group.id),
  });

  function allocateIp(subnet: Subnet): string {
    const parsed = parseCidr(subnet.cidr);
    if (!parsed.ok) throw badRequest(`subnet ${subnet.id} has no valid range`, 'neutron');
    const size = 1n << BigInt(32 - parsed.cidr.prefixLength);
    const address = parsed.cidr.network + BigInt(subnet.nextHost++);
    if (address >= parsed.cidr.network + size - 1n) throw new ApiError(409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${subnet.network_id}.`, 'neutron');
    return ipOf(address);
  }

  /** The router whose interface serves a subnet, if any. */
  const routerOfSubnet = (subnetId: string): Router | undefined => {
    const port = [...ports.values()].find((entry) => entry.device_owner === 'network:router_interface' && entry.fixed_ips.some((ip) => ip.subnet_id === subnetId));
    return port ? routers.get(port.device_id) : undefined;
  };

  function neutron(method: string, url: URL, body: Record<string, unknown>): { status: number; json?: unknown } {
    const parts = url.pathname.replace(/^\/v2\.0\//, '').split('/').filter(Boolean).map(decodeURIComponent);
    const [resource, id, action] = parts;
    const input = (key: string) => (body[key] ?? {}) as Record<string, unknown>;
    switch (`${method} ${resource}${id === undefined ? '' : ' :id'}${action === undefined ? '' : ` ${action}`}`) {
      case 'GET networks':
        return { status: 200, json: page(url, 'networks', [...networks.values()].filter((item) => visible(item)), (item) => item.id, networkJson) };
      case 'GET networks :id':
        return { status: 200, json: { network: networkJson(neutronFound(networks, id, 'NetworkNotFound')) } };
      case 'POST networks': {
        const request = input('network');
        const network: Network = { id: randomUUID(), name: String(request.name ?? ''), description: String(request.description ?? ''), tags: checkTags(request.tags), external: false, createdAt: performance.now() };
        networks.set(network.id, network);
        return { status: 201, json: { network: networkJson(network) } };
      }
      case 'DELETE networks :id': {
        const network = neutronFound(networks, id, 'NetworkNotFound');
        if ([...ports.values()].some((port) => port.network_id === network.id)) {
          throw inUse('NetworkInUse', `Unable to complete operation on network ${network.id}. There are one or more ports still in use on the network.`);
        }
        // Neutron deletes the network's (unused) subnets with it.
        for (const subnet of [...subnets.values()]) if (subnet.network_id === network.id) subnets.delete(subnet.id);
        networks.delete(network.id);
        return { status: 204 };
      }

      case 'GET subnets':
        return { status: 200, json: page(url, 'subnets', [...subnets.values()].filter((item) => visible(item)), (item) => item.id, subnetJson) };
      case 'GET subnets :id':
        return { status: 200, json: { subnet: subnetJson(neutronFound(subnets, id, 'SubnetNotFound')) } };
      case 'POST subnets': {
        const request = input('subnet');
        const network = neutronFound(networks, request.network_id, 'NetworkNotFound');
        const parsed = parseCidr(String(request.cidr ?? ''));
        if (!parsed.ok || parsed.cidr.family !== 4 || request.ip_version !== 4) throw badRequest(`Invalid input for cidr: '${String(request.cidr)}' is not a valid IPv4 subnet.`, 'neutron');
        for (const other of subnets.values()) {
          const otherRange = parseCidr(other.cidr);
          if (other.network_id === network.id && otherRange.ok && cidrsOverlap(otherRange.cidr, parsed.cidr)) {
            throw badRequest(`Invalid input for operation: Requested subnet with cidr: ${request.cidr} for network: ${network.id} overlaps with another subnet.`, 'neutron');
          }
        }
        const subnet: Subnet = {
          id: randomUUID(),
          network_id: network.id,
          name: String(request.name ?? ''),
          cidr: parsed.cidr.text,
          gateway_ip: ipOf(parsed.cidr.network + 1n),
          tags: checkTags(request.tags),
          nextHost: 2,
          createdAt: performance.now(),
        };
        subnets.set(subnet.id, subnet);
        return { status: 201, json: { subnet: subnetJson(subnet) } };
      }
      case 'DELETE subnets :id': {
        const subnet = neutronFound(subnets, id, 'SubnetNotFound');
        if ([...ports.values()].some((port) => port.fixed_ips.some((ip) => ip.subnet_id === subnet.id))) {
          throw inUse('SubnetInUse', `Unable to complete operation on subnet ${subnet.id}: One or more ports have an IP allocation from this subnet.`);
        }
        subnets.delete(subnet.id);
        return { status: 204 };
      }

      case 'GET ports':
        return { status: 200, json: page(url, 'ports', [...ports.values()].filter((item) => visible(item)), (item) => item.id, portJson) };
      case 'GET ports :id':
        return { status: 200, json: { port: portJson(neutronFound(ports, id, 'PortNotFound')) } };
      case 'POST ports': {
        const request = input('port');
        const network = neutronFound(networks, request.network_id, 'NetworkNotFound');
        const wanted = (request.fixed_ips ?? []) as Array<{ subnet_id?: string }>;
        const fixed = wanted.map((entry) => {
          const subnet = neutronFound(subnets, entry.subnet_id, 'SubnetNotFound');
          if (subnet.network_id !== network.id) throw badRequest(`Invalid input for operation: Failed to create port on network ${network.id}, because fixed_ips included invalid subnet ${subnet.id}.`, 'neutron');
          return { subnet_id: subnet.id, ip_address: allocateIp(subnet) };
        });
        const securityGroups = ((request.security_groups ?? []) as string[]).map((groupId) => neutronFound(groups, groupId, 'SecurityGroupNotFound').id);
        const port: Port = {
          id: randomUUID(),
          name: String(request.name ?? ''),
          network_id: network.id,
          fixed_ips: fixed,
          security_groups: securityGroups,
          device_id: '',
          device_owner: '',
          tags: checkTags(request.tags),
          createdAt: performance.now(),
        };
        ports.set(port.id, port);
        return { status: 201, json: { port: portJson(port) } };
      }
      case 'PUT ports :id': {
        const port = neutronFound(ports, id, 'PortNotFound');
        const request = input('port');
        if (request.security_groups !== undefined) port.security_groups = (request.security_groups as string[]).map((groupId) => neutronFound(groups, groupId, 'SecurityGroupNotFound').id);
        if (request.name !== undefined) port.name = String(request.name);
        return { status: 200, json: { port: portJson(port) } };
      }
      case 'DELETE ports :id': {
        const port = neutronFound(ports, id, 'PortNotFound');
        if (port.device_owner === 'network:router_interface') throw inUse('PortInUse', `Port ${port.id} cannot be deleted directly via the port API: has device owner network:router_interface.`);
        for (const ip of floatingIps.values()) if (ip.port_id === port.id) Object.assign(ip, { port_id: null, fixed_ip_address: null, router_id: null });
        for (const server of servers.values()) server.portIds = server.portIds.filter((portId) => portId !== port.id);
        ports.delete(port.id);
        return { status: 204 };
      }

      case 'GET routers':
        return { status: 200, json: page(url, 'routers', [...routers.values()].filter((item) => visible(item)), (item) => item.id, routerJson) };
      case 'GET routers :id':
        return { status: 200, json: { router: routerJson(neutronFound(routers, id, 'RouterNotFound')) } };
      case 'POST routers': {
        const request = input('router');
        const gateway = request.external_gateway_info as { network_id?: string } | undefined;
        if (gateway) {
          const network = neutronFound(networks, gateway.network_id, 'NetworkNotFound');
          if (!network.external) throw badRequest(`Bad router request: Network ${network.id} is not an external network.`, 'neutron');
        }
        const router: Router = { id: randomUUID(), name: String(request.name ?? ''), external_gateway_info: gateway ? { network_id: String(gateway.network_id) } : null, tags: checkTags(request.tags), createdAt: performance.now() };
        routers.set(router.id, router);
        return { status: 201, json: { router: routerJson(router) } };
      }
      case 'PUT routers :id add_router_interface': {
        const router = neutronFound(routers, id, 'RouterNotFound');
        const subnet = neutronFound(subnets, body.subnet_id, 'SubnetNotFound');
        if (routerOfSubnet(subnet.id)) throw badRequest(`Bad router request: Router already has a port on subnet ${subnet.id}.`, 'neutron');
        const port: Port = {
          id: randomUUID(),
          name: '',
          network_id: subnet.network_id,
          fixed_ips: [{ subnet_id: subnet.id, ip_address: subnet.gateway_ip }],
          security_groups: [],
          device_id: router.id,
          device_owner: 'network:router_interface',
          tags: [],
          createdAt: performance.now(),
        };
        ports.set(port.id, port);
        return { status: 200, json: { id: router.id, subnet_id: subnet.id, subnet_ids: [subnet.id], port_id: port.id, network_id: subnet.network_id, tenant_id: 'demo' } };
      }
      case 'PUT routers :id remove_router_interface': {
        const router = neutronFound(routers, id, 'RouterNotFound');
        const port = [...ports.values()].find((entry) => entry.device_id === router.id && entry.fixed_ips.some((ip) => ip.subnet_id === body.subnet_id));
        if (!port) throw new ApiError(404, 'RouterInterfaceNotFoundForSubnet', `Router ${router.id} has no interface on subnet ${String(body.subnet_id)}`, 'neutron');
        const subnetId = String(body.subnet_id);
        const served = [...floatingIps.values()].some((ip) => ip.router_id === router.id && ip.port_id && ports.get(ip.port_id)?.fixed_ips.some((fixed) => fixed.subnet_id === subnetId));
        if (served) throw inUse('RouterInterfaceInUseByFloatingIP', `Router interface for subnet ${subnetId} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`);
        ports.delete(port.id);
        return { status: 200, json: { id: router.id, subnet_id: subnetId, port_id: port.id } };
      }
      case 'DELETE routers :id': {
        const router = neutronFound(routers, id, 'RouterNotFound');
        if ([...ports.values()].some((port) => port.device_id === router.id)) throw inUse('RouterInUse', `Router ${router.id} still has ports`);
        routers.delete(router.id);
        return { status: 204 };
      }

      case 'GET floatingips':
        return { status: 200, json: page(url, 'floatingips', [...floatingIps.values()].filter((item) => visible(item)), (item) => item.id, floatingJson) };
      case 'POST floatingips': {
        const request = input('floatingip');
        const network = neutronFound(networks, request.floating_network_id, 'NetworkNotFound');
        if (!network.external) throw badRequest(`Bad floatingip request: Network ${network.id} is not a valid external network.`, 'neutron');
        let port: Port | undefined;
        let router: Router | undefined;
        if (request.port_id) {
          port = neutronFound(ports, request.port_id, 'PortNotFound');
          const subnetId = port.fixed_ips[0]?.subnet_id ?? '';
          router = routerOfSubnet(subnetId);
          if (router?.external_gateway_info?.network_id !== network.id) {
            throw new ApiError(404, 'ExternalGatewayForFloatingIPNotFound', `External network ${network.id} is not reachable from subnet ${subnetId}. Therefore, cannot associate Port ${port.id} with a Floating IP.`, 'neutron');
          }
          if ([...floatingIps.values()].some((ip) => ip.port_id === port?.id)) {
            throw inUse('FloatingIPPortAlreadyAssociated', `Cannot associate floating IP with port ${port.id} (${port.fixed_ips[0]?.ip_address}): it already has a floating IP.`);
          }
        }
        const ip: FloatingIp = {
          id: randomUUID(),
          floating_network_id: network.id,
          floating_ip_address: `203.0.113.${nextFloating++ % 250}`,
          port_id: port?.id ?? null,
          fixed_ip_address: port?.fixed_ips[0]?.ip_address ?? null,
          router_id: router?.id ?? null,
          description: String(request.description ?? ''),
          tags: checkTags(request.tags),
          createdAt: performance.now(),
        };
        floatingIps.set(ip.id, ip);
        return { status: 201, json: { floatingip: floatingJson(ip) } };
      }
      case 'DELETE floatingips :id': {
        const ip = neutronFound(floatingIps, id, 'FloatingIPNotFound');
        floatingIps.delete(ip.id);
        return { status: 204 };
      }

      case 'GET security-groups':
        return { status: 200, json: page(url, 'security_groups', [...groups.values()].filter((item) => visible(item)), (item) => item.id, groupJson) };
      case 'GET security-groups :id':
        return { status: 200, json: { security_group: groupJson(neutronFound(groups, id, 'SecurityGroupNotFound')) } };
      case 'POST security-groups': {
        const request = input('security_group');
        const group: SecurityGroup = { id: randomUUID(), name: String(request.name ?? ''), description: String(request.description ?? ''), tags: checkTags(request.tags), createdAt: performance.now() };
        if (group.name === 'default') throw new ApiError(409, 'SecurityGroupDefaultAlreadyExists', 'Default security group already exists.', 'neutron');
        groups.set(group.id, group);
        // Like Neutron: a new group allows all outbound traffic, IPv4 and IPv6.
        for (const ethertype of ['IPv4', 'IPv6'] as const) {
          const rule: Rule = { id: randomUUID(), security_group_id: group.id, direction: 'egress', ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, description: '' };
          rules.set(rule.id, rule);
        }
        return { status: 201, json: { security_group: groupJson(group) } };
      }
      case 'PUT security-groups :id': {
        const group = neutronFound(groups, id, 'SecurityGroupNotFound');
        const request = input('security_group');
        if (request.name !== undefined) group.name = String(request.name);
        if (request.description !== undefined) group.description = String(request.description);
        return { status: 200, json: { security_group: groupJson(group) } };
      }
      case 'DELETE security-groups :id': {
        const group = neutronFound(groups, id, 'SecurityGroupNotFound');
        if ([...ports.values()].some((port) => port.security_groups.includes(group.id))) throw inUse('SecurityGroupInUse', `Security Group ${group.id} in use.`);
        groups.delete(group.id);
        // Rules of this group, and rules of other groups naming it, go with it.
        for (const rule of [...rules.values()]) if (rule.security_group_id === group.id || rule.remote_group_id === group.id) rules.delete(rule.id);
        return { status: 204 };
      }

      case 'POST security-group-rules': {
        const request = input('security_group_rule');
        const group = neutronFound(groups, request.security_group_id, 'SecurityGroupNotFound');
        const protocol = request.protocol === undefined || request.protocol === null ? null : String(request.protocol);
        if (protocol !== null && !['tcp', 'udp', 'icmp'].includes(protocol)) throw badRequest(`Security group rule protocol ${protocol} not supported.`, 'neutron');
        if (request.remote_ip_prefix && request.remote_group_id) throw badRequest('Only remote_ip_prefix or remote_group_id may be provided.', 'neutron');
        const ethertype = request.ethertype === 'IPv6' ? 'IPv6' : 'IPv4';
        let prefix: string | null = null;
        if (request.remote_ip_prefix) {
          const parsed = parseCidr(String(request.remote_ip_prefix));
          if (!parsed.ok) throw badRequest(`'${String(request.remote_ip_prefix)}' is not a valid IP prefix`, 'neutron');
          if ((parsed.cidr.family === 6) !== (ethertype === 'IPv6')) throw badRequest(`Conflicting value ethertype ${ethertype} for CIDR ${parsed.cidr.text}`, 'neutron');
          prefix = parsed.cidr.text;
        }
        const remoteGroup = request.remote_group_id ? neutronFound(groups, request.remote_group_id, 'SecurityGroupNotFound').id : null;
        const portMin = request.port_range_min === undefined || request.port_range_min === null ? null : Number(request.port_range_min);
        const portMax = request.port_range_max === undefined || request.port_range_max === null ? null : Number(request.port_range_max);
        if ((portMin !== null || portMax !== null) && protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'icmp') throw badRequest('Port ranges need a protocol.', 'neutron');
        if (protocol !== 'icmp' && portMin !== null && portMax !== null && portMin > portMax) throw badRequest('For TCP/UDP protocols, port_range_min must be <= port_range_max', 'neutron');
        const rule: Rule = {
          id: randomUUID(),
          security_group_id: group.id,
          direction: request.direction === 'egress' ? 'egress' : 'ingress',
          ethertype,
          protocol,
          port_range_min: portMin,
          port_range_max: portMax,
          remote_ip_prefix: prefix,
          remote_group_id: remoteGroup,
          description: String(request.description ?? ''),
        };
        // Neutron treats 0.0.0.0/0 (::/0) and "no prefix" as the same peer.
        const anyPrefix = (value: string | null) => (value === '0.0.0.0/0' || value === '::/0' ? null : value);
        const same = (a: Rule) =>
          a.security_group_id === rule.security_group_id &&
          a.direction === rule.direction &&
          a.ethertype === rule.ethertype &&
          a.protocol === rule.protocol &&
          a.port_range_min === rule.port_range_min &&
          a.port_range_max === rule.port_range_max &&
          anyPrefix(a.remote_ip_prefix) === anyPrefix(rule.remote_ip_prefix) &&
          a.remote_group_id === rule.remote_group_id;
        const duplicate = [...rules.values()].find(same);
        if (duplicate) throw inUse('SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${duplicate.id}.`);
        rules.set(rule.id, rule);
        return { status: 201, json: { security_group_rule: rule } };
      }
      case 'DELETE security-group-rules :id': {
        if (!rules.delete(String(id))) throw neutronNotFound('SecurityGroupRuleNotFound', String(id));
        return { status: 204 };
      }
      default:
        throw new ApiError(404, 'HTTPNotFound', `The resource could not be found: ${method} ${url.pathname}`, 'neutron');
    }
  }

  // ---------------------------------------------------------------- Nova

  const novaNotFound = (message: string) => new ApiError(404, 'itemNotFound', message, 'nova');
  const serverStatus = (server: Server) => (performance.now() - server.createdAt >= bootMs ? 'ACTIVE' : 'BUILD');
  const serverVisible = (server: Server | undefined): Server | undefined => {
    if (!server) return undefined;
    if (server.deletedAt !== undefined && performance.now() - server.deletedAt >= deleteMs) {
      // Gone: the ports Nova was given are unbound, not deleted (the caller made them).
      for (const portId of server.portIds) {
        const port = ports.get(portId);
        if (port) Object.assign(port, { device_id: '', device_owner: '' });
      }
      servers.delete(server.id);
      return undefined;
    }
    return visible(server);
  };
  function serverJson(server: Server) {
    const addresses: Record<string, Array<Record<string, unknown>>> = {};
    for (const portId of server.portIds) {
      const port = ports.get(portId);
      if (!port) continue;
      const name = networks.get(port.network_id)?.name ?? port.network_id;
      const list = (addresses[name] ??= []);
      for (const ip of port.fixed_ips) list.push({ addr: ip.ip_address, version: 4, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:01' });
      for (const floating of floatingIps.values()) {
        if (floating.port_id === port.id) list.push({ addr: floating.floating_ip_address, version: 4, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:01' });
      }
    }
    const status = serverStatus(server);
    return {
      id: server.id,
      name: server.name,
      status,
      'OS-EXT-STS:task_state': server.deletedAt !== undefined ? 'deleting' : status === 'BUILD' ? 'spawning' : null,
      'OS-EXT-STS:vm_state': status === 'BUILD' ? 'building' : 'active',
      flavor: { original_name: server.flavor.name, vcpus: server.flavor.vcpus, ram: server.flavor.ram, disk: server.flavor.disk, ephemeral: 0, swap: 0, extra_specs: {} },
      image: { id: server.imageId, links: [] },
      key_name: server.key_name,
      metadata: { ...server.metadata },
      tags: [...server.tags],
      addresses,
      security_groups: [...new Set(server.portIds.flatMap((portId) => ports.get(portId)?.security_groups ?? []))].map((groupId) => ({ name: groups.get(groupId)?.name ?? groupId })),
      created: new Date(performance.timeOrigin + server.createdAt).toISOString(),
      tenant_id: 'demo',
    };
  }

  function checkMetadata(value: unknown): Record<string, string> {
    const metadata = (value ?? {}) as Record<string, unknown>;
    if (typeof metadata !== 'object' || Array.isArray(metadata)) throw badRequest('Invalid input for field/attribute metadata.', 'nova');
    if (Object.keys(metadata).length > 128) throw new ApiError(403, 'forbidden', 'Quota exceeded for metadata_items: Requested 129, but already used 0 of 128 metadata_items', 'nova');
    for (const [key, entry] of Object.entries(metadata)) {
      if (!METADATA_KEY.test(key)) throw badRequest(`Invalid input for field/attribute metadata. Value: ${key}. '${key}' does not match any of the regexes: '^[a-zA-Z0-9-_:. /]{1,255}$'`, 'nova');
      if (typeof entry !== 'string' || entry.length > 255) throw badRequest(`Invalid input for field/attribute metadata. Value of ${key} must be a string of at most 255 characters.`, 'nova');
    }
    return metadata as Record<string, string>;
  }

  function nova(method: string, url: URL, body: Record<string, unknown>): { status: number; json?: unknown } {
    const parts = url.pathname.replace(/^\/v2\.1\//, '').split('/').filter(Boolean).map(decodeURIComponent);
    const [resource, id, sub] = parts;
    switch (`${method} ${resource}${id === undefined ? '' : ' :id'}${sub === undefined ? '' : ` ${sub}`}`) {
      case 'GET flavors :id':
        if (id === 'detail') return { status: 200, json: { flavors: FLAVORS.map((flavor) => ({ ...flavor, 'OS-FLV-EXT-DATA:ephemeral': 0, swap: '', rxtx_factor: 1, 'os-flavor-access:is_public': true })) } };
        {
          const flavor = FLAVORS.find((entry) => entry.id === id);
          if (!flavor) throw novaNotFound(`Flavor ${id} could not be found.`);
          return { status: 200, json: { flavor } };
        }
      case 'GET servers :id': {
        if (id === 'detail') {
          // page() filters on the view's `tags` (Nova 2.26+ `?tags=`), and its next link keeps the filter.
          const live = [...servers.values()].filter((server) => serverVisible(server));
          return { status: 200, json: page(url, 'servers', live, (server) => server.id, serverJson) };
        }
        const server = serverVisible(servers.get(String(id)));
        if (!server) throw novaNotFound(`Instance ${id} could not be found.`);
        return { status: 200, json: { server: serverJson(server) } };
      }
      case 'POST servers': {
        const request = (body.server ?? {}) as Record<string, unknown>;
        const name = String(request.name ?? '');
        if (!name) throw badRequest("Invalid input for field/attribute server. Value: {}. 'name' is a required property", 'nova');
        const flavor = FLAVORS.find((entry) => entry.id === String(request.flavorRef));
        if (!flavor) throw badRequest(`Flavor ${String(request.flavorRef)} could not be found.`, 'nova');
        const image = IMAGES.find((entry) => entry.id === String(request.imageRef));
        if (!image) throw badRequest(`Can not find requested image`, 'nova');
        const keyName = request.key_name === undefined || request.key_name === null ? null : String(request.key_name);
        if (keyName !== null && !keypairs.has(keyName)) throw badRequest('Invalid key_name provided.', 'nova');
        const tags = (request.tags ?? []) as unknown[];
        if (!Array.isArray(tags) || tags.length > 50 || tags.some((tag) => typeof tag !== 'string' || tag.length === 0 || tag.length > 60 || /[,/]/.test(tag))) {
          throw badRequest(`Invalid input for field/attribute tags: each of at most 50 tags is 1 to 60 characters without "," or "/".`, 'nova');
        }
        const metadata = checkMetadata(request.metadata);
        let userData: string | undefined;
        if (request.user_data !== undefined) {
          const text = String(request.user_data);
          if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw badRequest('User data needs to be valid base 64.', 'nova');
          userData = Buffer.from(text, 'base64').toString('utf8');
        }
        const requested = (request.networks ?? []) as Array<{ port?: string; uuid?: string }>;
        if (!Array.isArray(requested) || requested.length === 0) throw badRequest('Multiple possible networks found, use a Network ID to be more specific.', 'nova');
        const portIds = requested.map((entry) => {
          if (!entry.port) throw badRequest('This emulator boots servers on ports only: pass networks: [{ port }].', 'nova');
          const port = visible(ports.get(entry.port));
          if (!port) throw novaNotFound(`Port id ${entry.port} could not be found.`);
          if (port.device_id) throw new ApiError(409, 'conflictingRequest', `Port ${port.id} is still in use.`, 'nova');
          return port.id;
        });
        const server: Server = {
          id: randomUUID(),
          name,
          flavor,
          imageId: image.id,
          key_name: keyName,
          metadata,
          tags: [...new Set(tags as string[])],
          portIds,
          userData,
          deletedAt: undefined,
          createdAt: performance.now(),
        };
        for (const portId of portIds) Object.assign(ports.get(portId) ?? {}, { device_id: server.id, device_owner: 'compute:nova' });
        servers.set(server.id, server);
        return { status: 202, json: { server: { id: server.id, links: [{ rel: 'self', href: `${endpoint}/v2.1/servers/${server.id}` }], adminPass: randomUUID().slice(0, 12), security_groups: [], 'OS-DCF:diskConfig': 'MANUAL' } } };
      }
      case 'PUT servers :id metadata': {
        const server = serverVisible(servers.get(String(id)));
        if (!server) throw novaNotFound(`Instance ${id} could not be found.`);
        // PUT replaces all the metadata.
        server.metadata = { ...checkMetadata(body.metadata) };
        return { status: 200, json: { metadata: server.metadata } };
      }
      case 'POST servers :id action': {
        const server = serverVisible(servers.get(String(id)));
        if (!server) throw novaNotFound(`Instance ${id} could not be found.`);
        if (!('os-getConsoleOutput' in body)) throw badRequest('This emulator knows only the os-getConsoleOutput server action.', 'nova');
        // Nova's answer (compute API, "Show Console Output"): the log so far; empty while it builds.
        const booted = serverStatus(server) === 'ACTIVE';
        return { status: 200, json: { output: booted ? bootConsole(options.hostKeys ?? [standInHostKey(server.id)], server.name) : '' } };
      }
      case 'DELETE servers :id': {
        const server = serverVisible(servers.get(String(id)));
        if (!server) throw novaNotFound(`Instance ${id} could not be found.`);
        server.deletedAt ??= performance.now();
        return { status: 204 };
      }

      case 'GET os-keypairs': {
        const list = [...keypairs.values()];
        const body = page(url, 'keypairs', list, (keypair) => keypair.name, (keypair) => ({ name: keypair.name, public_key: keypair.public_key, fingerprint: keypair.fingerprint, type: 'ssh' }));
        // Nova wraps each entry: { keypairs: [{ keypair: {...} }] }.
        return { status: 200, json: { ...body, keypairs: (body.keypairs as unknown[]).map((keypair) => ({ keypair })) } };
      }
      case 'GET os-keypairs :id': {
        const keypair = keypairs.get(String(id));
        if (!keypair) throw novaNotFound(`Keypair ${id} not found for user demo`);
        return { status: 200, json: { keypair: { ...keypair, type: 'ssh', user_id: 'demo', id: 1, deleted: false } } };
      }
      case 'POST os-keypairs': {
        const request = (body.keypair ?? {}) as Record<string, unknown>;
        const name = String(request.name ?? '');
        if (!KEYPAIR_NAME.test(name)) throw badRequest(`Invalid input for field/attribute name. Value: ${name}. '${name}' does not match '^[a-zA-Z0-9 @._-]+$'`, 'nova');
        if (keypairs.has(name)) throw new ApiError(409, 'conflictingRequest', `Key pair '${name}' already exists.`, 'nova');
        const publicKey = String(request.public_key ?? '').trim();
        const keyBody = publicKey.split(/\s+/)[1];
        if (!publicKey || !keyBody) throw badRequest('Keypair data is invalid: failed to generate fingerprint', 'nova');
        const fingerprint = createHash('md5').update(Buffer.from(keyBody, 'base64')).digest('hex').match(/../g)?.join(':') ?? '';
        const keypair: Keypair = { name, public_key: publicKey, fingerprint, created_at: new Date().toISOString() };
        keypairs.set(name, keypair);
        return { status: 200, json: { keypair: { name, public_key: publicKey, fingerprint, user_id: 'demo', type: 'ssh' } } };
      }
      case 'DELETE os-keypairs :id': {
        if (!keypairs.delete(String(id))) throw novaNotFound(`Keypair ${id} not found for user demo`);
        return { status: 202 };
      }
      default:
        throw novaNotFound(`The resource could not be found: ${method} ${url.pathname}`);
    }
  }

  // ---------------------------------------------------------------- Keystone and Glance

  function catalog() {
    const entry = (type: string, name: string, url: string) => ({
      type,
      name,
      id: randomUUID(),
      endpoints: regions.flatMap((region) => ['public', 'internal'].map((face) => ({ id: randomUUID(), interface: face, region, region_id: region, url }))),
    });
    return [entry('identity', 'keystone', `${endpoint}/v3`), entry('compute', 'nova', `${endpoint}/v2.1`), entry('network', 'neutron', endpoint), entry('image', 'glance', endpoint)];
  }

  function authenticate(body: Record<string, unknown>): { status: number; json: unknown; headers: Record<string, string> } {
    const auth = (body.auth ?? {}) as { identity?: { methods?: string[]; password?: { user?: { name?: string; password?: string; domain?: { name?: string } } } }; scope?: { project?: { name?: string } } };
    const user = auth.identity?.password?.user;
    if (!auth.identity?.methods?.includes('password') || !user?.name) throw new ApiError(400, 'Bad Request', 'Expecting to find identity in auth.', 'keystone');
    const known = users.find((entry) => entry.username === user.name && entry.password === user.password);
    const project = auth.scope?.project?.name;
    if (!known || (project !== undefined && project !== known.project)) throw new ApiError(401, 'Unauthorized', 'The request you have made requires authentication.', 'keystone');
    const token = `gAAAA${randomUUID().replaceAll('-', '')}`;
    const expiresAt = Date.now() + tokenTtlMs;
    tokens.set(token, { expiresAt, project: known.project, userId: known.username });
    return {
      status: 201,
      headers: { 'x-subject-token': token },
      json: {
        token: {
          methods: ['password'],
          expires_at: new Date(expiresAt).toISOString(),
          issued_at: new Date().toISOString(),
          user: { id: known.username, name: known.username, domain: { id: 'default', name: 'Default' } },
          project: { id: known.project, name: known.project, domain: { id: 'default', name: 'Default' } },
          roles: [{ id: 'member', name: 'member' }],
          catalog: catalog(),
        },
      },
    };
  }

  function glance(url: URL): { status: number; json: unknown } {
    if (url.pathname !== '/v2/images') throw new ApiError(404, 'Not Found', `The resource could not be found: ${url.pathname}`, 'keystone');
    const name = url.searchParams.get('name');
    const id = url.searchParams.get('id');
    return { status: 200, json: { images: IMAGES.filter((image) => (name === null || image.name === name) && (id === null || image.id === id)), schema: '/v2/schemas/images' } };
  }

  // ---------------------------------------------------------------- HTTP

  /** Keystone (and keystonemiddleware's 401): `{ error }`; Neutron: `{ NeutronError }`; Nova: `{ itemNotFound: {...} }`. */
  function errorBody(error: ApiError, style: ErrorStyle): unknown {
    if (style === 'keystone' || error.status === 401) return { error: { code: error.status, title: error.type, message: error.message } };
    if (style === 'neutron') return { NeutronError: { type: error.type, message: error.message, detail: '' } };
    return { [error.type]: { code: error.status, message: error.message, ...(error.status === 429 ? { retryAfter: String(retryAfter) } : {}) } };
  }

  async function handle(request: IncomingMessage, text: string, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', endpoint);
    const method = request.method ?? 'GET';
    const path = url.pathname;
    const service = path.startsWith('/v3/') ? 'keystone' : path.startsWith('/v2.0/') ? 'neutron' : path.startsWith('/v2.1/') ? 'nova' : path.startsWith('/v2/') ? 'glance' : 'unknown';
    const style: ErrorStyle = service === 'nova' ? 'nova' : service === 'neutron' ? 'neutron' : 'keystone';
    const segments = path.split('/').filter(Boolean);
    const routeName = `${method} ${service} ${segments[1] ?? ''}`;
    calls.set(routeName, (calls.get(routeName) ?? 0) + 1);
    const requestId = `req-${randomUUID()}`;
    const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', 'x-openstack-request-id': requestId, ...(service === 'nova' ? { 'x-compute-request-id': requestId } : {}), ...headers });
      response.end(json === undefined ? '' : JSON.stringify(json));
    };
    try {
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (service === 'keystone') {
        if (method !== 'POST' || path !== '/v3/auth/tokens') throw new ApiError(404, 'Not Found', `The resource could not be found: ${path}`, 'keystone');
        const result = authenticate(body);
        send(result.status, result.json, result.headers);
        return;
      }
      const token = tokens.get(String(request.headers['x-auth-token'] ?? ''));
      if (!token || token.expiresAt <= Date.now()) throw new ApiError(401, 'Unauthorized', 'The request you have made requires authentication.', style);
      if (service === 'unknown') throw new ApiError(404, 'Not Found', `The resource could not be found: ${path}`, 'keystone');
      const result = await faults.run(
        operationOf(method, service, segments[1] ?? '', segments[3]),
        () => (service === 'neutron' ? neutron(method, url, body) : service === 'nova' ? nova(method, url, body) : glance(url)),
        routeName,
      );
      send(result.status, result.json);
    } catch (error) {
      if (error instanceof LostResponseError) {
        response.socket?.destroy();
        return;
      }
      const failure = error instanceof ApiError ? error : new ApiError(500, 'InternalServerError', (error as Error).message);
      const headers: Record<string, string> = failure.status === 429 ? { 'retry-after': String(retryAfter) } : failure.status === 401 ? { 'www-authenticate': `Keystone uri="${endpoint}/v3"` } : {};
      send(failure.status, errorBody(failure, failure.style ?? style), headers);
    }
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      handle(request, Buffer.concat(chunks).toString('utf8'), response).catch((error: unknown) => {
        // A bug in the emulator must still answer, or the client under test would hang.
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    authUrl: `${endpoint}/v3`,
    faults,
    servers: () =>
      [...servers.values()]
        // serverVisible() forgets the servers whose delete has finished; hidden new ones still count.
        .filter((entry) => serverVisible(entry) !== undefined || servers.has(entry.id))
        .map((entry) => ({ id: entry.id, name: entry.name, status: serverStatus(entry), metadata: { ...entry.metadata }, tags: [...entry.tags] })),
    inventory: () => {
      for (const entry of [...servers.values()]) serverVisible(entry);
      return {
        networks: networks.size - 1,
        subnets: subnets.size,
        ports: ports.size,
        routers: routers.size,
        floatingIps: floatingIps.size,
        securityGroups: groups.size,
        servers: servers.size,
        keypairs: keypairs.size,
      };
    },
    revokeTokens: () => tokens.clear(),
    calls: (route) => (route === undefined ? [...calls.values()].reduce((sum, count) => sum + count, 0) : (calls.get(route) ?? 0)),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** The region the emulator serves. */
export const EMULATOR_REGION = 'region-b.geo-1';

/** Options of a provider for the emulator's demo project, with fast waits; a test adds its own. */
export function providerOptionsFor(emulator: OpenStackEmulator, extra: Partial<OpenStackProviderOptions> = {}): OpenStackProviderOptions {
  return { region: EMULATOR_REGION, authUrl: emulator.authUrl, username: 'demo', password: 'secret', project: 'demo', pollIntervalMs: 20, throttleDelayMs: 10, ...extra };
}
