/**
 * DNS on Route 53. `dns` is the direct service used at cutover (list, upsert, delete, each waited
 * for until the change is INSYNC). `dnsRecordService` manages the spec's records as environment
 * resources: Route 53 records cannot carry tags, so each owned record has a TXT marker
 * `_armada-<type>.<name>` naming its environment and address, the way external-dns keeps its
 * registry.
 */
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  type Change,
  type HostedZone,
  type ResourceRecordSet,
  type RRType,
} from '@aws-sdk/client-route-53';
import {
  NotFoundError,
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  parseAddress,
  type DnsRecordProperties,
  type DnsService,
  type ObservedResource,
  type ResourceAddress,
  type ResourceService,
} from '@armada/core';
import { waitFor, type AwsContext } from './context.js';
import { aws } from './errors.js';

type RecordType = DnsRecordProperties['type'];
const MANAGED_TYPES: readonly RecordType[] = ['A', 'AAAA', 'CNAME', 'TXT'];

const withDot = (name: string) => (name.endsWith('.') ? name : `${name}.`);
const withoutDot = (name: string) => (name.endsWith('.') ? name.slice(0, -1) : name);

export function recordFqdn(zone: string, name: string): string {
  return name === '@' ? withDot(zone) : withDot(`${name}.${withoutDot(zone)}`);
}

function relativeName(zone: string, fqdn: string): string {
  const zoneName = withDot(zone);
  if (fqdn === zoneName) return '@';
  return fqdn.endsWith(`.${zoneName}`) ? fqdn.slice(0, -(zoneName.length + 1)) : withoutDot(fqdn);
}

function markerFqdn(zone: string, name: string, type: RecordType): string {
  return withDot(`_armada-${type.toLowerCase()}.${withoutDot(recordFqdn(zone, name))}`);
}

/** Route 53 keeps TXT values quoted; the spec writes them bare. */
const encodeValue = (type: RecordType, value: string) => (type === 'TXT' ? JSON.stringify(value) : value);
const decodeValue = (type: RecordType, value: string) => (type === 'TXT' && value.startsWith('"') && value.endsWith('"') ? JSON.parse(value) : value);

function recordSet(record: DnsRecordProperties): ResourceRecordSet {
  return {
    Name: recordFqdn(record.zone, record.name),
    Type: record.type as RRType,
    TTL: record.ttl,
    ResourceRecords: record.values.map((value) => ({ Value: encodeValue(record.type, value) })),
  };
}

function fromRecordSet(zone: string, set: ResourceRecordSet): DnsRecordProperties | undefined {
  const type = set.Type as RecordType;
  if (!MANAGED_TYPES.includes(type) || !set.Name) return undefined;
  return {
    zone: withoutDot(zone),
    name: relativeName(zone, set.Name),
    type,
    ttl: set.TTL ?? 0,
    values: (set.ResourceRecords ?? []).map((record) => decodeValue(type, record.Value ?? '')),
  };
}

