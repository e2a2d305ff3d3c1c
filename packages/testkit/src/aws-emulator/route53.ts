/**
 * Route 53, REST-XML: hosted zones, atomic change batches (CREATE / DELETE / UPSERT), paginated
 * record listings, and changes that go PENDING -> INSYNC over time.
 */
import { createHash } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import { AwsFault } from './ec2.js';
import { named, type XmlValue } from './wire.js';

interface RecordSet {
  name: string;
  type: string;
  ttl: number;
  values: string[];
}
interface HostedZone {
  id: string;
  name: string;
  records: Map<string, RecordSet>;
}

const withDot = (name: string) => (name.endsWith('.') ? name : `${name}.`).toLowerCase();
const recordKey = (name: string, type: string) => `${withDot(name)}|${type}`;
/**
 * Route 53 lists records by name with labels reversed (test, example, www), then by type. The
 * separators sort below any character, so a name sorts before the names under it.
 */
const sortKey = (record: { name: string; type: string }) => `${record.name.split('.').reverse().join('\u0001')}\u0000${record.type}`;

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => ['Change', 'ResourceRecord'].includes(name) });

export class Route53State {
  private readonly zones = new Map<string, HostedZone>();
  private readonly changes = new Map<string, number>();
  private sequence = 0;

  constructor(private readonly changeSyncMs: number) {}

  private id(prefix: string): string {
    this.sequence++;
    return `${prefix}${createHash('sha1').update(`${prefix}/${this.sequence}`).digest('hex').slice(0, 13).toUpperCase()}`;
  }

  createHostedZone(name: string): string {
    const zone: HostedZone = { id: this.id('Z'), name: withDot(name), records: new Map() };
    zone.records.set(recordKey(zone.name, 'SOA'), { name: zone.name, type: 'SOA', ttl: 900, values: [`ns-1.awsdns.test. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400`] });
    zone.records.set(recordKey(zone.name, 'NS'), { name: zone.name, type: 'NS', ttl: 172800, values: ['ns-1.awsdns.test.', 'ns-2.awsdns.test.'] });
    this.zones.set(zone.id, zone);
    return zone.id;
  }

  private zone(id: string): HostedZone {
    const zone = this.zones.get(id.replace('/hostedzone/', ''));
    if (!zone) throw new AwsFault('NoSuchHostedZone', `No hosted zone found with ID: ${id}`, 404);
    return zone;
  }

  private zoneXml(zone: HostedZone): XmlValue {
    return { Id: `/hostedzone/${zone.id}`, Name: zone.name, CallerReference: zone.id, Config: { PrivateZone: false }, ResourceRecordSetCount: zone.records.size };
  }

  private changeInfo(id: string): XmlValue {
    const submitted = this.changes.get(id) ?? 0;
    return {
      Id: `/change/${id}`,
      Status: performance.now() - submitted >= this.changeSyncMs ? 'INSYNC' : 'PENDING',
      SubmittedAt: new Date(performance.timeOrigin + submitted).toISOString(),
    };
  }

  /**
   * Every hosted zone with its records as committed, for the DNS server: a change batch applies
   * to the zone at once (atomically) and its PENDING -> INSYNC is only the change's status, as
   * Route 53's servers may answer with a change before it is INSYNC everywhere.
   */
  dnsZones(): Array<{ name: string; records: RecordSet[] }> {
    return [...this.zones.values()].map((zone) => ({ name: zone.name, records: [...zone.records.values()].map((record) => ({ ...record, values: [...record.values] })) }));
  }

