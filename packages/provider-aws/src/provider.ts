/**
 * The AWS provider: EC2 for the network, firewalls, key pairs and instances, Route 53 for DNS.
 * Credentials come from the options or the SDK's default chain (environment, profile, role);
 * `endpoint` points both clients at LocalStack or the testkit emulator.
 */
import { DescribeImagesCommand, DescribeRegionsCommand, EC2Client, GetConsoleOutputCommand, paginateDescribeInstanceTypeOfferings, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { Route53Client } from '@aws-sdk/client-route-53';
import {
  CreateAttempts,
  NAMED_SIZES,
  ValidationError,
  hostKeysInConsole,
  providerPlugin,
  type AdaptResult,
  type ArmadaPlugin,
  type DesiredResource,
  type InstanceTypeRequest,
  type PlanNote,
  type ProviderV1,
  type ResolvedInstanceType,
  type ValidationIssue,
} from '@armada/core';
import { DEFAULT_IMAGES, DEFAULT_INSTANCE_TYPES, type ImageLookup, type InstanceTypeEntry } from './catalog.js';
import type { AwsContext } from './context.js';
import { collect } from './ec2-helpers.js';
import { AWS_PROVIDER_ID, aws } from './errors.js';
import { firewallService } from './firewall.js';
import { instanceService } from './instance.js';
import { keyPairService } from './key-pair.js';
import { limitIssues } from './limits.js';
import { networkService } from './network.js';
import { route53Dns } from './route53.js';
import { placeSubnets, subnetService } from './subnet.js';

/** Commercial regions; a region outside it is refused before any call unless allowUnknownRegions. */
export const KNOWN_REGIONS: readonly string[] = [
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'af-south-1', 'ap-east-1', 'ap-south-1', 'ap-south-2',
  'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3',
  'ap-southeast-4', 'ap-southeast-5', 'ap-southeast-7', 'ca-central-1', 'ca-west-1', 'eu-central-1', 'eu-central-2',
  'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-south-1', 'eu-south-2', 'eu-north-1', 'il-central-1', 'me-south-1',
  'me-central-1', 'mx-central-1', 'sa-east-1',
];

export interface AwsProviderOptions {
  region: string;
  /** Your own EC2 client (its region, credentials and retry settings are used as they are). */
  ec2Client?: EC2Client;
  route53Client?: Route53Client;
  /** One endpoint for EC2 and Route 53: LocalStack, the testkit emulator. */
  endpoint?: string;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance role). */
  credentials?: EC2ClientConfig['credentials'];
  /** Portable size -> instance type table, smallest first. */
  instanceTypes?: readonly InstanceTypeEntry[];
  /** Portable image -> AMI lookup. */
  images?: Readonly<Record<string, ImageLookup>>;
  /** First poll delay of the waiters (default 2000 ms) and their timeout (default 10 min). */
  pollIntervalMs?: number;
  waitTimeoutMs?: number;
  /** Page size of Describe calls (default 100). */
  pageSize?: number;
  /**
   * How long something just created may stay invisible to Describe calls (default 10 s): a create
   * retried after a lost reply looks this long for what the first attempt made before making another.
   */
  consistencyWindowMs?: number;
  /** Accept a region missing from KNOWN_REGIONS (a region launched after this release). */
  allowUnknownRegions?: boolean;
}

function regionIssue(region: string): ValidationIssue {
  return {
    path: 'provider.region',
    message: `"${region}" is not an AWS region`,
    fix: `use one of: ${KNOWN_REGIONS.join(', ')} (or set allowUnknownRegions for a new one)`,
  };
}

