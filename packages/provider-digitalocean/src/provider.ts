/**
 * The DigitalOcean provider, on dots-wrapper. DigitalOcean is honestly different from EC2:
 * - no subnets: `adapt` drops them and says how each was honoured. Instances carry their subnet
 *   as a tag (so firewall rules can admit a subnet), and the instances of a private subnet get a
 *   Cloud Firewall that admits inbound traffic only from the VPC range. A private instance whose
 *   firewalls admit addresses outside the VPC cannot be kept private: that is a clear error.
 * - Cloud Firewalls target droplets by tag, hold no description and belong to no VPC; outbound
 *   traffic is denied unless allowed, so no egress in the spec means "allow all outbound".
 * - tags are plain strings: see encoding.ts for the reversible encoding.
 * - a VPC's range must be one DigitalOcean accepts (limits.ts): refused when the plan is made.
 */
import { createApiClient } from 'dots-wrapper';
import {
  CreateAttempts,
  NAMED_SIZES,
  NotFoundError,
  ValidationError,
  cidrContains,
  providerPlugin,
  parseCidr,
  type AdaptResult,
  type ArmadaPlugin,
  type DesiredResource,
  type InstanceTypeRequest,
  type PlanNote,
  type ProviderV1,
  type ResolvedInstanceType,
  type ResourceAddress,
  type ValidationIssue,
} from '@armada/core';
import { dnsServices } from './dns.js';
import { DIGITALOCEAN_PROVIDER_ID, digitalocean } from './errors.js';
import { limitIssues } from './limits.js';
import { firewallService, instanceService, keyPairService, listAll, networkService, type DigitalOceanContext, type DotsClient } from './services.js';

export interface DigitalOceanProviderOptions {
  region: string;
  /** Default: the DIGITALOCEAN_TOKEN environment variable. */
  token?: string;
  /** API base, ending in `/v2` (the testkit emulator, a proxy). Default: DigitalOcean's. */
  endpoint?: string;
  /** Your own dots-wrapper client. */
  client?: DotsClient;
  /** First poll delay of the waiters (default 2000 ms) and their timeout (default 10 min). */
  pollIntervalMs?: number;
  waitTimeoutMs?: number;
  /** Items per page of list calls (default 200, DigitalOcean's maximum). */
  pageSize?: number;
  /**
   * How long something just made may be missing from list calls (default 10 s): how long a create
   * repeated after a lost reply looks for what the first attempt made before it creates again.
   */
  consistencyWindowMs?: number;
}

interface Size {
  slug: string;
  vcpus: number;
  memory: number;
  available: boolean;
  regions: string[];
}

/** Portable image -> DigitalOcean slug: `debian-12` -> `debian-12-x64`, `ubuntu-24.04` -> `ubuntu-24-04-x64`. */
export function imageSlug(image: string): string {
  return `${image.replaceAll('.', '-')}-x64`;
}

const GUARD_PREFIX = 'private-subnet-';