  /** Routes one Route 53 request; returns the root element name and its content. */
  handle(method: string, path: string, query: URLSearchParams, body: string): { root: string; content: XmlValue } {
    const parts = path.replace(/^\/2013-04-01\//, '').replace(/\/$/, '').split('/');
    if (method === 'POST' && parts[0] === 'hostedzone' && parts[2] === 'rrset') return { root: 'ChangeResourceRecordSetsResponse', content: this.changeRecords(parts[1] ?? '', body) };
    if (method === 'GET' && parts[0] === 'hostedzone' && parts[2] === 'rrset') return { root: 'ListResourceRecordSetsResponse', content: this.listRecords(parts[1] ?? '', query) };
    if (method === 'GET' && parts[0] === 'hostedzone' && parts.length === 2) {
      const zone = this.zone(parts[1] ?? '');
      return { root: 'GetHostedZoneResponse', content: { HostedZone: this.zoneXml(zone), DelegationSet: { NameServers: named('NameServer', ['ns-1.awsdns.test', 'ns-2.awsdns.test']) } } };
    }
    if (method === 'GET' && parts[0] === 'hostedzonesbyname') return { root: 'ListHostedZonesByNameResponse', content: this.listZones(query) };
    if (method === 'GET' && parts[0] === 'change') {
      const id = parts[1] ?? '';
      if (!this.changes.has(id)) throw new AwsFault('NoSuchChange', `A change with the specified change ID does not exist: ${id}`, 404);
      return { root: 'GetChangeResponse', content: { ChangeInfo: this.changeInfo(id) } };
    }
    throw new AwsFault('InvalidInput', `Unsupported Route 53 request: ${method} ${path}`);
  }

  private changeRecords(zoneId: string, body: string): XmlValue {
    const zone = this.zone(zoneId);
    type ParsedChange = { Action?: string; ResourceRecordSet?: { Name?: string; Type?: string; TTL?: string; ResourceRecords?: { ResourceRecord?: Array<{ Value: string }> } } };
    const request = parser.parse(body)?.ChangeResourceRecordSetsRequest?.ChangeBatch?.Changes?.Change as ParsedChange[] | undefined;
    if (!request || request.length === 0) throw new AwsFault('InvalidInput', 'ChangeBatch must contain at least one change');
    // Atomic: apply to a copy, keep it only if every change succeeds.
    const records = new Map(zone.records);
    const errors: string[] = [];
    for (const change of request) {
      const set = change.ResourceRecordSet ?? {};
      const record: RecordSet = {
        name: withDot(String(set.Name ?? '')),
        type: String(set.Type ?? ''),
        ttl: Number(set.TTL ?? 0),
        values: (set.ResourceRecords?.ResourceRecord ?? []).map((entry) => String(entry.Value)),
      };
      if (!record.name.endsWith(zone.name)) {
        errors.push(`RRSet with DNS name ${record.name} is not permitted in zone ${zone.name}`);
        continue;
      }
      const key = recordKey(record.name, record.type);
      const existing = records.get(key);
      const described = `[name='${record.name}', type='${record.type}']`;
      if (change.Action === 'CREATE') {
        if (existing) errors.push(`Tried to create resource record set ${described} but it already exists`);
        else records.set(key, record);
      } else if (change.Action === 'DELETE') {
        if (!existing) errors.push(`Tried to delete resource record set ${described} but it was not found`);
        else if (existing.ttl !== record.ttl || existing.values.join('\n') !== record.values.join('\n')) {
          errors.push(`Tried to delete resource record set ${described} but the values provided do not match the current values`);
        } else records.delete(key);
      } else if (change.Action === 'UPSERT') {
        records.set(key, record);
      } else {
        errors.push(`Invalid action ${String(change.Action)}`);
      }
    }
    if (errors.length > 0) throw new AwsFault('InvalidChangeBatch', `[${errors.join(', ')}]`);
    zone.records = records;
    const id = this.id('C');
    this.changes.set(id, performance.now());
    return { ChangeInfo: this.changeInfo(id) };
  }

  private listRecords(zoneId: string, query: URLSearchParams): XmlValue {
    const zone = this.zone(zoneId);
    const maxItems = Math.min(Number(query.get('maxitems') ?? 300), 300);
    const startName = query.get('name');
    const startType = query.get('type');
    const sorted = [...zone.records.values()].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    const from = startName ? sortKey({ name: withDot(startName), type: startType ?? '' }) : '';
    const remaining = sorted.filter((record) => sortKey(record) >= from);
    const page = remaining.slice(0, maxItems);
    const next = remaining[maxItems];
    return {
      ResourceRecordSets: named(
        'ResourceRecordSet',
        page.map((record) => ({ Name: record.name, Type: record.type, TTL: record.ttl, ResourceRecords: named('ResourceRecord', record.values.map((Value) => ({ Value }))) })),
      ),
      IsTruncated: next !== undefined,
      MaxItems: maxItems,
      NextRecordName: next?.name,
      NextRecordType: next?.type,
    };
  }

  private listZones(query: URLSearchParams): XmlValue {
    const maxItems = Math.min(Number(query.get('maxitems') ?? 100), 100);
    const dnsName = query.get('dnsname');
    const sorted = [...this.zones.values()].sort((a, b) => (sortKey({ name: a.name, type: a.id }) < sortKey({ name: b.name, type: b.id }) ? -1 : 1));
    const remaining = dnsName ? sorted.filter((zone) => sortKey({ name: zone.name, type: '' }) >= sortKey({ name: withDot(dnsName), type: '' })) : sorted;
    const page = remaining.slice(0, maxItems);
    const next = remaining[maxItems];
    return {
      HostedZones: named('HostedZone', page.map((zone) => this.zoneXml(zone))),
      DNSName: dnsName ?? undefined,
      IsTruncated: next !== undefined,
      MaxItems: maxItems,
      NextDNSName: next?.name,
      NextHostedZoneId: next ? `/hostedzone/${next.id}` : undefined,
    };
  }
}