export function createAwsProvider(options: AwsProviderOptions): ProviderV1 {
  const { region } = options;
  // Armada's executor retries within its own budget; the SDK's own retries would hide throttling from it.
  const clientConfig = {
    region,
    maxAttempts: 1,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const context: AwsContext = {
    ec2: options.ec2Client ?? new EC2Client(clientConfig),
    route53: options.route53Client ?? new Route53Client(clientConfig),
    region,
    pollIntervalMs,
    waitTimeoutMs: options.waitTimeoutMs ?? 600_000,
    pageSize: options.pageSize ?? 100,
    attemptedCreates: new Set(),
    attempts: new CreateAttempts({ consistencyWindowMs: options.consistencyWindowMs ?? 10_000, pollIntervalMs }),
    gatewayRepairs: new Map(),
  };
  const instanceTypes = options.instanceTypes ?? DEFAULT_INSTANCE_TYPES;
  const images = options.images ?? DEFAULT_IMAGES;
  const { dns, dnsRecordService } = route53Dns(context);
  // Look-ups are cached per provider; a failed one is forgotten so a retry asks again.
  const offered = new Map<string, Promise<readonly string[]>>();
  // The same answers, settled: adapt, which places subnets, is synchronous and runs after every
  // instance type of the spec was resolved.
  const zonesOffering = new Map<string, readonly string[]>();
  const amis = new Map<string, Promise<string | undefined>>();
  const cached = <T>(cache: Map<string, Promise<T>>, key: string, lookUp: () => Promise<T>): Promise<T> => {
    let answer = cache.get(key);
    if (!answer) {
      answer = lookUp();
      cache.set(key, answer);
      answer.catch(() => cache.delete(key));
    }
    return answer;
  };

  /** The zones that offer a type, by name (none: the region does not offer it). */
  const zonesOf = (instanceType: string) =>
    cached(offered, instanceType, async () => {
      const offerings = await collect(
        'DescribeInstanceTypeOfferings',
        paginateDescribeInstanceTypeOfferings(
          { client: context.ec2, pageSize: context.pageSize },
          { LocationType: 'availability-zone', Filters: [{ Name: 'instance-type', Values: [instanceType] }] },
        ),
        (page) => page.InstanceTypeOfferings,
      );
      const zones = offerings.flatMap((offering) => (offering.Location ? [offering.Location] : [])).sort();
      zonesOffering.set(instanceType, zones);
      return zones;
    });

  const newestImage = (lookup: ImageLookup) =>
    cached(amis, `${lookup.owner}/${lookup.namePattern}`, () =>
      aws('DescribeImages', () =>
        context.ec2.send(
          new DescribeImagesCommand({
            Owners: [lookup.owner],
            Filters: [
              { Name: 'name', Values: [lookup.namePattern] },
              { Name: 'architecture', Values: ['x86_64'] },
              { Name: 'state', Values: ['available'] },
            ],
          }),
        ),
      ).then((result) => {
        const sorted = [...(result.Images ?? [])].sort((a, b) =>
          `${a.CreationDate ?? ''}${a.Name ?? ''}` < `${b.CreationDate ?? ''}${b.Name ?? ''}` ? 1 : -1,
        );
        return sorted[0]?.ImageId;
      }),
    );

  return {
    specificationVersion: 'v1',
    id: AWS_PROVIDER_ID,
    region,
    capabilities: {
      subnets: 'native',
      firewallTargets: 'group',
      // Subnet peers are honoured as the subnet's CIDR (see adapt).
      firewallPeers: { cidr: true, firewall: true, subnet: true },
      egressRules: true,
      tags: 'key-value',
      dns: true,
    },
    services: {
      network: networkService(context),
      subnet: subnetService(context),
      firewall: firewallService(context),
      keyPair: keyPairService(context),
      instance: instanceService(context),
      dnsRecord: dnsRecordService,
    },
    dns,
    async consoleHostKeys(instanceId, options = {}) {
      const { Output } = await aws('GetConsoleOutput', () => context.ec2.send(new GetConsoleOutputCommand({ InstanceId: instanceId }), options.signal ? { abortSignal: options.signal } : {}));
      return Output ? hostKeysInConsole(Buffer.from(Output, 'base64').toString('utf8')) : [];
    },
    async verify() {
      if (!options.allowUnknownRegions && !KNOWN_REGIONS.includes(region)) {
        throw new ValidationError(`Unknown AWS region "${region}".`, { provider: AWS_PROVIDER_ID, issues: [regionIssue(region)] });
      }
      // The first real call: it proves the credentials, and says whether the region is enabled.
      const enabled = await aws('DescribeRegions', () => context.ec2.send(new DescribeRegionsCommand({})));
      if (!(enabled.Regions ?? []).some((entry) => entry.RegionName === region)) {
        throw new ValidationError(`AWS region "${region}" is not enabled for this account.`, {
          provider: AWS_PROVIDER_ID,
          issues: [{ path: 'provider.region', message: `"${region}" is not enabled`, fix: 'enable it in the AWS console (opt-in regions) or choose another region' }],
        });
      }
    },
    async resolveInstanceType(request: InstanceTypeRequest): Promise<ResolvedInstanceType> {
      const issues: ValidationIssue[] = [];
      const override = request.options;
      let instanceType = typeof override.instanceType === 'string' ? override.instanceType : undefined;
      if (instanceType === undefined) {
        const wanted = typeof request.size === 'string' ? NAMED_SIZES[request.size] : request.size;
        instanceType = instanceTypes.find((entry) => entry.cpus >= wanted.cpus && entry.memoryGiB >= wanted.memoryGiB)?.instanceType;
        if (instanceType === undefined) {
          issues.push({ path: 'size', message: `no instance type in the table has ${wanted.cpus} vCPUs and ${wanted.memoryGiB} GiB`, fix: 'set aws.instanceType, or pass a larger instanceTypes table' });
        }
      }
      if (instanceType !== undefined && (await zonesOf(instanceType)).length === 0) {
        issues.push({
          path: typeof override.instanceType === 'string' ? 'aws.instanceType' : 'size',
          message: `instance type ${instanceType} is not offered in ${region}`,
          fix: 'choose another size or aws.instanceType, or another region',
        });
      }
      let imageId = typeof override.imageId === 'string' ? override.imageId : undefined;
      if (imageId === undefined) {
        const lookup = images[request.image];
        imageId = lookup && (await newestImage(lookup));
        if (imageId === undefined) {
          issues.push({
            path: 'image',
            message: lookup ? `no AMI matches ${lookup.namePattern} (owner ${lookup.owner}) in ${region}` : `no AMI lookup for "${request.image}"`,
            fix: `set aws.imageId, or use one of: ${Object.keys(images).join(', ')}`,
          });
        }
      }
      if (issues.length > 0 || instanceType === undefined || imageId === undefined) {
        throw new ValidationError(`Instance "${request.instance}" cannot be built on AWS in ${region}.`, { provider: AWS_PROVIDER_ID, issues });
      }
      return { size: instanceType, image: imageId };
    },
    adapt(resources: DesiredResource[]): AdaptResult {
      // What EC2 would refuse (VPC sizes, rules per group, tag limits): refused now, before anything is created.
      const limits = limitIssues(resources);
      if (limits.length > 0) throw new ValidationError('The environment asks for what AWS does not allow:', { provider: AWS_PROVIDER_ID, issues: limits });
      const placed = placeSubnets(resources, (instanceType) => zonesOffering.get(instanceType));
      if (placed.issues.length > 0) {
        throw new ValidationError(`Instances are placed where ${region} does not offer their instance types:`, { provider: AWS_PROVIDER_ID, issues: placed.issues });
      }
      const notes: PlanNote[] = [];
      const subnetCidrs = new Map(resources.flatMap((resource) => (resource.kind === 'subnet' ? [[resource.name, (resource as DesiredResource<'subnet'>).properties.cidr]] : [])));
      const adapted = placed.resources.map((resource): DesiredResource => {
        if (resource.kind === 'subnet') {
          const subnet = resource as DesiredResource<'subnet'>;
          notes.push({
            severity: 'info',
            path: resource.address,
            capability: 'nativeSubnets',
            message:
              subnet.properties.access === 'public'
                ? 'EC2 subnet with a route table sending 0.0.0.0/0 to the internet gateway; instances get public IPs'
                : 'EC2 subnet with its own route table and no route to the internet',
          });
          return resource;
        }
        if (resource.kind !== 'firewall') return resource;
        const firewall = resource as DesiredResource<'firewall'>;
        notes.push({ severity: 'info', path: resource.address, capability: 'firewallTargets', message: 'security group attached to its instances; firewall peers are group references' });
        const toCidr = (rules: typeof firewall.properties.ingress) =>
          rules.map((rule) => {
            if (!('subnet' in rule.peer)) return rule;
            const cidr = subnetCidrs.get(rule.peer.subnet);
            notes.push({ severity: 'info', path: resource.address, capability: 'firewallPeerBySubnet', message: `peer subnet "${rule.peer.subnet}" is honoured as its CIDR ${cidr}` });
            return cidr ? { ...rule, peer: { cidr } } : rule;
          });
        const properties = { ...firewall.properties, ingress: toCidr(firewall.properties.ingress), ...(firewall.properties.egress ? { egress: toCidr(firewall.properties.egress) } : {}) };
        return { ...firewall, properties, dependsOn: firewall.dependsOn.filter((address) => !address.startsWith('subnet.')) };
      });
      // After the notes on how each subnet is made, which read first.
      return { resources: adapted, notes: [...notes, ...placed.notes] };
    },
  };
}

/** The plugin: registers provider id `aws`. Options given here apply to every region resolved. */
export function awsProviderPlugin(options: Omit<AwsProviderOptions, 'region'> = {}): ArmadaPlugin {
  return providerPlugin({
    pluginId: '@armada/provider-aws',
    providerId: AWS_PROVIDER_ID,
    create: ({ region, options: specOptions }) => createAwsProvider({ ...options, ...(specOptions as Partial<AwsProviderOptions>), region }),
  });
}
