/**
 * The Route 53 service used at cutover: upsert, list, delete, each waited for until INSYNC.
 */
import { NotFoundError } from '@armada/core';
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../src/index.js';

describe('Route 53 DNS service', () => {
  let emulator: AwsEmulator;
  beforeAll(async () => {
    emulator = await startAwsEmulator({ changeSyncMs: 60 });
    emulator.createHostedZone('shop.test');
  });
  afterAll(async () => {
    await emulator?.close();
  });

  const dnsOf = () => {
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, pollIntervalMs: 10 });
    if (!provider.dns) throw new Error('the AWS provider has a DNS service');
    return provider.dns;
  };

  it('upserts and waits until the change is live, then lists it', async () => {
    const dns = dnsOf();
    const started = performance.now();
    await dns.upsertRecord({ zone: 'shop.test', name: 'www', type: 'A', ttl: 300, values: ['192.0.2.10'] });
    // The emulator keeps a change PENDING for 60 ms: the upsert must not return before INSYNC.
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    await dns.upsertRecord({ zone: 'shop.test', name: '@', type: 'TXT', ttl: 60, values: ['v=spf1 -all'] });
    expect(await dns.listRecords('shop.test')).toEqual(
      expect.arrayContaining([
        { zone: 'shop.test', name: 'www', type: 'A', ttl: 300, values: ['192.0.2.10'] },
        { zone: 'shop.test', name: '@', type: 'TXT', ttl: 60, values: ['v=spf1 -all'] },
      ]),
    );
  });

  it('lowers a TTL and switches the address, as a cutover does', async () => {
    const dns = dnsOf();
    await dns.upsertRecord({ zone: 'shop.test', name: 'api', type: 'A', ttl: 3600, values: ['192.0.2.20'] });
    await dns.upsertRecord({ zone: 'shop.test', name: 'api', type: 'A', ttl: 60, values: ['192.0.2.20'] });
    await dns.upsertRecord({ zone: 'shop.test', name: 'api', type: 'A', ttl: 60, values: ['198.51.100.7'] });
    const api = (await dns.listRecords('shop.test')).filter((record) => record.name === 'api');
    expect(api).toEqual([{ zone: 'shop.test', name: 'api', type: 'A', ttl: 60, values: ['198.51.100.7'] }]);
  });

  it('deletes with the values Route 53 holds, and tolerates a record already gone', async () => {
    const dns = dnsOf();
    await dns.upsertRecord({ zone: 'shop.test', name: 'old', type: 'CNAME', ttl: 300, values: ['www.shop.test'] });
    await dns.deleteRecord({ zone: 'shop.test', name: 'old', type: 'CNAME' });
    await dns.deleteRecord({ zone: 'shop.test', name: 'old', type: 'CNAME' });
    expect((await dns.listRecords('shop.test')).some((record) => record.name === 'old')).toBe(false);
  });

  it('names a zone that does not exist', async () => {
    const error = await dnsOf()
      .listRecords('nowhere.test')
      .catch((caught: unknown) => caught);
    expect(NotFoundError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe('No Route 53 hosted zone named "nowhere.test" in this account. Create it first, or check the zone in the spec.');
  });
});
