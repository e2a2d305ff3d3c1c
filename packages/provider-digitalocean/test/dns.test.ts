/**
 * DNS on DigitalOcean domains: a record set is several one-value records, changed new-first so
 * the name always resolves.
 */
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { createApiClient } from 'dots-wrapper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDigitalOceanProvider } from '../src/index.js';

describe('DigitalOcean DNS service', () => {
  let emulator: DigitalOceanEmulator;
  beforeAll(async () => {
    emulator = await startDigitalOceanEmulator();
    emulator.createDomain('shop.test');
  });
  afterAll(async () => {
    await emulator?.close();
  });
  const dnsOf = () => {
    const dns = createDigitalOceanProvider({ region: 'nyc3', token: 't', endpoint: `${emulator.endpoint}/v2` }).dns;
    if (!dns) throw new Error('the DigitalOcean provider has a DNS service');
    return dns;
  };

  it('upserts a set of values, lowers the TTL and switches the address', async () => {
    const dns = dnsOf();
    await dns.upsertRecord({ zone: 'shop.test', name: 'www', type: 'A', ttl: 3600, values: ['192.0.2.1', '192.0.2.2'] });
    expect((await dns.listRecords('shop.test')).filter((record) => record.name === 'www')).toEqual([
      { zone: 'shop.test', name: 'www', type: 'A', ttl: 3600, values: ['192.0.2.1', '192.0.2.2'] },
    ]);
    await dns.upsertRecord({ zone: 'shop.test', name: 'www', type: 'A', ttl: 60, values: ['192.0.2.1', '192.0.2.2'] });
    await dns.upsertRecord({ zone: 'shop.test', name: 'www', type: 'A', ttl: 60, values: ['198.51.100.9'] });
    expect((await dns.listRecords('shop.test')).filter((record) => record.name === 'www')).toEqual([
      { zone: 'shop.test', name: 'www', type: 'A', ttl: 60, values: ['198.51.100.9'] },
    ]);
  });

  it('switches a value with one create (and a delete of the old value)', async () => {
    const dns = dnsOf();
    await dns.upsertRecord({ zone: 'shop.test', name: 'api', type: 'A', ttl: 60, values: ['192.0.2.5'] });
    const before = emulator.calls('POST domains');
    await dns.upsertRecord({ zone: 'shop.test', name: 'api', type: 'A', ttl: 60, values: ['198.51.100.5'] });
    expect(emulator.calls('POST domains')).toBe(before + 1);
    const api = createApiClient({ token: 't', endpoint: `${emulator.endpoint}/v2` });
    const records = (await api.domain.listDomainRecords({ domain_name: 'shop.test', page: 1, per_page: 50 } as never)).data.domain_records;
    expect(records.filter((record) => record.name === 'api').map((record) => record.data)).toEqual(['198.51.100.5']);
  });

  it('deletes every value of a set, and tolerates one already gone', async () => {
    const dns = dnsOf();
    await dns.upsertRecord({ zone: 'shop.test', name: 'old', type: 'CNAME', ttl: 300, values: ['www.shop.test.'] });
    await dns.deleteRecord({ zone: 'shop.test', name: 'old', type: 'CNAME' });
    await dns.deleteRecord({ zone: 'shop.test', name: 'old', type: 'CNAME' });
    expect((await dns.listRecords('shop.test')).some((record) => record.name === 'old')).toBe(false);
  });
});
