/**
 * EC2 state and actions for one region, enforcing the rules the providers depend on: CIDR
 * containment and overlap, duplicates, dependency violations on delete, unknown ids as
 * `*.NotFound`, ClientToken idempotency, pagination, instance states over time, eventual
 * consistency (new ids invisible to Describe calls for a while), instance types offered per
 * zone, and EC2's limits on tags and security group rules.
 */
import { bootConsole, standInHostKey } from '../console.js';
import type { HostLab } from '../real-hosts/lab.js';
import type { LabHost, LabTopology, TrafficRule } from '../real-hosts/topology.js';
import { createHash } from 'node:crypto';
import { cidrContains, cidrsOverlap, parseCidr, type Cidr } from '@armada/core';
import type { FaultInjector, PortableOperation } from '../faults.js';
import { type QueryReader, wildcardMatches, type XmlValue } from './wire.js';
import type { Zone, ZoneCatalogue } from './zones.js';

export const OWNER_ID = '123456789012';

/** An error as EC2 reports it: a code, a message and an HTTP status. */
export class AwsFault extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

type Tags = Record<string, string>;
interface Entity {
  id: string;
  tags: Tags;
  createdAt: number;
}
interface Vpc extends Entity {
  cidr: string;
  dnsHostnames: boolean;
}
interface Subnet extends Entity {
  vpcId: string;
  cidr: string;
  zone: string;
  mapPublicIp: boolean;
  nextHost: number;
}
interface Gateway extends Entity {
  vpcId: string | undefined;
}
interface RouteTable extends Entity {
  vpcId: string;
  routes: Array<{ destination: string; gatewayId: string }>;
  associations: Array<{ id: string; subnetId?: string; main: boolean }>;
}
/** One permission per peer, as the emulator keeps them (Describe merges them as EC2 does). */
interface Permission {
  protocol: string;
  fromPort: number | undefined;
  toPort: number | undefined;
  cidr?: string;
  cidrIpv6?: string;
  groupId?: string;
  description?: string;
}
interface SecurityGroup extends Entity {
  vpcId: string;
  name: string;
  description: string;
  ingress: Permission[];
  egress: Permission[];
}
interface KeyPair extends Entity {
  name: string;
  fingerprint: string;
  publicKey: string;
}
interface Instance extends Entity {
  reservationId: string;
  imageId: string;
  instanceType: string;
  subnetId: string;
  vpcId: string;
  groupIds: string[];
  keyName: string | undefined;
  userData: string | undefined;
  privateIp: string;
  publicIp: string | undefined;
  clientToken: string | undefined;
  zone: string;
  stateTarget: 'running' | 'terminated';
  stateChangedAt: number;
}
export interface Image {
  imageId: string;
  name: string;
  ownerId: string;
  creationDate: string;
  architecture: string;
}

export interface Ec2Timing {
  bootMs: number;
  terminateMs: number;
  terminatedRetentionMs: number;
}

/** Debian's own AMIs log in as `admin`; the lab's one image is Debian 12 for x86_64. */
const REAL_HOST_IMAGE = /^debian-12-amd64-/;

function hostnameOf(instance: { privateIp: string }): string {
  return `ip-${instance.privateIp.replaceAll('.', '-')}`;
}

const STATE_CODES: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48 };

/** Tag limits, from AWS's "Tag your Amazon EC2 resources" (tag restrictions). */
const MAX_TAGS = 50;
const MAX_TAG_KEY = 128;
const MAX_TAG_VALUE = 256;
/** Inbound (and, apart, outbound) rules per security group: each CIDR and each group reference is one (Amazon VPC quotas). */
const MAX_RULES = 60;

/** `Tag.N.Key` / `Tag.N.Value` pairs, as TagSpecification and CreateTags send them. */
function tagList(tags: QueryReader[]): Tags {
  const result: Tags = {};
  for (const tag of tags) {
    const key = tag.string('Key');
    if (key) result[key] = tag.string('Value') ?? '';
  }
  return result;
}

/**
 * What EC2 refuses of tags added to a resource that has `existing`: a reserved `aws:` key, a key
 * over 128 or a value over 256 characters (InvalidParameterValue), more than 50 tags (TagLimitExceeded).
 */
function checkTags(added: Tags, existing: Tags = {}): void {
  for (const [key, value] of Object.entries(added)) {
    if (key.toLowerCase().startsWith('aws:')) {
      throw new AwsFault('InvalidParameterValue', `Value ( ${key} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use`);
    }
    if ([...key].length > MAX_TAG_KEY) throw new AwsFault('InvalidParameterValue', `Tag key exceeds the maximum length of ${MAX_TAG_KEY} characters.`);
    if ([...value].length > MAX_TAG_VALUE) throw new AwsFault('InvalidParameterValue', `Tag value exceeds the maximum length of ${MAX_TAG_VALUE} characters.`);
  }
  if (new Set([...Object.keys(existing), ...Object.keys(added)]).size > MAX_TAGS) {
    throw new AwsFault('TagLimitExceeded', 'The maximum number of Tags for a resource has been reached.');
  }
}

function tagsFrom(reader: QueryReader, resourceType: string): Tags {
  const specifications = reader.objects('TagSpecification').filter((specification) => specification.string('ResourceType') === resourceType);
  const tags = tagList(specifications.flatMap((specification) => specification.objects('Tag')));
  checkTags(tags);
  return tags;
}

const tagSet = (tags: Tags): XmlValue => Object.entries(tags).map(([key, value]) => ({ key, value }));

function cidrOf(text: string | undefined, code: string): Cidr {
  const parsed = parseCidr(text ?? '');
  if (!parsed.ok) throw new AwsFault(code, `The CIDR '${text}' is invalid.`);
  return parsed.cidr;
}

/** "A unique, case-sensitive string of up to 64 ASCII characters" (AWS docs, "Ensuring idempotency"), printable here. */
function clientTokenOf(reader: QueryReader): string | undefined {
  const token = reader.string('ClientToken');
  if (token !== undefined && (token.length > 64 || !/^[ -~]*$/.test(token))) {
    throw new AwsFault('InvalidParameterValue', `Value (${token}) for parameter clientToken is invalid. The client token must be up to 64 ASCII characters.`);
  }
  return token;
}

/**
 * OpenSSH public key text as ImportKeyPair takes it: "an RSA or ED25519 key pair" (AWS docs,
 * ImportKeyPair), its base64 blob starting with the same type name (moto test_key_pairs.py
 * refuses garbage and DSA keys).
 */
