/**
 * The OpenStack provider: Keystone for credentials, Neutron for networks, subnets, routers,
 * floating IPs and security groups, Nova for servers and key pairs, Glance for images. What the
 * cloud honours natively and what it does not:
 * - subnets are native; a public subnet is one with an interface on the network's router to the
 *   external network (its instances get floating IPs), a private one has no router interface.
 * - firewalls are security groups attached to the instances' ports (targets by group); peers are
 *   address blocks or other groups. Security groups cannot name a subnet as a peer, and belong to
 *   the project rather than to a network.
 * - server metadata is key/value, so tags are too. There is no DNS service here (Designate is
 *   optional in OpenStack clouds and this plugin does not drive it).
 */
import {
  ArmadaTokens,
  CreateAttempts,
  hostKeysInConsole,
  NAMED_SIZES,
  UnsupportedError,
  ValidationError,
  definePlugin,
  type AdaptResult,
  type ArmadaPlugin,
  type DesiredResource,
  type InstanceTypeRequest,
  type PlanNote,
  type ProviderRegistration,
  type ProviderV1,
  type ResolvedInstanceType,
  type ValidationIssue,
} from '@armada/core';
import { OpenStackClient, type OpenStackCredentials } from './client.js';
import { invalid, NOVA_MICROVERSION, type OpenStackContext } from './context.js';
import { OPENSTACK_PROVIDER_ID } from './errors.js';
import { firewallService } from './firewall.js';
import { instanceService } from './instance.js';
import { keyPairService } from './key-pair.js';
import { networkService, subnetService } from './network.js';

export interface OpenStackProviderOptions {
  region: string;
  /** Keystone v3 URL, ending in `/v3`. Default: OS_AUTH_URL. */
  authUrl?: string;
  /** Default: OS_USERNAME. */
  username?: string;
  /** Default: OS_PASSWORD. */
  password?: string;
  /** Project (tenant) name. Default: OS_PROJECT_NAME. */
  project?: string;
  /** Default: OS_USER_DOMAIN_NAME, else `Default`. */
  userDomain?: string;
  /** Default: OS_PROJECT_DOMAIN_NAME, else `Default`. */
  projectDomain?: string;
  /** Name or id of the external network for routers and floating IPs. Default: the first external network. */
  externalNetwork?: string;
  /** Portable image -> Glance image name, over the defaults in OPENSTACK_IMAGES. */
  images?: Record<string, string>;
  /** First poll delay of the waiters (default 2000 ms) and their timeout (default 10 min). */
  pollIntervalMs?: number;
  waitTimeoutMs?: number;
  /**
   * How long something just made may be missing from lists (default 10 s): after a create that
   * got no reply, its retry looks for what it may have made for this long before creating again.
   */
  consistencyWindowMs?: number;
  /** Items per page of list calls (default 100). */
  pageSize?: number;
  /** Tries of a 429/503 call inside the client, the first included (default 4), and the first wait (default 500 ms). */
  throttleAttempts?: number;
  throttleDelayMs?: number;
  /** Replaces global fetch. */
  fetch?: typeof fetch;
}

/** Portable images -> Glance image names, as public OpenStack clouds name them. */
export const OPENSTACK_IMAGES: Readonly<Record<string, string>> = {
  'debian-11': 'Debian 11 (bullseye)',
  'debian-12': 'Debian 12 (bookworm)',
  'ubuntu-22.04': 'Ubuntu 22.04 LTS (Jammy Jellyfish)',
  'ubuntu-24.04': 'Ubuntu 24.04 LTS (Noble Numbat)',
};

/** Nova's pattern for metadata keys. */
const METADATA_KEY = /^[a-zA-Z0-9-_:. /]{1,255}$/;

interface Flavor {
  id: string;
  name: string;
  vcpus: number;
  /** MiB. */
  ram: number;
}

/** A promise that is forgotten when it fails, so the next call tries again. */
function cached<T>(load: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    if (!value) {
      value = load();
      value.catch(() => {
        value = undefined;
      });
    }
    return value;
  };
}

