/**
 * DNS cutover on every provider's DNS service: the in-memory cloud, Route 53 (emulator, real SDK)
 * and DigitalOcean domains (emulator, real dots-wrapper). Lower the TTL ahead of time, wait out the
 * old one, switch, check, and roll back to exactly what was there.
 */
import { ValidationError, lowerDnsTtl, rollbackDns, switchDns, type DnsService } from '@armada/core';
import { createAwsProvider } from '@armada/provider-aws';
import { createDigitalOceanProvider } from '@armada/provider-digitalocean';
import { InMemoryCloud, createInMemoryProvider, startAwsEmulator, startDigitalOceanEmulator } from '@armada/testkit';
import { describe, expect, it } from 'vitest';

type Harness = { dns: DnsService; close: () => Promise<void> };

const harnesses: Record<string, () => Promise<Harness>> = {
  'in-memory': async () => {
    const provider = createInMemoryProvider({ cloud: new InMemoryCloud({ zones: ['shop.test'] }), region: 'local-1' });
    return { dns: provider.dns as DnsService, close: async () => {} };
  },
  'route 53': async () => {
    const emulator = await startAwsEmulator({ changeSyncMs: 20 });
    emulator.createHostedZone('shop.test');
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, pollIntervalMs: 10 });
    return { dns: provider.dns as DnsService, close: () => emulator.close() };
  },
  'digitalocean domains': async () => {
    const emulator = await startDigitalOceanEmulator();
    emulator.createDomain('shop.test');
    const provider = createDigitalOceanProvider({ region: 'nyc3', token: 't', endpoint: `${emulator.endpoint}/v2` });
    return { dns: provider.dns as DnsService, close: () => emulator.close() };
  },
};

describe.each(Object.keys(harnesses))('DNS cutover on %s', (name) => {
  it('lowers TTLs ahead of time, waits out the old TTL, switches, checks, and rolls back', async () => {
    const { dns, close } = await (harnesses[name] as () => Promise<Harness>)();
    try {
      await dns.upsertRecord({ zone: 'shop.test', name: 'www', type: 'A', ttl: 3600, values: ['192.0.2.10', '192.0.2.11'] });
      await dns.upsertRecord({ zone: 'shop.test', name: 'api', type: 'A', ttl: 300, values: ['192.0.2.20'] });
      const options = { zone: 'shop.test', lowTtl: 60, records: [{ name: 'www', type: 'A' as const, to: ['198.51.100.10'] }, { name: 'api', type: 'A' as const, to: ['198.51.100.20'] }] };

      const snapshot = await lowerDnsTtl(dns, options);
      expect(snapshot.longestTtl).toBe(3600);
      const lowered = await dns.listRecords('shop.test');
      expect(lowered.find((record) => record.name === 'www')).toMatchObject({ ttl: 60, values: expect.arrayContaining(['192.0.2.10', '192.0.2.11']) });

      const waits: number[] = [];
      const report = await switchDns(dns, snapshot, { ...options, wait: async (ms) => void waits.push(ms) });
      expect(waits).toEqual([3_600_000]);
      expect(report.waitedMs).toBe(3_600_000);
      const switched = await dns.listRecords('shop.test');
      expect(switched.find((record) => record.name === 'www')).toMatchObject({ ttl: 60, values: ['198.51.100.10'] });
      expect(switched.find((record) => record.name === 'api')).toMatchObject({ ttl: 60, values: ['198.51.100.20'] });

      await rollbackDns(dns, snapshot);
      const restored = await dns.listRecords('shop.test');
      const www = restored.find((record) => record.name === 'www');
      expect(www?.ttl).toBe(3600);
      expect([...(www?.values ?? [])].sort()).toEqual(['192.0.2.10', '192.0.2.11']);
      expect(restored.find((record) => record.name === 'api')).toMatchObject({ ttl: 300, values: ['192.0.2.20'] });

      const missing = await lowerDnsTtl(dns, { zone: 'shop.test', records: [{ name: 'nope', type: 'A', to: ['198.51.100.1'] }] }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(missing)).toBe(true);
    } finally {
      await close();
    }
  });
});