export function createDigitalOceanProvider(options: DigitalOceanProviderOptions): ProviderV1 {
  const { region } = options;
  const token = options.token ?? process.env.DIGITALOCEAN_TOKEN;
  const client = options.client ?? createApiClient({ token: token ?? '', ...(options.endpoint ? { endpoint: options.endpoint } : {}) });
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const context: DigitalOceanContext = {
    client,
    region,
    pageSize: options.pageSize ?? 200,
    pollIntervalMs,
    waitTimeoutMs: options.waitTimeoutMs ?? 600_000,
    attempts: new CreateAttempts({ consistencyWindowMs: options.consistencyWindowMs ?? 10_000, pollIntervalMs }),
  };
  let sizes: Promise<Size[]> | undefined;
  const loadSizes = () => {
    sizes ??= listAll<Size>('listSizes', (page) => client.size.listSizes({ page, per_page: context.pageSize }) as never, 'sizes');
    sizes.catch(() => {
      sizes = undefined;
    });
    return sizes;
  };
  const { dns, dnsRecordService } = dnsServices(context);

  return {
    specificationVersion: 'v1',
    id: DIGITALOCEAN_PROVIDER_ID,
    region,
    capabilities: {
      subnets: 'emulated',
      firewallTargets: 'tag',
      // Firewall peers are tags; subnet peers are the subnet's tag, which its droplets carry.
      firewallPeers: { cidr: true, firewall: true, subnet: true },
      egressRules: true,
      tags: 'plain',
      dns: true,
    },
    services: {
      network: networkService(context),
      // DigitalOcean has no subnets: adapt() removes them, so this service is never asked to
      // create one, and it finds none.
      subnet: {
        kind: 'subnet',
        replaceOn: [],
        discover: async () => [],
        create: async (resource) => {
          throw new ValidationError(`DigitalOcean has no subnets; ${resource.address} should have been honoured by adapt().`);
        },
        delete: async () => {},
      },
      firewall: firewallService(context),
      keyPair: keyPairService(context),
      instance: instanceService(context),
      dnsRecord: dnsRecordService,
    },
    dns,
    async verify() {
      if (!token && !options.client) {
        throw new ValidationError('No DigitalOcean API token.', {
          provider: DIGITALOCEAN_PROVIDER_ID,
          issues: [{ path: 'token', message: 'no token was given', fix: 'set DIGITALOCEAN_TOKEN, or pass `token` to the DigitalOcean provider' }],
        });
      }
      await digitalocean('getAccount', () => client.account.getAccount());
      const regions = await listAll<{ slug: string; available: boolean }>('listRegions', (page) => client.region.listRegions({ page, per_page: context.pageSize }) as never, 'regions');
      if (!regions.some((entry) => entry.slug === region && entry.available)) {
        throw new ValidationError(`Unknown DigitalOcean region "${region}".`, {
          provider: DIGITALOCEAN_PROVIDER_ID,
          issues: [{ path: 'provider.region', message: `"${region}" is not an available region`, fix: `use one of: ${regions.filter((entry) => entry.available).map((entry) => entry.slug).join(', ')}` }],
        });
      }
    },
    async resolveInstanceType(request: InstanceTypeRequest): Promise<ResolvedInstanceType> {
      const issues: ValidationIssue[] = [];
      const offered = (await loadSizes()).filter((size) => size.available && size.regions.includes(region));
      let size = typeof request.options.size === 'string' ? request.options.size : undefined;
      if (size !== undefined && !offered.some((entry) => entry.slug === size)) {
        issues.push({ path: 'digitalocean.size', message: `size ${size} is not offered in ${region}`, fix: `use one of: ${offered.map((entry) => entry.slug).join(', ')}` });
      }
      if (size === undefined) {
        const wanted = typeof request.size === 'string' ? NAMED_SIZES[request.size] : request.size;
        size = [...offered]
          .sort((a, b) => a.memory - b.memory || a.vcpus - b.vcpus)
          .find((entry) => entry.vcpus >= wanted.cpus && entry.memory >= wanted.memoryGiB * 1024)?.slug;
        if (size === undefined) issues.push({ path: 'size', message: `no size in ${region} has ${wanted.cpus} vCPUs and ${wanted.memoryGiB} GiB`, fix: 'choose a smaller size, or set digitalocean.size' });
      }
      const image = typeof request.options.image === 'string' ? request.options.image : imageSlug(request.image);
      try {
        const found = (await digitalocean('getImage', () => client.image.getImage({ image_id: image } as never))).data.image as unknown as { regions: string[] };
        if (!found.regions.includes(region)) issues.push({ path: 'image', message: `image ${image} is not available in ${region}`, fix: 'choose another image or region' });
      } catch (error) {
        if (!NotFoundError.isInstance(error)) throw error;
        issues.push({ path: typeof request.options.image === 'string' ? 'digitalocean.image' : 'image', message: `DigitalOcean has no image "${image}"`, fix: 'use debian-12, debian-11, ubuntu-22.04 or ubuntu-24.04, or set digitalocean.image to a slug' });
      }
      if (issues.length > 0 || size === undefined) {
        throw new ValidationError(`Instance "${request.instance}" cannot be built on DigitalOcean in ${region}.`, { provider: DIGITALOCEAN_PROVIDER_ID, issues });
      }
      return { size, image };
    },
    adapt: adaptToDigitalOcean,
  };
}

