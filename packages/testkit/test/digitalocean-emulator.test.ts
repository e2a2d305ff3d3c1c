/**
 * The DigitalOcean API emulator, through the real dots-wrapper client: pagination, rate-limit
 * headers, 429s, and the rules the provider meets.
 */
import { createApiClient } from 'dots-wrapper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../src/index.js';

type Failure = { response?: { status: number; data: { id: string; message: string }; headers: Record<string, string> } };
const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: Failure) => error.response);

describe('DigitalOcean emulator', () => {
  let emulator: DigitalOceanEmulator;
  let api: ReturnType<typeof createApiClient>;
  beforeAll(async () => {
    emulator = await startDigitalOceanEmulator({ bootMs: 40, retryAfterSeconds: 2 });
    api = createApiClient({ token: 'test', endpoint: `${emulator.endpoint}/v2` });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('pages lists with links.pages and meta.total, and sends rate-limit headers', async () => {
    for (let index = 0; index < 5; index++) await api.tag.createTag({ name: `page-${index}` });
    type Listing = { data: { tags: unknown[]; meta?: { total: number }; links?: { pages?: { next?: string; prev?: string } } }; headers: Record<string, string> };
    const first = (await api.tag.listTags({ page: 1, per_page: 2 })) as unknown as Listing;
    expect(first.data.tags).toHaveLength(2);
    expect(first.data.meta?.total).toBe(5);
    expect(first.data.links?.pages?.next).toMatch(/page=2&per_page=2$/);
    expect(first.headers['ratelimit-limit']).toBe('5000');
    expect(Number(first.headers['ratelimit-remaining'])).toBeLessThan(5000);
    const last = (await api.tag.listTags({ page: 3, per_page: 2 })) as unknown as Listing;
    expect(last.data.tags).toHaveLength(1);
    expect(last.data.links?.pages?.next).toBeUndefined();
    expect(last.data.links?.pages?.prev).toMatch(/page=2/);
  });

  it('answers throttled calls with 429, the error body and retry-after', async () => {
    emulator.faults.configure({ throttleRate: 1 });
    try {
      const response = await failureOf(api.vpc.listVpcs({ page: 1, per_page: 20 }));
      expect(response?.status).toBe(429);
      expect(response?.data).toMatchObject({ id: 'too_many_requests', message: 'API Rate limit exceeded.' });
      expect(response?.headers['retry-after']).toBe('2');
    } finally {
      emulator.faults.reset();
    }
  });

  it('keeps VPC ranges apart and refuses to delete a VPC with members (403)', async () => {
    const vpc = (await api.vpc.createVpc({ name: 'one', region: 'nyc3', ip_range: '10.20.0.0/16' })).data.vpc;
    const overlap = await failureOf(api.vpc.createVpc({ name: 'two', region: 'nyc3', ip_range: '10.20.128.0/20' }));
    expect(overlap?.status).toBe(422);
    const droplet = (await api.droplet.createDroplet({ name: 'web', region: 'nyc3', size: 's-1vcpu-1gb', image: 'debian-12-x64', vpc_uuid: vpc.id } as never)).data.droplet;
    expect(droplet.status).toBe('new');
    expect(droplet.networks.v4).toEqual([]);
    const refused = await failureOf(api.vpc.deleteVpc({ vpc_id: vpc.id }));
    expect(refused?.status).toBe(403);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const active = (await api.droplet.getDroplet({ droplet_id: droplet.id })).data.droplet;
    expect(active.status).toBe('active');
    expect(active.networks.v4.map((network) => network.type).sort()).toEqual(['private', 'public']);
    expect(active.networks.v4.find((network) => network.type === 'private')?.ip_address).toMatch(/^10\.20\./);
    await api.droplet.deleteDroplet({ droplet_id: droplet.id });
    expect((await failureOf(api.droplet.getDroplet({ droplet_id: droplet.id })))?.status).toBe(404);
    await api.vpc.deleteVpc({ vpc_id: vpc.id });
  });

  it('requires the tags a firewall names to exist, and tag names to match the pattern', async () => {
    const rule = { protocol: 'tcp', ports: '80', sources: { addresses: ['0.0.0.0/0'] } };
    const missing = await failureOf(api.firewall.createFirewall({ name: 'web', inbound_rules: [rule], outbound_rules: [], tags: ['not-made-yet'] } as never));
    expect(missing?.status).toBe(422);
    expect(missing?.data.message).toMatch(/must exist/);
    const badTag = await failureOf(api.tag.createTag({ name: 'has space' }));
    expect(badTag?.status).toBe(400);
    await api.tag.createTag({ name: 'made' });
    const firewall = (await api.firewall.createFirewall({ name: 'web', inbound_rules: [rule], outbound_rules: [], tags: ['made'] } as never)).data.firewall;
    expect(firewall.tags).toEqual(['made']);
  });

  it('refuses what DigitalOcean refuses: public VPC ranges, other protocols, rules without peers, bad names, a VPC of another region', async () => {
    const refused = async (promise: Promise<unknown>, message: RegExp) => {
      const response = await failureOf(promise);
      expect(response?.status).toBe(422);
      expect(response?.data.message).toMatch(message);
    };
    await refused(api.vpc.createVpc({ name: 'public', region: 'nyc3', ip_range: '8.8.0.0/16' }), /must be an RFC 1918 range/);
    await refused(api.vpc.createVpc({ name: 'huge', region: 'nyc3', ip_range: '10.0.0.0/8' }), /must be an RFC 1918 range from \/16 to \/28/);
    const ok = (await api.vpc.createVpc({ name: 'private', region: 'nyc3', ip_range: '172.16.0.0/16' })).data.vpc;
    const sources = { addresses: ['0.0.0.0/0'] };
    await refused(api.firewall.createFirewall({ name: 'sctp', inbound_rules: [{ protocol: 'sctp', ports: '22', sources }], outbound_rules: [] } as never), /protocol "sctp" is invalid/);
    await refused(api.firewall.createFirewall({ name: 'nobody', inbound_rules: [{ protocol: 'tcp', ports: '22', sources: {} }], outbound_rules: [] } as never), /every inbound rule must have sources/);
    await refused(api.firewall.createFirewall({ name: 'nowhere', inbound_rules: [], outbound_rules: [{ protocol: 'tcp', ports: '0' }] } as never), /every outbound rule must have destinations/);
    const droplet = { region: 'nyc3', size: 's-1vcpu-1gb', image: 'debian-12-x64' };
    await refused(api.droplet.createDroplet({ ...droplet, name: 'web_1' } as never), /must be a valid hostname/);
    await refused(api.droplet.createDroplet({ ...droplet, name: '-web' } as never), /must be a valid hostname/);
    await refused(api.droplet.createDroplet({ ...droplet, name: 'web', region: 'ams3', vpc_uuid: ok.id } as never), /must be in its VPC's region/);
    await api.vpc.deleteVpc({ vpc_id: ok.id }).catch(() => undefined);
  });

  it('refuses an unknown token with 401', async () => {
    const strict = await startDigitalOceanEmulator({ tokens: ['right'] });
    try {
      const wrong = createApiClient({ token: 'wrong', endpoint: `${strict.endpoint}/v2` });
      expect((await failureOf(wrong.account.getAccount()))?.status).toBe(401);
    } finally {
      await strict.close();
    }
  });
});