function isOpenSshKey(type: string, body: string): boolean {
  if (!/^ssh-(rsa|ed25519)$/.test(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return false;
  const blob = Buffer.from(body, 'base64');
  return blob.length > 4 && blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1') === type;
}

/** Filters: values ORed, filters ANDed, wildcards; `fields` gives an item's values for a filter name (undefined: no such filter). */
function matching<T>(items: Iterable<T>, reader: QueryReader, fields: (item: T, name: string) => string[] | undefined): T[] {
  const filters = reader.objects('Filter').map((filter) => ({ name: filter.string('Name') ?? '', values: filter.strings('Value') }));
  return [...items].filter((item) =>
    filters.every(({ name, values }) => {
      const candidates = fields(item, name);
      if (candidates === undefined) throw new AwsFault('InvalidParameterValue', `The filter '${name}' is invalid`);
      return candidates.some((candidate) => values.some((pattern) => wildcardMatches(pattern, candidate)));
    }),
  );
}

function required(reader: QueryReader, key: string): string {
  const value = reader.string(key);
  if (value === undefined || value === '') throw new AwsFault('MissingParameter', `The request must contain the parameter ${key}`);
  return value;
}

export class Ec2Region {
  private readonly vpcs = new Map<string, Vpc>();
  private readonly subnets = new Map<string, Subnet>();
  private readonly gateways = new Map<string, Gateway>();
  private readonly routeTables = new Map<string, RouteTable>();
  private readonly groups = new Map<string, SecurityGroup>();
  private readonly keyPairs = new Map<string, KeyPair>();
  private readonly instances = new Map<string, Instance>();
  private readonly clientTokens = new Map<string, { parameters: string; reservationId: string; instanceIds: string[] }>();
  private readonly routeTableTokens = new Map<string, string>();
  private sequence = 0;

  constructor(
    readonly region: string,
    private readonly faults: FaultInjector,
    private readonly timing: Ec2Timing,
    private readonly images: readonly Image[],
    private readonly catalogue: ZoneCatalogue,
    /** Seeded: which zone CreateSubnet picks when none is asked for. */
    private readonly random: () => number,
    /** The SSH host public keys (OpenSSH text) every instance prints on its console; default one of its own. */
    private readonly hostKeys: readonly string[] = [],
    /** Real hosts: each instance a Linux host on this machine, each security group nftables rules (real-hosts/lab.ts). */
    private readonly lab?: HostLab,
  ) {}

  /**
   * The console output of an instance that has booted (see console.ts); before its first boot ends
   * there is none.
   */
  private consoleOutput(instance: Instance): string | undefined {
    if (this.stateOf(instance) === 'pending') return undefined;
    const hostKeys = this.lab ? (this.lab.status(instance.id)?.hostKeys ?? []) : this.hostKeys.length > 0 ? this.hostKeys : [standInHostKey(instance.id)];
    return bootConsole(hostKeys, hostnameOf(instance));
  }

  private id(prefix: string): string {
    this.sequence++;
    return `${prefix}-${createHash('sha1').update(`${this.region}/${prefix}/${this.sequence}`).digest('hex').slice(0, 17)}`;
  }

  private visible<T extends Entity>(entity: T | undefined): T | undefined {
    return entity && this.faults.isVisible(entity.createdAt) ? entity : undefined;
  }

  private find<T extends Entity>(map: Map<string, T>, id: string | undefined, code: string, what: string): T {
    const entity = this.visible(id === undefined ? undefined : map.get(id));
    if (!entity) throw new AwsFault(code, `The ${what} ID '${id}' does not exist`);
    return entity;
  }

  stateOf(instance: Instance): string {
    const elapsed = performance.now() - instance.stateChangedAt;
    // A real host is running once its boot has finished (sshd listens), not before.
    if (instance.stateTarget === 'running') return elapsed >= this.timing.bootMs && (!this.lab || this.lab.status(instance.id)?.booted) ? 'running' : 'pending';
    return elapsed >= this.timing.terminateMs ? 'terminated' : 'shutting-down';
  }

  private live(instance: Instance): boolean {
    return this.stateOf(instance) !== 'terminated';
  }

  /** The visible items matching the filters, which also take tag:<key> and tag-key. */
  private filtered<T extends Entity>(items: Iterable<T>, reader: QueryReader, fields: (item: T, name: string) => string[] | undefined): T[] {
    return matching([...items].filter((item) => this.visible(item)), reader, (item, name) => {
      if (name.startsWith('tag:')) return item.tags[name.slice(4)] === undefined ? [] : [item.tags[name.slice(4)] as string];
      return name === 'tag-key' ? Object.keys(item.tags) : fields(item, name);
    });
  }

  /** MaxResults / NextToken over a list; the token is opaque to clients. */
  private page<T>(items: T[], reader: QueryReader): { items: T[]; nextToken?: string } {
    const token = reader.string('NextToken');
    let start = 0;
    if (token) {
      const decoded = Number(Buffer.from(token, 'base64url').toString('utf8').replace(/^offset:/, ''));
      if (!Number.isInteger(decoded) || decoded < 0 || decoded > items.length) throw new AwsFault('InvalidPaginationToken', `Invalid pagination token: ${token}`);
      start = decoded;
    }
    const max = reader.number('MaxResults');
    if (max === undefined) return { items: items.slice(start) };
    const end = start + Math.max(1, Math.min(max, 1000));
    return end < items.length ? { items: items.slice(start, end), nextToken: Buffer.from(`offset:${end}`).toString('base64url') } : { items: items.slice(start) };
  }

  private byIds<T extends Entity>(map: Map<string, T>, ids: string[], code: string, what: string): T[] | undefined {
    if (ids.length === 0) return undefined;
    return ids.map((id) => this.find(map, id, code, what));
  }

  private offeringsBy(locationType: string): Array<{ instanceType: string; location: string }> {
    const offered = [...this.catalogue.offerings];
    if (locationType === 'region') return offered.filter(([, zones]) => zones.length > 0).map(([instanceType]) => ({ instanceType, location: this.region }));
    const location = locationType === 'availability-zone' ? (zone: Zone) => zone.name : locationType === 'availability-zone-id' ? (zone: Zone) => zone.id : undefined;
    if (!location) throw new AwsFault('InvalidParameterValue', `Value (${locationType}) for parameter locationType is invalid.`);
    return this.catalogue.zones.flatMap((zone) => offered.filter(([, zones]) => zones.includes(zone.name)).map(([instanceType]) => ({ instanceType, location: location(zone) })));
  }

  /**
   * What EC2 launches where: a type it does not know is an invalid value; a type the subnet's zone
   * does not offer is Unsupported, naming the zones that do.
   */
  private checkOffered(instanceType: string, zone: string): void {
    const zones = this.catalogue.offerings.get(instanceType);
    if (!zones) throw new AwsFault('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`);
    if (zones.includes(zone)) return;
    if (zones.length === 0) throw new AwsFault('Unsupported', 'The requested configuration is currently not supported. Please check the documentation for supported configurations.');
    throw new AwsFault(
      'Unsupported',
      `Your requested instance type (${instanceType}) is not supported in your requested Availability Zone (${zone}). Please retry your request by not specifying an Availability Zone or choosing ${zones.join(', ')}.`,
    );
  }

  /** The zone a subnet is asked for, by name or id; none asked for, EC2 picks one ("Default: AWS selects one for you"). */
  private subnetZone(reader: QueryReader): Zone {
    const { zones } = this.catalogue;
    const name = reader.string('AvailabilityZone');
    const id = reader.string('AvailabilityZoneId');
    if (name === undefined && id === undefined) return zones[Math.floor(this.random() * zones.length)] as Zone;
    const zone = zones.find((candidate) => (name !== undefined ? candidate.name === name : candidate.id === id));
    if (!zone) {
      throw new AwsFault(
        'InvalidParameterValue',
        `Value (${name ?? id}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: ${zones.map((candidate) => candidate.name).join(', ')}.`,
      );
    }
    return zone;
  }

  // --- XML shapes ---------------------------------------------------------------------------

  private vpcXml(vpc: Vpc): XmlValue {
    return {
      vpcId: vpc.id,
      state: 'available',
      cidrBlock: vpc.cidr,
      dhcpOptionsId: 'dopt-default',
      instanceTenancy: 'default',
      isDefault: false,
      ownerId: OWNER_ID,
      cidrBlockAssociationSet: [{ associationId: `${vpc.id}-cidr`, cidrBlock: vpc.cidr, cidrBlockState: { state: 'associated' } }],
      tagSet: tagSet(vpc.tags),
    };
  }

  private subnetXml(subnet: Subnet): XmlValue {
    return {
      subnetId: subnet.id,
      state: 'available',
      vpcId: subnet.vpcId,
      cidrBlock: subnet.cidr,
      availabilityZone: subnet.zone,
      availabilityZoneId: this.catalogue.zones.find((zone) => zone.name === subnet.zone)?.id,
      availableIpAddressCount: 250,
      defaultForAz: false,
      mapPublicIpOnLaunch: subnet.mapPublicIp,
      ownerId: OWNER_ID,
      subnetArn: `arn:aws:ec2:${this.region}:${OWNER_ID}:subnet/${subnet.id}`,
      tagSet: tagSet(subnet.tags),
    };
  }

  private gatewayXml(gateway: Gateway): XmlValue {
    return {
      internetGatewayId: gateway.id,
      ownerId: OWNER_ID,
      attachmentSet: gateway.vpcId ? [{ vpcId: gateway.vpcId, state: 'available' }] : [],
      tagSet: tagSet(gateway.tags),
    };
  }

  private routeTableXml(table: RouteTable): XmlValue {
    const vpc = this.vpcs.get(table.vpcId);
    return {
      routeTableId: table.id,
      vpcId: table.vpcId,
      ownerId: OWNER_ID,
      routeSet: [
        { destinationCidrBlock: vpc?.cidr, gatewayId: 'local', state: 'active', origin: 'CreateRouteTable' },
        ...table.routes.map((route) => ({ destinationCidrBlock: route.destination, gatewayId: route.gatewayId, state: 'active', origin: 'CreateRoute' })),
      ],
      associationSet: table.associations.map((association) => ({
        routeTableAssociationId: association.id,
        routeTableId: table.id,
        subnetId: association.subnetId,
        main: association.main,
        associationState: { state: 'associated' },
      })),
      propagatingVgwSet: [],
      tagSet: tagSet(table.tags),
    };
  }

  /**
   * As EC2 answers them: one IpPermission per protocol and port range, listing every peer of it,
   * each with its own description (moto's aws-verified
   * test_authorize_security_group_rules_with_different_ipranges_or_prefixes).
   */
  private permissionsXml(permissions: Permission[]): XmlValue {
    const merged = new Map<string, { ipProtocol: string; fromPort?: number; toPort?: number; groups: XmlValue[]; ipRanges: XmlValue[]; ipv6Ranges: XmlValue[] }>();
    for (const permission of permissions) {
      const key = `${permission.protocol}/${permission.fromPort}/${permission.toPort}`;
      const entry = merged.get(key) ?? { ipProtocol: permission.protocol, fromPort: permission.fromPort, toPort: permission.toPort, groups: [], ipRanges: [], ipv6Ranges: [] };
      merged.set(key, entry);
      const { description } = permission;
      if (permission.groupId) entry.groups.push({ userId: OWNER_ID, groupId: permission.groupId, description });
      if (permission.cidr) entry.ipRanges.push({ cidrIp: permission.cidr, description });
      if (permission.cidrIpv6) entry.ipv6Ranges.push({ cidrIpv6: permission.cidrIpv6, description });
    }
    return [...merged.values()].map((entry) => ({ ...entry, prefixListIds: [] }));
  }

  private groupXml(group: SecurityGroup): XmlValue {
    return {
      ownerId: OWNER_ID,
      groupId: group.id,
      groupName: group.name,
      groupDescription: group.description,
      vpcId: group.vpcId,
      securityGroupArn: `arn:aws:ec2:${this.region}:${OWNER_ID}:security-group/${group.id}`,
      ipPermissions: this.permissionsXml(group.ingress),
      ipPermissionsEgress: this.permissionsXml(group.egress),
      tagSet: tagSet(group.tags),
    };
  }

  private instanceXml(instance: Instance): XmlValue {
    const state = this.stateOf(instance);
    return {
      instanceId: instance.id,
      imageId: instance.imageId,
      instanceState: { code: STATE_CODES[state], name: state },
      privateDnsName: `ip-${instance.privateIp.replaceAll('.', '-')}.ec2.internal`,
      dnsName: instance.publicIp && state !== 'terminated' ? `ec2-${instance.publicIp.replaceAll('.', '-')}.compute-1.amazonaws.com` : '',
      reason: '',
      keyName: instance.keyName,
      amiLaunchIndex: 0,
      instanceType: instance.instanceType,
      launchTime: new Date(performance.timeOrigin + instance.createdAt).toISOString(),
      placement: { availabilityZone: instance.zone, tenancy: 'default' },
      monitoring: { state: 'disabled' },
      subnetId: instance.subnetId,
      vpcId: instance.vpcId,
      privateIpAddress: instance.privateIp,
      ipAddress: state === 'terminated' ? undefined : instance.publicIp,
      groupSet: instance.groupIds.map((groupId) => ({ groupId, groupName: this.groups.get(groupId)?.name })),
      architecture: 'x86_64',
      rootDeviceType: 'ebs',
      rootDeviceName: '/dev/xvda',
      clientToken: instance.clientToken,
      tagSet: tagSet(instance.tags),
    };
  }

  private reservationXml(reservationId: string, instances: Instance[]): XmlValue {
    return { reservationId, ownerId: OWNER_ID, groupSet: [], instancesSet: instances.map((instance) => this.instanceXml(instance)) };
  }

  // --- actions ------------------------------------------------------------------------------

  /** Which portable operation an action is, for fault injection. */
  static operationOf(action: string): PortableOperation {
    if (action.startsWith('Describe')) return 'describe';
    const table: Record<string, PortableOperation> = {
      CreateVpc: 'createNetwork',
      ModifyVpcAttribute: 'createNetwork',
      CreateInternetGateway: 'createNetwork',
      AttachInternetGateway: 'createNetwork',
      DeleteVpc: 'deleteNetwork',
      DetachInternetGateway: 'deleteNetwork',
      DeleteInternetGateway: 'deleteNetwork',
      CreateSubnet: 'createSubnet',
      ModifySubnetAttribute: 'createSubnet',
      CreateRouteTable: 'createSubnet',
      CreateRoute: 'createSubnet',
      AssociateRouteTable: 'createSubnet',
      DeleteSubnet: 'deleteSubnet',
      DeleteRouteTable: 'deleteSubnet',
      DeleteRoute: 'deleteSubnet',
      DisassociateRouteTable: 'deleteSubnet',
      CreateSecurityGroup: 'createFirewall',
      AuthorizeSecurityGroupIngress: 'updateFirewall',
      AuthorizeSecurityGroupEgress: 'updateFirewall',
      RevokeSecurityGroupIngress: 'updateFirewall',
      RevokeSecurityGroupEgress: 'updateFirewall',
      DeleteSecurityGroup: 'deleteFirewall',
      ImportKeyPair: 'createKeyPair',
      DeleteKeyPair: 'deleteKeyPair',
      RunInstances: 'createInstance',
      ModifyInstanceAttribute: 'updateInstance',
      TerminateInstances: 'deleteInstance',
      CreateTags: 'updateTags',
      DeleteTags: 'updateTags',
    };
    return table[action] ?? 'describe';
  }

  handle(action: string, reader: QueryReader): XmlValue {
    const handler = this.actions[action];
    if (!handler) throw new AwsFault('InvalidAction', `The action ${action} is not valid for this web service.`);
    return handler(reader);
  }

  private readonly actions: Record<string, (reader: QueryReader) => XmlValue> = {
    DescribeRegions: () => ({ regionInfo: [] }),
    DescribeAvailabilityZones: (reader) => {
      const names = reader.strings('ZoneName');
      const ids = reader.strings('ZoneId');
      for (const name of names) if (!this.catalogue.zones.some((zone) => zone.name === name)) throw new AwsFault('InvalidParameterValue', `The zone '${name}' does not exist.`);
      const zones = this.catalogue.zones.filter((zone) => (names.length === 0 || names.includes(zone.name)) && (ids.length === 0 || ids.includes(zone.id)));
      const fields = (zone: Zone, name: string) =>
        ({ 'zone-name': [zone.name], 'zone-id': [zone.id], state: ['available'], 'region-name': [this.region], 'group-name': [this.region], 'zone-type': ['availability-zone'] })[name];
      return {
        availabilityZoneInfo: matching(zones, reader, fields).map((zone) => ({
          optInStatus: 'opt-in-not-required',
          zoneName: zone.name,
          zoneId: zone.id,
          groupName: this.region,
          networkBorderGroup: this.region,
          zoneType: 'availability-zone',
          zoneState: 'available',
          regionName: this.region,
          messageSet: [],
        })),
      };
    },
    /** Per zone (LocationType availability-zone or availability-zone-id), or per region (the default): a type any zone offers. */
    DescribeInstanceTypeOfferings: (reader) => {
      const locationType = reader.string('LocationType') ?? 'region';
      const offerings = matching(this.offeringsBy(locationType), reader, (offering, name) => ({ 'instance-type': [offering.instanceType], location: [offering.location] })[name]);
      const page = this.page(offerings, reader);
      return { instanceTypeOfferingSet: page.items.map((offering) => ({ ...offering, locationType })), nextToken: page.nextToken };
    },
    DescribeImages: (reader) => {
      const owners = reader.strings('Owner');
      const ids = reader.strings('ImageId');
      const filters = reader.objects('Filter').map((filter) => ({ name: filter.string('Name') ?? '', values: filter.strings('Value') }));
      const images = this.images.filter((image) => {
        if (owners.length > 0 && !owners.includes(image.ownerId)) return false;
        if (ids.length > 0 && !ids.includes(image.imageId)) return false;
        return filters.every(({ name, values }) => {
          const field = name === 'name' ? image.name : name === 'architecture' ? image.architecture : name === 'state' ? 'available' : name === 'image-id' ? image.imageId : undefined;
          return field !== undefined && values.some((pattern) => wildcardMatches(pattern, field));
        });
      });
      for (const id of ids) if (!images.some((image) => image.imageId === id)) throw new AwsFault('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
      return {
        imagesSet: images.map((image) => ({
          imageId: image.imageId,
          imageLocation: `${image.ownerId}/${image.name}`,
          imageState: 'available',
          imageOwnerId: image.ownerId,
          creationDate: image.creationDate,
          isPublic: true,
          architecture: image.architecture,
          imageType: 'machine',
          name: image.name,
          description: image.name,
          rootDeviceType: 'ebs',
          rootDeviceName: '/dev/xvda',
          virtualizationType: 'hvm',
          tagSet: [],
        })),
      };
    },

    CreateVpc: (reader) => {
      const cidrText = required(reader, 'CidrBlock');
      const cidr = cidrOf(cidrText, 'InvalidVpc.Range');
      if (cidr.family !== 4 || cidr.prefixLength < 16 || cidr.prefixLength > 28) {
        throw new AwsFault('InvalidVpc.Range', `The CIDR '${cidrText}' is invalid. The VPC size must be between /16 and /28.`);
      }
      const now = performance.now();
      const vpc: Vpc = { id: this.id('vpc'), cidr: cidrText, dnsHostnames: false, tags: tagsFrom(reader, 'vpc'), createdAt: now };
      this.vpcs.set(vpc.id, vpc);
      // As on AWS: a main route table and a default security group come with every VPC.
      const main: RouteTable = { id: this.id('rtb'), vpcId: vpc.id, routes: [], associations: [{ id: this.id('rtbassoc'), main: true }], tags: {}, createdAt: now };
      this.routeTables.set(main.id, main);
      const defaultGroup: SecurityGroup = {
        id: this.id('sg'),
        vpcId: vpc.id,
        name: 'default',
        description: 'default VPC security group',
        ingress: [],
        egress: [{ protocol: '-1', fromPort: undefined, toPort: undefined, cidr: '0.0.0.0/0' }],
        tags: {},
        createdAt: now,
      };
      this.groups.set(defaultGroup.id, defaultGroup);
      return { vpc: this.vpcXml(vpc) };
    },
    DescribeVpcs: (reader) => {
      const items = this.byIds(this.vpcs, reader.strings('VpcId'), 'InvalidVpcID.NotFound', 'vpc') ?? [...this.vpcs.values()];
      const matching = this.filtered(items, reader, (vpc, name) =>
        ({ 'vpc-id': [vpc.id], cidr: [vpc.cidr], 'cidr-block': [vpc.cidr], state: ['available'], 'is-default': ['false'] })[name],
      );
      const page = this.page(matching, reader);
      return { vpcSet: page.items.map((vpc) => this.vpcXml(vpc)), nextToken: page.nextToken };
    },
    ModifyVpcAttribute: (reader) => {
      const vpc = this.find(this.vpcs, required(reader, 'VpcId'), 'InvalidVpcID.NotFound', 'vpc');
      const hostnames = reader.object('EnableDnsHostnames')?.string('Value');
      if (hostnames !== undefined) vpc.dnsHostnames = hostnames === 'true';
      return { return: true };
    },
    DeleteVpc: (reader) => {
      const vpc = this.find(this.vpcs, required(reader, 'VpcId'), 'InvalidVpcID.NotFound', 'vpc');
      const dependency =
        [...this.subnets.values()].find((subnet) => subnet.vpcId === vpc.id)?.id ??
        [...this.gateways.values()].find((gateway) => gateway.vpcId === vpc.id)?.id ??
        [...this.groups.values()].find((group) => group.vpcId === vpc.id && group.name !== 'default')?.id ??
        [...this.routeTables.values()].find((table) => table.vpcId === vpc.id && !table.associations.some((association) => association.main))?.id ??
        [...this.instances.values()].find((instance) => instance.vpcId === vpc.id && this.live(instance))?.id;
      if (dependency) throw new AwsFault('DependencyViolation', `The vpc '${vpc.id}' has dependencies and cannot be deleted. (${dependency})`);
      this.vpcs.delete(vpc.id);
      for (const table of this.routeTables.values()) if (table.vpcId === vpc.id) this.routeTables.delete(table.id);
      for (const group of this.groups.values()) if (group.vpcId === vpc.id) this.groups.delete(group.id);
      return { return: true };
    },

    CreateSubnet: (reader) => {
      const vpc = this.find(this.vpcs, required(reader, 'VpcId'), 'InvalidVpcID.NotFound', 'vpc');
      const cidrText = required(reader, 'CidrBlock');
      const cidr = cidrOf(cidrText, 'InvalidSubnet.Range');
      if (!cidrContains(cidrOf(vpc.cidr, 'InvalidVpc.Range'), cidr)) throw new AwsFault('InvalidSubnet.Range', `The CIDR '${cidrText}' is invalid.`);
      const conflict = [...this.subnets.values()].find((subnet) => subnet.vpcId === vpc.id && cidrsOverlap(cidrOf(subnet.cidr, 'InvalidSubnet.Range'), cidr));
      if (conflict) throw new AwsFault('InvalidSubnet.Conflict', `The CIDR '${cidrText}' conflicts with another subnet`);
      const zone = this.subnetZone(reader).name;
      const subnet: Subnet = { id: this.id('subnet'), vpcId: vpc.id, cidr: cidrText, zone, mapPublicIp: false, nextHost: 4, tags: tagsFrom(reader, 'subnet'), createdAt: performance.now() };
      this.subnets.set(subnet.id, subnet);
      return { subnet: this.subnetXml(subnet) };
    },
    DescribeSubnets: (reader) => {
      const items = this.byIds(this.subnets, reader.strings('SubnetId'), 'InvalidSubnetID.NotFound', 'subnet') ?? [...this.subnets.values()];
      const matching = this.filtered(items, reader, (subnet, name) =>
        ({ 'vpc-id': [subnet.vpcId], 'subnet-id': [subnet.id], 'availability-zone': [subnet.zone], 'cidr-block': [subnet.cidr] })[name],
      );
      const page = this.page(matching, reader);
      return { subnetSet: page.items.map((subnet) => this.subnetXml(subnet)), nextToken: page.nextToken };
    },
    ModifySubnetAttribute: (reader) => {
      const subnet = this.find(this.subnets, required(reader, 'SubnetId'), 'InvalidSubnetID.NotFound', 'subnet');
      const value = reader.object('MapPublicIpOnLaunch')?.string('Value');
      if (value !== undefined) subnet.mapPublicIp = value === 'true';
      return { return: true };
    },
    DeleteSubnet: (reader) => {
      const subnet = this.find(this.subnets, required(reader, 'SubnetId'), 'InvalidSubnetID.NotFound', 'subnet');
      const instance = [...this.instances.values()].find((candidate) => candidate.subnetId === subnet.id && this.live(candidate));
      if (instance) throw new AwsFault('DependencyViolation', `The subnet '${subnet.id}' has dependencies and cannot be deleted.`);
      this.subnets.delete(subnet.id);
      for (const table of this.routeTables.values()) table.associations = table.associations.filter((association) => association.subnetId !== subnet.id);
      return { return: true };
    },

    CreateInternetGateway: (reader) => {
      const gateway: Gateway = { id: this.id('igw'), vpcId: undefined, tags: tagsFrom(reader, 'internet-gateway'), createdAt: performance.now() };
      this.gateways.set(gateway.id, gateway);
      return { internetGateway: this.gatewayXml(gateway) };
    },
    AttachInternetGateway: (reader) => {
      const gateway = this.find(this.gateways, required(reader, 'InternetGatewayId'), 'InvalidInternetGatewayID.NotFound', 'internetGateway');
      const vpc = this.find(this.vpcs, required(reader, 'VpcId'), 'InvalidVpcID.NotFound', 'vpc');
      if (gateway.vpcId) throw new AwsFault('Resource.AlreadyAssociated', `resource ${gateway.id} is already attached to network ${gateway.vpcId}`);
      if ([...this.gateways.values()].some((other) => other.vpcId === vpc.id)) {
        throw new AwsFault('Resource.AlreadyAssociated', `network ${vpc.id} already has an internet gateway attached`);
      }
      gateway.vpcId = vpc.id;
      return { return: true };
    },
    DetachInternetGateway: (reader) => {
      const gateway = this.find(this.gateways, required(reader, 'InternetGatewayId'), 'InvalidInternetGatewayID.NotFound', 'internetGateway');
      const vpcId = required(reader, 'VpcId');
      if (gateway.vpcId !== vpcId) throw new AwsFault('Gateway.NotAttached', `resource ${gateway.id} is not attached to network ${vpcId}`);
      gateway.vpcId = undefined;
      return { return: true };
    },
    DeleteInternetGateway: (reader) => {
      const gateway = this.find(this.gateways, required(reader, 'InternetGatewayId'), 'InvalidInternetGatewayID.NotFound', 'internetGateway');
      if (gateway.vpcId) throw new AwsFault('DependencyViolation', `The internetGateway '${gateway.id}' has dependencies and cannot be deleted.`);
      this.gateways.delete(gateway.id);
      return { return: true };
    },
    DescribeInternetGateways: (reader) => {
      const items = this.byIds(this.gateways, reader.strings('InternetGatewayId'), 'InvalidInternetGatewayID.NotFound', 'internetGateway') ?? [...this.gateways.values()];
      const matching = this.filtered(items, reader, (gateway, name) =>
        ({ 'internet-gateway-id': [gateway.id], 'attachment.vpc-id': gateway.vpcId ? [gateway.vpcId] : [], 'attachment.state': gateway.vpcId ? ['available'] : [] })[name],
      );
      const page = this.page(matching, reader);
      return { internetGatewaySet: page.items.map((gateway) => this.gatewayXml(gateway)), nextToken: page.nextToken };
    },

    CreateRouteTable: (reader) => {
      const vpc = this.find(this.vpcs, required(reader, 'VpcId'), 'InvalidVpcID.NotFound', 'vpc');
      // CreateRouteTable is idempotent by ClientToken, like RunInstances.
      const token = clientTokenOf(reader);
      const replayed = token === undefined ? undefined : this.routeTables.get(this.routeTableTokens.get(token) ?? '');
      const table: RouteTable = replayed ?? { id: this.id('rtb'), vpcId: vpc.id, routes: [], associations: [], tags: tagsFrom(reader, 'route-table'), createdAt: performance.now() };
      if (!replayed) {
        this.routeTables.set(table.id, table);
        if (token !== undefined) this.routeTableTokens.set(token, table.id);
      }
      return { routeTable: this.routeTableXml(table), clientToken: token };
    },
    DescribeRouteTables: (reader) => {
      const items = this.byIds(this.routeTables, reader.strings('RouteTableId'), 'InvalidRouteTableID.NotFound', 'routeTable') ?? [...this.routeTables.values()];
      const matching = this.filtered(items, reader, (table, name) =>
        ({
          'vpc-id': [table.vpcId],
          'route-table-id': [table.id],
          'association.subnet-id': table.associations.flatMap((association) => (association.subnetId ? [association.subnetId] : [])),
          'association.main': table.associations.some((association) => association.main) ? ['true'] : ['false'],
        })[name],
      );
      const page = this.page(matching, reader);
      return { routeTableSet: page.items.map((table) => this.routeTableXml(table)), nextToken: page.nextToken };
    },
    CreateRoute: (reader) => {
      const table = this.find(this.routeTables, required(reader, 'RouteTableId'), 'InvalidRouteTableID.NotFound', 'routeTable');
      const destination = required(reader, 'DestinationCidrBlock');
      const gatewayId = required(reader, 'GatewayId');
      this.find(this.gateways, gatewayId, 'InvalidInternetGatewayID.NotFound', 'internetGateway');
      if (table.routes.some((route) => route.destination === destination)) {
        throw new AwsFault('RouteAlreadyExists', `The route identified by ${destination} already exists.`);
      }
      table.routes.push({ destination, gatewayId });
      return { return: true };
    },
    DeleteRoute: (reader) => {
      const table = this.find(this.routeTables, required(reader, 'RouteTableId'), 'InvalidRouteTableID.NotFound', 'routeTable');
      const destination = required(reader, 'DestinationCidrBlock');
      if (!table.routes.some((route) => route.destination === destination)) throw new AwsFault('InvalidRoute.NotFound', `no route with destination-cidr-block ${destination}`);
      table.routes = table.routes.filter((route) => route.destination !== destination);
      return { return: true };
    },
    AssociateRouteTable: (reader) => {
      const table = this.find(this.routeTables, required(reader, 'RouteTableId'), 'InvalidRouteTableID.NotFound', 'routeTable');
      const subnet = this.find(this.subnets, required(reader, 'SubnetId'), 'InvalidSubnetID.NotFound', 'subnet');
      const holder = [...this.routeTables.values()].find((other) => other.associations.some((association) => association.subnetId === subnet.id));
      const existing = holder?.associations.find((association) => association.subnetId === subnet.id);
      // Associating again with the same table is no error: EC2 answers the existing association
      // (moto test_route_tables.py, test_route_table_associations). Another table's subnet is.
      if (holder === table && existing) return { associationId: existing.id, associationState: { state: 'associated' } };
      if (holder) throw new AwsFault('Resource.AlreadyAssociated', `the specified association for route table ${table.id} conflicts with an existing association`);
      const association = { id: this.id('rtbassoc'), subnetId: subnet.id, main: false };
      table.associations.push(association);
      return { associationId: association.id, associationState: { state: 'associated' } };
    },
    DisassociateRouteTable: (reader) => {
      const id = required(reader, 'AssociationId');
      const table = [...this.routeTables.values()].find((candidate) => candidate.associations.some((association) => association.id === id));
      if (!table) throw new AwsFault('InvalidAssociationID.NotFound', `The association ID '${id}' does not exist`);
      table.associations = table.associations.filter((association) => association.id !== id);
      return { return: true };
    },
    DeleteRouteTable: (reader) => {
      const table = this.find(this.routeTables, required(reader, 'RouteTableId'), 'InvalidRouteTableID.NotFound', 'routeTable');
      if (table.associations.length > 0) throw new AwsFault('DependencyViolation', `The routeTable '${table.id}' has dependencies and cannot be deleted.`);
      this.routeTables.delete(table.id);
      return { return: true };
    },

    CreateSecurityGroup: (reader) => {
      const name = required(reader, 'GroupName');
      const description = required(reader, 'GroupDescription');
      const vpc = this.find(this.vpcs, required(reader, 'VpcId'), 'InvalidVpcID.NotFound', 'vpc');
      if ([...this.groups.values()].some((group) => group.vpcId === vpc.id && group.name === name)) {
        throw new AwsFault('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpc.id}'`);
      }
      const group: SecurityGroup = {
        id: this.id('sg'),
        vpcId: vpc.id,
        name,
        description,
        ingress: [],
        egress: [{ protocol: '-1', fromPort: undefined, toPort: undefined, cidr: '0.0.0.0/0' }],
        tags: tagsFrom(reader, 'security-group'),
        createdAt: performance.now(),
      };
      this.groups.set(group.id, group);
      return { return: true, groupId: group.id, tagSet: tagSet(group.tags) };
    },
    DescribeSecurityGroups: (reader) => {
      const byName = reader.strings('GroupName');
      const items =
        this.byIds(this.groups, reader.strings('GroupId'), 'InvalidGroup.NotFound', 'security group') ??
        (byName.length > 0
          ? byName.map((name) => {
              const group = [...this.groups.values()].find((candidate) => candidate.name === name && this.visible(candidate));
              if (!group) throw new AwsFault('InvalidGroup.NotFound', `The security group '${name}' does not exist`);
              return group;
            })
          : [...this.groups.values()]);
      const matching = this.filtered(items, reader, (group, name) => ({ 'vpc-id': [group.vpcId], 'group-name': [group.name], 'group-id': [group.id] })[name]);
      const page = this.page(matching, reader);
      return { securityGroupInfo: page.items.map((group) => this.groupXml(group)), nextToken: page.nextToken };
    },
    AuthorizeSecurityGroupIngress: (reader) => this.authorize(reader, 'ingress'),
    AuthorizeSecurityGroupEgress: (reader) => this.authorize(reader, 'egress'),
    RevokeSecurityGroupIngress: (reader) => this.revoke(reader, 'ingress'),
    RevokeSecurityGroupEgress: (reader) => this.revoke(reader, 'egress'),
    DeleteSecurityGroup: (reader) => {
      const group = this.find(this.groups, required(reader, 'GroupId'), 'InvalidGroup.NotFound', 'security group');
      if (group.name === 'default') throw new AwsFault('CannotDelete', 'the specified group: "default" name: "default" cannot be deleted by a user');
      const user = [...this.instances.values()].find((instance) => instance.groupIds.includes(group.id) && this.live(instance));
      if (user) throw new AwsFault('DependencyViolation', `resource ${group.id} has a dependent object (${user.id})`);
      const referrer = [...this.groups.values()].find(
        (other) => other.id !== group.id && [...other.ingress, ...other.egress].some((permission) => permission.groupId === group.id),
      );
      if (referrer) throw new AwsFault('DependencyViolation', `resource ${group.id} has a dependent object (${referrer.id})`);
      this.groups.delete(group.id);
      return { return: true, groupId: group.id };
    },

    ImportKeyPair: (reader) => {
      const name = required(reader, 'KeyName');
      // Empty key material is a bad key, not a missing parameter (moto test_key_pairs_invalid).
      const encoded = reader.string('PublicKeyMaterial');
      if (encoded === undefined) throw new AwsFault('MissingParameter', 'The request must contain the parameter PublicKeyMaterial');
      const material = Buffer.from(encoded, 'base64').toString('utf8').trim();
      const [type, body] = material.split(/\s+/);
      if (!type || !body || !isOpenSshKey(type, body)) throw new AwsFault('InvalidKeyPair.Format', 'Key is not in valid OpenSSH public key format');
      if ([...this.keyPairs.values()].some((keyPair) => keyPair.name === name)) throw new AwsFault('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
      const fingerprint = `${createHash('sha256').update(Buffer.from(body, 'base64')).digest('base64').replace(/=+$/, '')}`;
      const keyPair: KeyPair = { id: this.id('key'), name, fingerprint, publicKey: `${type} ${body}`, tags: tagsFrom(reader, 'key-pair'), createdAt: performance.now() };
      this.keyPairs.set(keyPair.id, keyPair);
      return { keyFingerprint: fingerprint, keyName: name, keyPairId: keyPair.id, tagSet: tagSet(keyPair.tags) };
    },
    DescribeKeyPairs: (reader) => {
      const names = reader.strings('KeyName');
      const byId = this.byIds(this.keyPairs, reader.strings('KeyPairId'), 'InvalidKeyPair.NotFound', 'key pair');
      const items =
        byId ??
        (names.length > 0
          ? names.map((name) => {
              const keyPair = [...this.keyPairs.values()].find((candidate) => candidate.name === name && this.visible(candidate));
              if (!keyPair) throw new AwsFault('InvalidKeyPair.NotFound', `The key pair '${name}' does not exist`);
              return keyPair;
            })
          : [...this.keyPairs.values()]);
      const matching = this.filtered(items, reader, (keyPair, name) => ({ 'key-name': [keyPair.name], 'key-pair-id': [keyPair.id], fingerprint: [keyPair.fingerprint] })[name]);
      const includeKey = reader.string('IncludePublicKey') === 'true';
      return {
        keySet: matching.map((keyPair) => ({
          keyPairId: keyPair.id,
          keyName: keyPair.name,
          keyFingerprint: keyPair.fingerprint,
          keyType: keyPair.publicKey.startsWith('ssh-rsa') ? 'rsa' : 'ed25519',
          createTime: new Date(performance.timeOrigin + keyPair.createdAt).toISOString(),
          publicKey: includeKey ? `${keyPair.publicKey} ${keyPair.name}` : undefined,
          tagSet: tagSet(keyPair.tags),
        })),
      };
    },
    DeleteKeyPair: (reader) => {
      const id = reader.string('KeyPairId');
      const name = reader.string('KeyName');
      const keyPair = [...this.keyPairs.values()].find((candidate) => candidate.id === id || (id === undefined && candidate.name === name));
      // Like AWS for a name, a missing key is not an error; a missing id is.
      if (!keyPair && id !== undefined) throw new AwsFault('InvalidKeyPair.NotFound', `The key pair '${id}' does not exist`);
      if (keyPair) this.keyPairs.delete(keyPair.id);
      return { return: true, keyPairId: keyPair?.id };
    },

    GetConsoleOutput: (reader) => {
      const instance = this.find(this.instances, required(reader, 'InstanceId'), 'InvalidInstanceID.NotFound', 'instance');
      const output = this.consoleOutput(instance);
      return { instanceId: instance.id, timestamp: new Date().toISOString(), ...(output === undefined ? {} : { output: Buffer.from(output).toString('base64') }) };
    },
    RunInstances: (reader) => {
      const token = clientTokenOf(reader);
      const parameters = JSON.stringify(Object.entries(reader.data).filter(([key]) => key !== 'ClientToken').sort(([a], [b]) => a.localeCompare(b)));
      if (token) {
        const previous = this.clientTokens.get(token);
        if (previous) {
          if (previous.parameters !== parameters) throw new AwsFault('IdempotentParameterMismatch', `Arguments on this idempotent request are inconsistent with arguments used in previous request(s).`);
          const instances = previous.instanceIds.flatMap((id) => this.instances.get(id) ?? []);
          return this.reservationXml(previous.reservationId, instances) as Record<string, XmlValue>;
        }
      }
      const imageId = required(reader, 'ImageId');
      const image = this.images.find((candidate) => candidate.imageId === imageId);
      if (!image) throw new AwsFault('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
      if (this.lab && !REAL_HOST_IMAGE.test(image.name)) {
        throw new AwsFault('Unsupported', `The real-host lab boots Debian 12 (x86_64) only; image ${imageId} is ${image.name}.`);
      }
      const instanceType = reader.string('InstanceType') ?? 'm1.small';
      // The subnet, groups and public IP come either top-level or on the first network interface.
      const networkInterface = reader.objects('NetworkInterface')[0];
      const subnetId = networkInterface?.string('SubnetId') ?? reader.string('SubnetId');
      if (subnetId === undefined) throw new AwsFault('MissingParameter', 'The request must contain the parameter SubnetId (or NetworkInterface.1.SubnetId)');
      const subnet = this.find(this.subnets, subnetId, 'InvalidSubnetID.NotFound', 'subnet');
      this.checkOffered(instanceType, subnet.zone);
      const groupIds = networkInterface ? networkInterface.strings('SecurityGroupId') : reader.strings('SecurityGroupId');
      if (networkInterface && reader.strings('SecurityGroupId').length > 0) {
        throw new AwsFault('InvalidParameterCombination', 'Network interfaces and an instance-level security groups may not be specified on the same request');
      }
      const associatePublicIp = networkInterface?.string('AssociatePublicIpAddress');
      const publicIp = associatePublicIp === undefined ? subnet.mapPublicIp : associatePublicIp === 'true';
      for (const groupId of groupIds) {
        const group = this.find(this.groups, groupId, 'InvalidGroup.NotFound', 'security group');
        if (group.vpcId !== subnet.vpcId) throw new AwsFault('InvalidParameter', `Security group ${groupId} and subnet ${subnet.id} belong to different networks.`);
      }
      const keyName = reader.string('KeyName');
      if (keyName !== undefined && ![...this.keyPairs.values()].some((keyPair) => keyPair.name === keyName && this.visible(keyPair))) {
        throw new AwsFault('InvalidKeyPair.NotFound', `The key pair '${keyName}' does not exist`);
      }
      const count = reader.number('MinCount') ?? 1;
      const reservationId = this.id('r');
      const now = performance.now();
      const userData = reader.string('UserData');
      const instances = Array.from({ length: count }, (): Instance => {
        const host = subnet.nextHost++;
        const base = cidrOf(subnet.cidr, 'InvalidSubnet.Range').network + BigInt(host);
        const privateIp = [24n, 16n, 8n, 0n].map((shift) => ((base >> shift) & 255n).toString()).join('.');
        return {
          id: this.id('i'),
          reservationId,
          imageId,
          instanceType,
          subnetId: subnet.id,
          vpcId: subnet.vpcId,
          groupIds: groupIds.length > 0 ? groupIds : [...this.groups.values()].filter((group) => group.vpcId === subnet.vpcId && group.name === 'default').map((group) => group.id),
          keyName,
          userData: userData === undefined ? undefined : Buffer.from(userData, 'base64').toString('utf8'),
          privateIp,
          publicIp: publicIp ? (this.lab?.allocatePublicIp('203.0.113.0/24') ?? `203.0.113.${(this.sequence % 250) + 1}`) : undefined,
          clientToken: token,
          zone: subnet.zone,
          tags: tagsFrom(reader, 'instance'),
          createdAt: now,
          stateTarget: 'running',
          stateChangedAt: now,
        };
      });
      for (const instance of instances) this.instances.set(instance.id, instance);
      if (token) this.clientTokens.set(token, { parameters, reservationId, instanceIds: instances.map((instance) => instance.id) });
      return this.reservationXml(reservationId, instances) as Record<string, XmlValue>;
    },
    DescribeInstances: (reader) => {
      const ids = reader.strings('InstanceId');
      if (ids.length > 0 && reader.number('MaxResults') !== undefined) {
        throw new AwsFault('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
      }
      this.purgeTerminated();
      const items = this.byIds(this.instances, ids, 'InvalidInstanceID.NotFound', 'instance') ?? [...this.instances.values()];
      const matching = this.filtered(items, reader, (instance, name) =>
        ({
          'instance-state-name': [this.stateOf(instance)],
          'instance-id': [instance.id],
          'vpc-id': [instance.vpcId],
          'subnet-id': [instance.subnetId],
          'instance-type': [instance.instanceType],
          'client-token': instance.clientToken ? [instance.clientToken] : [],
        })[name],
      );
      const page = this.page(matching, reader);
      return { reservationSet: page.items.map((instance) => this.reservationXml(instance.reservationId, [instance])), nextToken: page.nextToken };
    },
    ModifyInstanceAttribute: (reader) => {
      const instance = this.find(this.instances, required(reader, 'InstanceId'), 'InvalidInstanceID.NotFound', 'instance');
      const groupIds = reader.strings('GroupId');
      if (groupIds.length === 0) throw new AwsFault('MissingParameter', 'The request must contain the parameter GroupId');
      for (const groupId of groupIds) this.find(this.groups, groupId, 'InvalidGroup.NotFound', 'security group');
      instance.groupIds = groupIds;
      return { return: true };
    },
    TerminateInstances: (reader) => {
      const instances = this.byIds(this.instances, reader.strings('InstanceId'), 'InvalidInstanceID.NotFound', 'instance') ?? [];
      return {
        instancesSet: instances.map((instance) => {
          const previous = this.stateOf(instance);
          if (instance.stateTarget !== 'terminated') {
            instance.stateTarget = 'terminated';
            instance.stateChangedAt = performance.now();
          }
          const current = this.stateOf(instance);
          return { instanceId: instance.id, currentState: { code: STATE_CODES[current], name: current }, previousState: { code: STATE_CODES[previous], name: previous } };
        }),
      };
    },

    CreateTags: (reader) => {
      const targets = reader.strings('ResourceId').map((id) => this.entity(id));
      const tags = tagList(reader.objects('Tag'));
      // All or nothing: one resource over its limit tags none.
      for (const target of targets) checkTags(tags, target.tags);
      for (const target of targets) Object.assign(target.tags, tags);
      return { return: true };
    },
    DeleteTags: (reader) => {
      const targets = reader.strings('ResourceId').map((id) => this.entity(id));
      for (const target of targets) for (const tag of reader.objects('Tag')) delete target.tags[tag.string('Key') ?? ''];
      return { return: true };
    },
  };

  private entity(id: string): Entity {
    const collections: Array<Map<string, Entity>> = [this.vpcs, this.subnets, this.gateways, this.routeTables, this.groups, this.keyPairs, this.instances];
    const found = collections.map((collection) => this.visible(collection.get(id))).find(Boolean);
    if (!found) throw new AwsFault('InvalidID', `The ID '${id}' is not valid`);
    return found;
  }

  private permissionsFrom(reader: QueryReader): Permission[] {
    const permissions: Permission[] = [];
    for (const entry of reader.objects('IpPermissions')) {
      const protocol = entry.string('IpProtocol') ?? '-1';
      const ports = protocol === '-1' ? { fromPort: undefined, toPort: undefined } : { fromPort: entry.number('FromPort'), toPort: entry.number('ToPort') };
      for (const range of entry.objects('IpRanges')) {
        cidrOf(range.string('CidrIp'), 'InvalidParameterValue');
        permissions.push({ protocol, ...ports, cidr: range.string('CidrIp'), ...(range.string('Description') ? { description: range.string('Description') } : {}) });
      }
      for (const range of entry.objects('Ipv6Ranges')) {
        permissions.push({ protocol, ...ports, cidrIpv6: range.string('CidrIpv6'), ...(range.string('Description') ? { description: range.string('Description') } : {}) });
      }
      for (const pair of entry.objects('Groups')) {
        const groupId = pair.string('GroupId');
        this.find(this.groups, groupId, 'InvalidGroup.NotFound', 'security group');
        permissions.push({ protocol, ...ports, groupId, ...(pair.string('Description') ? { description: pair.string('Description') } : {}) });
      }
    }
    return permissions;
  }

  /** Rules are the same rule whatever their description, as on AWS. */
  private static samePermission(a: Permission, b: Permission): boolean {
    return a.protocol === b.protocol && a.fromPort === b.fromPort && a.toPort === b.toPort && a.cidr === b.cidr && a.cidrIpv6 === b.cidrIpv6 && a.groupId === b.groupId;
  }

  private authorize(reader: QueryReader, direction: 'ingress' | 'egress'): XmlValue {
    const group = this.find(this.groups, required(reader, 'GroupId'), 'InvalidGroup.NotFound', 'security group');
    const permissions = this.permissionsFrom(reader);
    for (const permission of permissions) {
      if (group[direction].some((existing) => Ec2Region.samePermission(existing, permission))) {
        throw new AwsFault('InvalidPermission.Duplicate', `the specified rule "peer: ${permission.cidr ?? permission.groupId}, ${permission.protocol.toUpperCase()}, from port: ${permission.fromPort}, to port: ${permission.toPort}, ALLOW" already exists`);
      }
    }
    const rules = [...group[direction], ...permissions];
    // Counted apart for IPv4 and IPv6; a group reference counts in both (Amazon VPC quotas).
    if (rules.filter((rule) => rule.cidrIpv6 === undefined).length > MAX_RULES || rules.filter((rule) => rule.cidr === undefined).length > MAX_RULES) {
      throw new AwsFault('RulesPerSecurityGroupLimitExceeded', 'The maximum number of rules per security group has been reached.');
    }
    group[direction] = rules;
    return {
      return: true,
      securityGroupRuleSet: permissions.map((permission) => ({
        securityGroupRuleId: this.id('sgr'),
        groupId: group.id,
        groupOwnerId: OWNER_ID,
        isEgress: direction === 'egress',
        ipProtocol: permission.protocol,
        fromPort: permission.fromPort,
        toPort: permission.toPort,
        cidrIpv4: permission.cidr,
        cidrIpv6: permission.cidrIpv6,
        referencedGroupInfo: permission.groupId ? { groupId: permission.groupId } : undefined,
        description: permission.description,
      })),
    };
  }

  private revoke(reader: QueryReader, direction: 'ingress' | 'egress'): XmlValue {
    const group = this.find(this.groups, required(reader, 'GroupId'), 'InvalidGroup.NotFound', 'security group');
    const permissions = this.permissionsFrom(reader);
    for (const permission of permissions) {
      if (!group[direction].some((existing) => Ec2Region.samePermission(existing, permission))) {
        throw new AwsFault('InvalidPermission.NotFound', 'The specified rule does not exist in this security group.');
      }
    }
    group[direction] = group[direction].filter((existing) => !permissions.some((permission) => Ec2Region.samePermission(existing, permission)));
    return { return: true };
  }

  private purgeTerminated(): void {
    const now = performance.now();
    for (const instance of this.instances.values()) {
      if (this.stateOf(instance) === 'terminated' && now - instance.stateChangedAt > this.timing.terminatedRetentionMs) this.instances.delete(instance.id);
    }
  }

  // --- inspection, for tests ----------------------------------------------------------------

  /**
   * This region's VPCs and live instances as the real-host lab builds them: a subnet reaches the
   * internet when its route table (its own, else the VPC's main one) sends 0.0.0.0/0 to an attached
   * internet gateway; an instance's firewall is the union of its groups' rules, a group peer being
   * the private addresses of that group's live members.
   */
  labTopology(): LabTopology {
    const live = [...this.instances.values()].filter((instance) => instance.stateTarget === 'running');
    const attached = (gatewayId: string, vpcId: string) => this.gateways.get(gatewayId)?.vpcId === vpcId;
    const tableOf = (subnet: Subnet) =>
      [...this.routeTables.values()].find((table) => table.associations.some((association) => association.subnetId === subnet.id)) ??
      [...this.routeTables.values()].find((table) => table.vpcId === subnet.vpcId && table.associations.some((association) => association.main));
    const networks = [...this.vpcs.values()].map((vpc) => ({
      id: vpc.id,
      subnets: [...this.subnets.values()]
        .filter((subnet) => subnet.vpcId === vpc.id)
        .map((subnet) => ({ id: subnet.id, cidr: subnet.cidr, internet: (tableOf(subnet)?.routes ?? []).some((route) => route.destination === '0.0.0.0/0' && attached(route.gatewayId, vpc.id)) })),
    }));
    const members = (groupId: string) => live.filter((instance) => instance.groupIds.includes(groupId)).map((instance) => instance.privateIp);
    const rules = (permissions: readonly Permission[]): TrafficRule[] =>
      permissions.flatMap((permission): TrafficRule[] => {
        const peers = permission.cidr ? [permission.cidr] : permission.groupId ? members(permission.groupId) : [];
        const protocols: Record<string, TrafficRule['protocol']> = { '-1': 'all', tcp: 'tcp', '6': 'tcp', udp: 'udp', '17': 'udp', icmp: 'icmp', '1': 'icmp' };
        const protocol = protocols[permission.protocol];
        if (!protocol || peers.length === 0) return [];
        const ports = (protocol === 'tcp' || protocol === 'udp') && permission.fromPort !== undefined && permission.fromPort !== -1 ? { from: permission.fromPort, to: permission.toPort ?? permission.fromPort } : undefined;
        return [{ protocol, ...(ports ? { ports } : {}), peers }];
      });
    const hosts = live.map((instance): LabHost => {
      const groups = instance.groupIds.flatMap((groupId) => this.groups.get(groupId) ?? []);
      const publicKey = [...this.keyPairs.values()].find((keyPair) => keyPair.name === instance.keyName)?.publicKey;
      return {
        id: instance.id,
        networkId: instance.vpcId,
        subnetId: instance.subnetId,
        privateIp: instance.privateIp,
        ...(instance.publicIp ? { publicIp: instance.publicIp } : {}),
        hostname: hostnameOf(instance),
        login: { user: 'admin', authorizedKeys: publicKey ? [publicKey] : [] },
        running: true,
        firewall: { inbound: rules(groups.flatMap((group) => group.ingress)), outbound: rules(groups.flatMap((group) => group.egress)) },
      };
    });
    return { networks, hosts };
  }

  inventory() {
    return {
      vpcs: this.vpcs.size,
      subnets: this.subnets.size,
      internetGateways: this.gateways.size,
      routeTables: this.routeTables.size,
      securityGroups: this.groups.size,
      keyPairs: this.keyPairs.size,
      instances: [...this.instances.values()].filter((instance) => this.live(instance)).length,
    };
  }

  instancesTagged(tags: Tags): Array<{ instanceId: string; state: string; tags: Tags }> {
    return [...this.instances.values()]
      .filter((instance) => this.live(instance) && Object.entries(tags).every(([key, value]) => instance.tags[key] === value))
      .map((instance) => ({ instanceId: instance.id, state: this.stateOf(instance), tags: { ...instance.tags } }));
  }
}