export function createOpenStackProvider(options: OpenStackProviderOptions): ProviderV1 {
  const { region } = options;
  const env = process.env;
  const credentials: Partial<OpenStackCredentials> = {
    authUrl: options.authUrl ?? env.OS_AUTH_URL,
    username: options.username ?? env.OS_USERNAME,
    password: options.password ?? env.OS_PASSWORD,
    project: options.project ?? env.OS_PROJECT_NAME,
    userDomain: options.userDomain ?? env.OS_USER_DOMAIN_NAME ?? 'Default',
    projectDomain: options.projectDomain ?? env.OS_PROJECT_DOMAIN_NAME ?? 'Default',
  };
  const client = new OpenStackClient({
    credentials,
    region,
    pageSize: options.pageSize ?? 100,
    throttleAttempts: options.throttleAttempts ?? 4,
    throttleDelayMs: options.throttleDelayMs ?? 500,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const images = { ...OPENSTACK_IMAGES, ...options.images };

  const flavors = cached(async () => (await client.request<{ flavors: Flavor[] }>('compute', 'GET', '/flavors/detail', { microversion: NOVA_MICROVERSION })).flavors);
  const externalNetworkId = cached(async () => {
    const external = await client.listAll<{ id: string; name: string }>('network', '/v2.0/networks', 'networks', { query: { 'router:external': 'true' } });
    const wanted = options.externalNetwork;
    const found = wanted === undefined ? external[0] : external.find((network) => network.id === wanted || network.name === wanted);
    if (!found) {
      throw invalid(
        wanted === undefined ? `Region "${region}" has no external network for routers and floating IPs.` : `"${wanted}" is not an external network in region "${region}".`,
        'externalNetwork',
        external.length > 0 ? `use one of: ${external.map((network) => network.name).join(', ')}` : 'ask the cloud operator for an external network',
      );
    }
    return found.id;
  });
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const consistencyWindowMs = options.consistencyWindowMs ?? 10_000;
  const context: OpenStackContext = {
    client,
    pollIntervalMs,
    waitTimeoutMs: options.waitTimeoutMs ?? 600_000,
    consistencyWindowMs,
    attempts: new CreateAttempts({ consistencyWindowMs, pollIntervalMs }),
    externalNetworkId,
    async flavorId(name) {
      const flavor = (await flavors()).find((entry) => entry.name === name);
      if (!flavor) throw invalid(`Flavor "${name}" is not offered in region "${region}".`, 'size', 'choose another size, or set openstack.flavor');
      return flavor.id;
    },
  };

  async function imageId(reference: string): Promise<string | undefined> {
    const byName = await client.request<{ images: Array<{ id: string; status: string }> }>('image', 'GET', '/v2/images', { query: { name: reference, status: 'active' } });
    if (byName.images[0]) return byName.images[0].id;
    if (!/^[0-9a-f-]{36}$/i.test(reference)) return undefined;
    const byId = await client.request<{ images: Array<{ id: string }> }>('image', 'GET', '/v2/images', { query: { id: reference } });
    return byId.images[0]?.id;
  }

  return {
    specificationVersion: 'v1',
    id: OPENSTACK_PROVIDER_ID,
    region,
    capabilities: {
      subnets: 'native',
      firewallTargets: 'group',
      firewallPeers: { cidr: true, firewall: true, subnet: false },
      egressRules: true,
      tags: 'key-value',
      dns: false,
    },
    services: {
      network: networkService(context),
      subnet: subnetService(context),
      firewall: firewallService(context),
      keyPair: keyPairService(context),
      instance: instanceService(context),
    },
    async consoleHostKeys(instanceId) {
      // Nova's os-getConsoleOutput: the boot log, where cloud-init prints the host keys.
      const answer = await client.request<{ output?: string }>('compute', 'POST', `/servers/${instanceId}/action`, {
        microversion: NOVA_MICROVERSION,
        body: { 'os-getConsoleOutput': { length: null } },
      });
      return hostKeysInConsole(answer?.output ?? '');
    },
    async verify() {
      // Authenticating proves the credentials (401 -> ValidationError) and gives the catalog.
      const catalog = await client.catalog();
      const regions = OpenStackClient.regionsOffering(catalog, ['compute', 'network', 'image']);
      if (!regions.includes(region)) {
        throw invalid(`OpenStack region "${region}" offers no compute, network and image services to this project.`, 'provider.region', `use one of: ${regions.join(', ') || '(none)'}`);
      }
      await externalNetworkId();
    },
    async resolveInstanceType(request: InstanceTypeRequest): Promise<ResolvedInstanceType> {
      const issues: ValidationIssue[] = [];
      const override = request.options;
      const offered = [...(await flavors())].sort((a, b) => a.ram - b.ram || a.vcpus - b.vcpus);
      let flavor = typeof override.flavor === 'string' ? override.flavor : undefined;
      if (flavor !== undefined && !offered.some((entry) => entry.name === flavor)) {
        issues.push({ path: `${OPENSTACK_PROVIDER_ID}.flavor`, message: `flavor ${flavor} is not offered in ${region}`, fix: `use one of: ${offered.map((entry) => entry.name).join(', ')}` });
      }
      if (flavor === undefined) {
        const wanted = typeof request.size === 'string' ? NAMED_SIZES[request.size] : request.size;
        flavor = offered.find((entry) => entry.vcpus >= wanted.cpus && entry.ram >= wanted.memoryGiB * 1024)?.name;
        if (flavor === undefined) {
          issues.push({ path: 'size', message: `no flavor in ${region} has ${wanted.cpus} vCPUs and ${wanted.memoryGiB} GiB`, fix: `choose a smaller size, or set openstack.flavor (the largest is ${offered.at(-1)?.name ?? 'none'})` });
        }
      }
      const imageOverride = typeof override.image === 'string' ? override.image : undefined;
      const imageName = imageOverride ?? images[request.image];
      const image = imageName === undefined ? undefined : await imageId(imageName);
      if (image === undefined) {
        issues.push(
          imageName === undefined
            ? { path: 'image', message: `no OpenStack image for "${request.image}"`, fix: `use one of: ${Object.keys(images).join(', ')}, or set openstack.image to an image name or id` }
            : { path: imageOverride ? `${OPENSTACK_PROVIDER_ID}.image` : 'image', message: `Glance has no active image "${imageName}" in ${region}`, fix: 'set openstack.image to an image name or id of this cloud' },
        );
      }
      if (issues.length > 0 || flavor === undefined || image === undefined) {
        throw new ValidationError(`Instance "${request.instance}" cannot be built on OpenStack in ${region}.`, { provider: OPENSTACK_PROVIDER_ID, issues });
      }
      return { size: flavor, image };
    },
    adapt: adaptToOpenStack,
  };
}

/** Reshapes the portable resources for OpenStack and says how each feature is honoured. */
export function adaptToOpenStack(resources: DesiredResource[]): AdaptResult {
  const notes: PlanNote[] = [];
  const issues: ValidationIssue[] = [];
  const subnetCidrs = new Map(resources.flatMap((resource) => (resource.kind === 'subnet' ? [[resource.name, (resource as DesiredResource<'subnet'>).properties.cidr] as const] : [])));
  const adapted = resources.map((resource): DesiredResource => {
    switch (resource.kind) {
      case 'network': {
        const network = resource as DesiredResource<'network'>;
        notes.push({
          severity: 'info',
          path: network.address,
          message: `Neutron network with a router to the external network; Neutron networks have no range of their own, so ${network.properties.cidr} is kept as a tag and the subnets are carved from it`,
        });
        return network;
      }
      case 'subnet': {
        const subnet = resource as DesiredResource<'subnet'>;
        notes.push({
          severity: 'info',
          path: subnet.address,
          capability: 'nativeSubnets',
          message:
            subnet.properties.access === 'public'
              ? "Neutron subnet with an interface on the network's router; its instances get floating IPs"
              : 'Neutron subnet with no router interface: no route to or from the internet',
        });
        if (subnet.properties.zone === undefined) return subnet;
        notes.push({ severity: 'warning', path: subnet.address, message: `Neutron subnets span the region's availability zones: zone "${subnet.properties.zone}" is not used` });
        const { zone: _zone, ...properties } = subnet.properties;
        return { ...subnet, properties };
      }
      case 'firewall': {
        const firewall = resource as DesiredResource<'firewall'>;
        notes.push({
          severity: 'info',
          path: firewall.address,
          capability: 'firewallTargets',
          message: "Neutron security group on its instances' ports (project-wide, not tied to the network); firewall peers are remote-group rules",
        });
        for (const rule of [...firewall.properties.ingress, ...(firewall.properties.egress ?? [])]) {
          if ('subnet' in rule.peer) {
            throw new UnsupportedError(
              'firewallPeerBySubnet',
              `Neutron security groups cannot name a subnet as a peer: firewall "${firewall.name}" admits subnet "${rule.peer.subnet}". ` +
                `Write its range instead (from: ${subnetCidrs.get(rule.peer.subnet) ?? '<the subnet CIDR>'}), or name a firewall.`,
              { provider: OPENSTACK_PROVIDER_ID },
            );
          }
        }
        // Security groups belong to the project: no network, so no wait for it.
        return { ...firewall, properties: { ...firewall.properties, network: '' }, dependsOn: firewall.dependsOn.filter((address) => !address.startsWith('network.')) };
      }
      case 'instance': {
        const instance = resource as DesiredResource<'instance'>;
        for (const key of Object.keys(instance.properties.tags)) {
          if (key.startsWith('armada:')) issues.push({ path: `${instance.address}.tags.${key}`, message: 'tags starting with "armada:" are reserved for ownership', fix: 'rename the tag' });
          else if (!METADATA_KEY.test(key)) issues.push({ path: `${instance.address}.tags.${key}`, message: 'Nova metadata keys use only letters, digits, spaces and - _ : . /', fix: 'rename the tag' });
        }
        return instance;
      }
      default:
        return resource;
    }
  });
  if (issues.length > 0) throw new ValidationError('The spec cannot be honoured on OpenStack:', { provider: OPENSTACK_PROVIDER_ID, issues });
  return { resources: adapted, notes };
}

/** Plugin options: the credentials and defaults for every region the specs name. */
export type OpenStackPluginOptions = Omit<OpenStackProviderOptions, 'region'>;

/**
 * The plugin: registers provider id `openstack`. The region comes from the spec
 * (`provider: { id: openstack, region: region-b.geo-1, openstack: { externalNetwork } }`); only
 * `externalNetwork` is read from the spec's provider block, never credentials.
 */
export function openStackProviderPlugin(options: OpenStackPluginOptions = {}): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: '@armada/example-provider-openstack',
    register(container) {
      const registration: ProviderRegistration = {
        id: OPENSTACK_PROVIDER_ID,
        create: ({ region, options: fromSpec }) =>
          createOpenStackProvider({ ...options, ...(typeof fromSpec.externalNetwork === 'string' ? { externalNetwork: fromSpec.externalNetwork } : {}), region }),
      };
      container.register(ArmadaTokens.Provider, { useValue: registration });
    },
  });
}