export function route53Dns(context: AwsContext): { dns: DnsService; dnsRecordService: ResourceService<'dnsRecord'> } {
  const { route53 } = context;
  const zoneIds = new Map<string, string>();

  async function allZones(): Promise<HostedZone[]> {
    const zones: HostedZone[] = [];
    let next: { DNSName?: string; HostedZoneId?: string } = {};
    for (;;) {
      const page = await aws('ListHostedZonesByName', () => route53.send(new ListHostedZonesByNameCommand(next)));
      zones.push(...(page.HostedZones ?? []));
      if (!page.IsTruncated || !page.NextDNSName) return zones;
      next = { DNSName: page.NextDNSName, ...(page.NextHostedZoneId ? { HostedZoneId: page.NextHostedZoneId } : {}) };
    }
  }

  async function zoneId(zone: string): Promise<string> {
    const cached = zoneIds.get(withDot(zone));
    if (cached) return cached;
    const page = await aws('ListHostedZonesByName', () => route53.send(new ListHostedZonesByNameCommand({ DNSName: withDot(zone), MaxItems: 1 })));
    const found = page.HostedZones?.find((hostedZone) => hostedZone.Name === withDot(zone));
    if (!found?.Id) {
      throw new NotFoundError(`No Route 53 hosted zone named "${withoutDot(zone)}" in this account. Create it first, or check the zone in the spec.`, {
        provider: 'aws',
        resource: zone,
      });
    }
    const id = found.Id.replace('/hostedzone/', '');
    zoneIds.set(withDot(zone), id);
    return id;
  }

  async function recordSets(hostedZoneId: string): Promise<ResourceRecordSet[]> {
    const sets: ResourceRecordSet[] = [];
    let start: { StartRecordName?: string; StartRecordType?: RRType } = {};
    for (;;) {
      const page = await aws('ListResourceRecordSets', () => route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId, ...start })));
      sets.push(...(page.ResourceRecordSets ?? []));
      if (!page.IsTruncated || !page.NextRecordName) return sets;
      start = { StartRecordName: page.NextRecordName, ...(page.NextRecordType ? { StartRecordType: page.NextRecordType } : {}) };
    }
  }

  async function change(hostedZoneId: string, changes: Change[], signal?: AbortSignal): Promise<void> {
    const submitted = await aws('ChangeResourceRecordSets', () =>
      route53.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: hostedZoneId, ChangeBatch: { Changes: changes } })),
    );
    const changeId = submitted.ChangeInfo?.Id;
    if (!changeId || submitted.ChangeInfo?.Status === 'INSYNC') return;
    await waitFor(
      context,
      `Route 53 change ${changeId} to be INSYNC`,
      async () => {
        const status = (await aws('GetChange', () => route53.send(new GetChangeCommand({ Id: changeId })))).ChangeInfo?.Status;
        return status === 'INSYNC' ? { done: true, value: undefined } : { done: false, ...(status ? { state: status } : {}) };
      },
      signal,
    );
  }

  /** The record set named `fqdn` of this type, as Route 53 holds it. */
  async function existingSet(hostedZoneId: string, fqdn: string, type: RRType): Promise<ResourceRecordSet | undefined> {
    const page = await aws('ListResourceRecordSets', () =>
      route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: hostedZoneId, StartRecordName: fqdn, StartRecordType: type, MaxItems: 1 })),
    );
    const set = page.ResourceRecordSets?.[0];
    return set?.Name === fqdn && set.Type === type ? set : undefined;
  }

  const dns: DnsService = {
    async listRecords(zone) {
      const sets = await recordSets(await zoneId(zone));
      return sets.flatMap((set) => fromRecordSet(zone, set) ?? []).filter((record) => !record.name.startsWith('_armada-'));
    },
    async upsertRecord(record, options) {
      await change(await zoneId(record.zone), [{ Action: 'UPSERT', ResourceRecordSet: recordSet(record) }], options?.signal);
    },
    async deleteRecord(record, options) {
      const id = await zoneId(record.zone);
      const existing = await existingSet(id, recordFqdn(record.zone, record.name), record.type as RRType);
      // DELETE must repeat the current values exactly, so it uses what Route 53 holds.
      if (existing) await change(id, [{ Action: 'DELETE', ResourceRecordSet: existing }], options?.signal);
    },
  };

  const marker = (environment: string, address: ResourceAddress) => `"${OWNERSHIP_TAG_ENVIRONMENT}=${environment};${OWNERSHIP_TAG_RESOURCE}=${address}"`;
  const markerSet = (record: DnsRecordProperties, value: string): ResourceRecordSet => ({
    Name: markerFqdn(record.zone, record.name, record.type),
    Type: 'TXT',
    TTL: record.ttl,
    ResourceRecords: [{ Value: value }],
  });

  const dnsRecordService: ResourceService<'dnsRecord'> = {
    kind: 'dnsRecord',
    replaceOn: ['zone', 'name', 'type'],
    async discover({ environment }) {
      const observed: ObservedResource<'dnsRecord'>[] = [];
      for (const hostedZone of await allZones()) {
        if (!hostedZone.Id || !hostedZone.Name) continue;
        const id = hostedZone.Id.replace('/hostedzone/', '');
        zoneIds.set(hostedZone.Name, id);
        const sets = await recordSets(id);
        for (const set of sets) {
          const value = set.Type === 'TXT' ? set.ResourceRecords?.[0]?.Value : undefined;
          const match = value?.match(/^"armada:environment=([^;]*);armada:resource=(.*)"$/);
          if (!match || match[1] !== environment || !set.Name) continue;
          const address = match[2] as ResourceAddress;
          const type = set.Name.slice('_armada-'.length, set.Name.indexOf('.')).toUpperCase() as RecordType;
          const recordName = set.Name.slice(set.Name.indexOf('.') + 1);
          const target = sets.find((candidate) => candidate.Name === recordName && candidate.Type === type);
          const properties = target && fromRecordSet(hostedZone.Name, target);
          if (!properties) continue;
          observed.push({ address, kind: 'dnsRecord', name: parseAddress(address).name, id: `${id}/${recordName}/${type}`, properties, outputs: { fqdn: recordName } });
        }
      }
      return observed;
    },
    async create(resource, apply) {
      const record = resource.properties;
      const id = await zoneId(record.zone);
      // CREATE, not UPSERT: a record someone else made is refused (the batch fails whole).
      await change(
        id,
        [
          { Action: 'CREATE', ResourceRecordSet: recordSet(record) },
          { Action: 'UPSERT', ResourceRecordSet: markerSet(record, marker(apply.environment, resource.address)) },
        ],
        apply.signal,
      );
      const fqdn = recordFqdn(record.zone, record.name);
      return { address: resource.address, kind: 'dnsRecord', name: resource.name, id: `${id}/${fqdn}/${record.type}`, properties: record, outputs: { fqdn } };
    },
    async update(resource, current, apply) {
      const record = resource.properties;
      await change(await zoneId(record.zone), [{ Action: 'UPSERT', ResourceRecordSet: recordSet(record) }], apply.signal);
      return { ...current, properties: record };
    },
    async delete(current, apply) {
      const record = current.properties;
      const id = await zoneId(record.zone);
      const existing = await existingSet(id, recordFqdn(record.zone, record.name), record.type as RRType);
      const ownership = await existingSet(id, markerFqdn(record.zone, record.name, record.type), 'TXT');
      const changes: Change[] = [existing, ownership].flatMap((set) => (set ? [{ Action: 'DELETE' as const, ResourceRecordSet: set }] : []));
      if (changes.length > 0) await change(id, changes, apply.signal);
    },
  };

  return { dns, dnsRecordService };
}
