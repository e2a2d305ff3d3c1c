/**
 * DNS on DigitalOcean domains. A DigitalOcean record holds one value and has its own id, and there
 * are no batches and no upsert, so a record set (name, type, values, TTL) is several records:
 * changing it creates the new values first and deletes the old ones after, so the name always
 * resolves. Records the environment owns carry a TXT marker `_armada-<type>.<name>`, as on Route 53.
 */
import {
  OWNERSHIP_TAG_ENVIRONMENT,
  OWNERSHIP_TAG_RESOURCE,
  parseAddress,
  type DnsRecordProperties,
  type DnsService,
  type ObservedResource,
  type ResourceAddress,
  type ResourceService,
} from '@armada/core';
import { digitalocean } from './errors.js';
import { listAll, type DigitalOceanContext } from './services.js';

type RecordType = DnsRecordProperties['type'];
interface DoRecord {
  id: number;
  type: string;
  name: string;
  data: string;
  ttl: number;
}
const MANAGED: readonly string[] = ['A', 'AAAA', 'CNAME', 'TXT'];
const markerName = (name: string, type: string) => (name === '@' ? `_armada-${type.toLowerCase()}` : `_armada-${type.toLowerCase()}.${name}`);

export function dnsServices(context: DigitalOceanContext): { dns: DnsService; dnsRecordService: ResourceService<'dnsRecord'> } {
  const { client } = context;
  const records = (zone: string) =>
    listAll<DoRecord>('listDomainRecords', (page) => client.domain.listDomainRecords({ domain_name: zone, page, per_page: context.pageSize } as never) as never, 'domain_records');
  const create = (zone: string, name: string, type: string, data: string, ttl: number) =>
    digitalocean('createDomainRecord', () => client.domain.createDomainRecord({ domain_name: zone, name, type, data, ttl } as never));
  const remove = (zone: string, id: number) => digitalocean('deleteDomainRecord', () => client.domain.deleteDomainRecord({ domain_name: zone, domain_record_id: id }));

  /** Makes name/type hold exactly these values with this TTL: new values first, old ones last. */
  async function converge(record: DnsRecordProperties, existing: DoRecord[]): Promise<void> {
    const current = existing.filter((entry) => entry.name === record.name && entry.type === record.type);
    for (const value of record.values) {
      const same = current.find((entry) => entry.data === value);
      if (!same) await create(record.zone, record.name, record.type, value, record.ttl);
      else if (same.ttl !== record.ttl) {
        await digitalocean('updateDomainRecord', () => client.domain.updateDomainRecord({ domain_name: record.zone, domain_record_id: same.id, ttl: record.ttl } as never));
      }
    }
    for (const stale of current.filter((entry) => !record.values.includes(entry.data))) await remove(record.zone, stale.id);
  }

  const grouped = (zone: string, all: DoRecord[]): DnsRecordProperties[] => {
    const sets = new Map<string, DnsRecordProperties>();
    for (const entry of all) {
      if (!MANAGED.includes(entry.type) || entry.name.startsWith('_armada-')) continue;
      const key = `${entry.name}|${entry.type}`;
      const set = sets.get(key) ?? { zone, name: entry.name, type: entry.type as RecordType, ttl: entry.ttl, values: [] };
      set.values.push(entry.data);
      sets.set(key, set);
    }
    return [...sets.values()];
  };

  const dns: DnsService = {
    async listRecords(zone) {
      return grouped(zone, await records(zone));
    },
    async upsertRecord(record) {
      await converge(record, await records(record.zone));
    },
    async deleteRecord(record) {
      for (const entry of (await records(record.zone)).filter((candidate) => candidate.name === record.name && candidate.type === record.type)) await remove(record.zone, entry.id);
    },
  };

  const marker = (environment: string, address: ResourceAddress) => `${OWNERSHIP_TAG_ENVIRONMENT}=${environment};${OWNERSHIP_TAG_RESOURCE}=${address}`;

  const dnsRecordService: ResourceService<'dnsRecord'> = {
    kind: 'dnsRecord',
    replaceOn: ['zone', 'name', 'type'],
    async discover({ environment }) {
      const domains = await listAll<{ name: string }>('listDomains', (page) => client.domain.listDomains({ page, per_page: context.pageSize }) as never, 'domains');
      const observed: ObservedResource<'dnsRecord'>[] = [];
      for (const domain of domains) {
        const all = await records(domain.name);
        const sets = grouped(domain.name, all);
        for (const entry of all.filter((candidate) => candidate.type === 'TXT' && candidate.name.startsWith('_armada-'))) {
          const match = /^armada:environment=([^;]+);armada:resource=(.+)$/.exec(entry.data);
          if (!match || match[1] !== environment) continue;
          const address = match[2] as ResourceAddress;
          const type = entry.name.slice('_armada-'.length).split('.')[0]?.toUpperCase() ?? '';
          const name = entry.name.includes('.') ? entry.name.slice(entry.name.indexOf('.') + 1) : '@';
          const set = sets.find((candidate) => candidate.name === name && candidate.type === type);
          if (set) observed.push({ address, kind: 'dnsRecord', name: parseAddress(address).name, id: `${domain.name}/${name}/${type}`, properties: set, outputs: { markerId: entry.id } });
        }
      }
      return observed;
    },
    async create(resource, apply) {
      const record = resource.properties;
      const existing = await records(record.zone);
      await converge(record, existing);
      if (!existing.some((entry) => entry.type === 'TXT' && entry.name === markerName(record.name, record.type))) {
        await create(record.zone, markerName(record.name, record.type), 'TXT', marker(apply.environment, resource.address), record.ttl);
      }
      return { address: resource.address, kind: 'dnsRecord', name: resource.name, id: `${record.zone}/${record.name}/${record.type}`, properties: record, outputs: {} };
    },
    async update(resource, current) {
      await converge(resource.properties, await records(resource.properties.zone));
      return { ...current, properties: resource.properties };
    },
    async delete(current) {
      const record = current.properties;
      const all = await records(record.zone);
      const owned = all.filter(
        (entry) => (entry.name === record.name && entry.type === record.type) || (entry.type === 'TXT' && entry.name === markerName(record.name, record.type)),
      );
      for (const entry of owned) await remove(record.zone, entry.id);
    },
  };
  return { dns, dnsRecordService };
}