/** Reshapes the portable resources for DigitalOcean; see the module comment. */
export function adaptToDigitalOcean(resources: DesiredResource[]): AdaptResult {
  const notes: PlanNote[] = [];
  // A VPC range DigitalOcean would refuse: refused now, before anything is created.
  const issues: ValidationIssue[] = limitIssues(resources);
  const network = resources.find((resource): resource is DesiredResource<'network'> => resource.kind === 'network');
  const networkCidr = network ? parseCidr(network.properties.cidr) : undefined;
  const subnets = resources.filter((resource): resource is DesiredResource<'subnet'> => resource.kind === 'subnet');
  const instances = resources.filter((resource): resource is DesiredResource<'instance'> => resource.kind === 'instance');
  const firewalls = new Map(resources.filter((resource): resource is DesiredResource<'firewall'> => resource.kind === 'firewall').map((firewall) => [firewall.name, firewall]));
  const privateSubnets = new Set(subnets.filter((subnet) => subnet.properties.access === 'private').map((subnet) => subnet.name));

  for (const subnet of subnets) {
    notes.push({
      severity: 'info',
      path: subnet.address,
      capability: 'nativeSubnets',
      message:
        subnet.properties.access === 'public'
          ? `no subnets on DigitalOcean: its droplets are in the VPC ${network?.properties.cidr} with public IPv4; their firewalls decide what is reachable`
          : instances.some((instance) => instance.properties.subnet === subnet.name && instance.properties.firewalls.length === 0)
            ? `no subnets on DigitalOcean: its droplets are in the VPC ${network?.properties.cidr}; those with no firewall of their own get a Cloud Firewall (${GUARD_PREFIX}${subnet.name}) that admits inbound traffic only from the VPC range`
            : `no subnets on DigitalOcean: its droplets are in the VPC ${network?.properties.cidr}, closed from outside by their firewalls (which admit only peers inside the network)`,
    });
  }

  // A private instance must not be reachable from outside the VPC through any of its firewalls.
  for (const instance of instances.filter((entry) => privateSubnets.has(entry.properties.subnet))) {
    for (const name of instance.properties.firewalls) {
      for (const rule of firewalls.get(name)?.properties.ingress ?? []) {
        if (!('cidr' in rule.peer)) continue;
        const peer = parseCidr(rule.peer.cidr);
        if (networkCidr?.ok && peer.ok && cidrContains(networkCidr.cidr, peer.cidr)) continue;
        issues.push({
          path: instance.address,
          message: `instance "${instance.name}" is in private subnet "${instance.properties.subnet}", but its firewall "${name}" admits ${rule.peer.cidr}; DigitalOcean has no private subnets, so it would be reachable`,
          fix: 'admit only firewalls, subnets or ranges inside the network, or place the instance in a public subnet',
        });
      }
    }
  }
  if (issues.length > 0) {
    throw new ValidationError('The spec cannot be honoured on DigitalOcean:', { provider: DIGITALOCEAN_PROVIDER_ID, issues });
  }

  // A private instance with a firewall of its own is closed from outside by it: DigitalOcean admits
  // only what some firewall allows, and its firewalls admit only peers inside the network (checked
  // above). Only an instance with none needs the guard, and only it gets it: firewalls add up, so a
  // guard admitting the whole network would undo the narrower rules of the others ("Data Internal").
  const needsGuard = (instance: DesiredResource<'instance'>) => privateSubnets.has(instance.properties.subnet) && instance.properties.firewalls.length === 0;
  const guards: DesiredResource<'firewall'>[] = [...privateSubnets]
    .filter((subnet) => instances.some((instance) => instance.properties.subnet === subnet && needsGuard(instance)))
    .map((subnet) => ({
      address: `firewall.${GUARD_PREFIX}${subnet}` as ResourceAddress,
      kind: 'firewall',
      name: `${GUARD_PREFIX}${subnet}`,
      properties: { network: '', description: '', ingress: network ? [{ protocol: 'all', peer: { cidr: network.properties.cidr } }] : [] },
      dependsOn: [],
    }));

  for (const guard of guards) {
    notes.push({
      severity: 'info',
      path: guard.address,
      capability: 'nativeSubnets',
      message: `added: keeps the instances of subnet "${guard.name.slice(GUARD_PREFIX.length)}" that have no firewall private, by admitting inbound traffic only from ${network?.properties.cidr}`,
    });
  }

  const adapted: DesiredResource[] = [];
  for (const resource of resources) {
    if (resource.kind === 'subnet') continue;
    if (resource.kind === 'firewall') {
      const firewall = resource as DesiredResource<'firewall'>;
      const strip = (rules: typeof firewall.properties.ingress) => rules.map(({ description: _description, ...rule }) => rule);
      if (firewall.properties.description || [...firewall.properties.ingress, ...(firewall.properties.egress ?? [])].some((rule) => rule.description)) {
        notes.push({ severity: 'info', path: firewall.address, capability: 'firewallTargets', message: 'Cloud Firewall targeting droplets by tag; DigitalOcean keeps no firewall or rule descriptions' });
      }
      adapted.push({
        ...firewall,
        // Cloud Firewalls belong to the account, not to a VPC, and keep no description.
        properties: { network: '', description: '', ingress: strip(firewall.properties.ingress), ...(firewall.properties.egress ? { egress: strip(firewall.properties.egress) } : {}) },
        dependsOn: firewall.dependsOn.filter((address) => address.startsWith('firewall.')),
      });
      continue;
    }
    if (resource.kind === 'instance') {
      const instance = resource as DesiredResource<'instance'>;
      const guard = needsGuard(instance) ? `${GUARD_PREFIX}${instance.properties.subnet}` : undefined;
      adapted.push({
        ...instance,
        properties: { ...instance.properties, firewalls: guard ? [...instance.properties.firewalls, guard] : instance.properties.firewalls },
        // No subnet to wait for; the droplet goes into the network's VPC.
        dependsOn: [
          ...instance.dependsOn.filter((address) => !address.startsWith('subnet.')),
          ...(network ? [network.address] : []),
          ...(guard ? [`firewall.${guard}` as ResourceAddress] : []),
        ],
      });
      continue;
    }
    adapted.push(resource);
  }
  return { resources: [...adapted, ...guards], notes };
}

/** The plugin: registers provider id `digitalocean`. */
export function digitalOceanProviderPlugin(options: Omit<DigitalOceanProviderOptions, 'region'> = {}): ArmadaPlugin {
  return providerPlugin({
    pluginId: '@armada/provider-digitalocean',
    providerId: DIGITALOCEAN_PROVIDER_ID,
    create: ({ region, options: specOptions }) => createDigitalOceanProvider({ ...options, ...(specOptions as Partial<DigitalOceanProviderOptions>), region }),
  });
}
