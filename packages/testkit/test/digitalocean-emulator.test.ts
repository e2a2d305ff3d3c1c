/**
 * The DigitalOcean API emulator, through the real dots-wrapper client: pagination, rate-limit
 * headers, 429s, the fields DigitalOcean's OpenAPI models require, droplet actions, and the rules
 * the provider meets.
 */
import { createApiClient } from 'dots-wrapper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../src/index.js';

type Failure = { response?: { status: number; data: { id: string; message: string; request_id?: string }; headers: Record<string, string> } };
const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: Failure) => error.response);

/** Polls `probe` until it gives a value (a bounded number of times; no duration is asserted). */
async function eventually<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('never happened');
}

type ModelName = keyof typeof MODELS;
/**
 * DigitalOcean's OpenAPI models (github.com/digitalocean/openapi at 7c1300c, under specification/),
 * transcribed: `required` is the model's `required` list; `documented` holds other properties it
 * defines (all of them, for the models that list none required), which DigitalOcean's examples show
 * on every object. `nested` names the model of a field (of each item, for an array).
 */
const MODELS = {
  droplet: {
    source: 'resources/droplets/models/droplet.yml',
    required: ['id', 'name', 'memory', 'vcpus', 'disk', 'locked', 'status', 'created_at', 'features', 'backup_ids', 'next_backup_window', 'snapshot_ids', 'image', 'volume_ids', 'size', 'size_slug', 'networks', 'region', 'tags'],
    // droplet_next_backup_window.yml is `nullable: true`: null while backups are off.
    nullable: ['next_backup_window'],
    nested: { size: 'size', region: 'region' },
  },
  size: { source: 'resources/sizes/models/size.yml', required: ['available', 'disk', 'memory', 'price_hourly', 'price_monthly', 'regions', 'slug', 'transfer', 'vcpus', 'description'] },
  region: { source: 'resources/regions/models/region.yml', required: ['available', 'features', 'name', 'sizes', 'slug'] },
  vpc: { source: 'resources/vpcs/models/vpc.yml', documented: ['id', 'urn', 'name', 'description', 'region', 'ip_range', 'default', 'created_at'] },
  firewall: {
    source: 'resources/firewalls/models/firewall.yml',
    documented: ['id', 'status', 'created_at', 'pending_changes', 'name', 'droplet_ids', 'tags', 'inbound_rules', 'outbound_rules'],
    nullable: ['droplet_ids', 'inbound_rules', 'outbound_rules'],
    nested: { inbound_rules: 'inboundRule', outbound_rules: 'outboundRule' },
  },
  inboundRule: { source: 'resources/firewalls/models/firewall_rule.yml', required: ['protocol', 'ports', 'sources'] },
  outboundRule: { source: 'resources/firewalls/models/firewall_rule.yml', required: ['protocol', 'ports', 'destinations'] },
  sshKey: { source: 'resources/ssh_keys/models/sshKeys.yml', required: ['public_key', 'name'], documented: ['id', 'fingerprint'] },
  tag: { source: 'resources/tags/models/tags.yml', documented: ['name', 'resources'], nested: { resources: 'tagResources' } },
  tagResources: { source: 'resources/tags/models/tags.yml (resources; tags_new.yml shows each kind)', documented: ['count', 'droplets', 'images', 'volumes', 'volume_snapshots', 'databases'] },
  domainRecord: {
    source: 'resources/domains/models/domain_record.yml',
    required: ['type'],
    documented: ['id', 'name', 'data', 'priority', 'port', 'ttl', 'weight', 'flags', 'tag'],
    nullable: ['priority', 'port', 'weight', 'flags', 'tag'],
  },
  action: {
    source: 'resources/actions/models/action.yml',
    documented: ['id', 'status', 'type', 'started_at', 'completed_at', 'resource_id', 'resource_type', 'region', 'region_slug'],
    nullable: ['completed_at', 'resource_id', 'region_slug'],
    nested: { region: 'region' },
  },
  error: { source: 'shared/models/error.yml', required: ['id', 'message'] },
} satisfies Record<string, Model>;
interface Model {
  source: string;
  required?: string[];
  documented?: string[];
  nullable?: string[];
  nested?: Record<string, string>;
}

/** What `value` lacks of its model, as `droplet.region.features is missing` lines. */
function missingFields(model: ModelName, value: unknown, at: string = model): string[] {
  if (typeof value !== 'object' || value === null) return [`${at} is ${value === null ? 'null' : typeof value}, not a ${model}`];
  const spec: Model = MODELS[model];
  const record = value as Record<string, unknown>;
  return [...(spec.required ?? []), ...(spec.documented ?? [])].flatMap((field) => {
    const found = record[field];
    if (found === undefined) return [`${at}.${field} is missing (${spec.source})`];
    if (found === null) return spec.nullable?.includes(field) ? [] : [`${at}.${field} is null (${spec.source})`];
    const nested = spec.nested?.[field] as ModelName | undefined;
    if (!nested) return [];
    return Array.isArray(found) ? found.flatMap((item, index) => missingFields(nested, item, `${at}.${field}[${index}]`)) : missingFields(nested, found, `${at}.${field}`);
  });
}

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
    // The tag endpoints' own error body (OpenAPI tags/responses/tags_bad_request.yml).
    expect(badTag?.data).toMatchObject({ error: expect.stringMatching(/contains invalid characters/), messages: null, root_causes: [expect.any(String)] });
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

  it('refuses VPC ranges that overlap the ones DigitalOcean reserves, or are not /16 to /28, with its 422 body', async () => {
    const refusal = async (ip_range: string) => (await failureOf(api.vpc.createVpc({ name: `r-${ip_range.replace(/[./]/g, '-')}`, region: 'fra1', ip_range })))?.data;
    // docs "How to Plan Your Custom VPC Network": 10.244.0.0/16, 10.245.0.0/16, 10.246.0.0/24, 10.229.0.0/16.
    for (const inside of ['10.244.0.0/16', '10.244.8.0/24', '10.245.255.240/28', '10.246.0.128/25', '10.246.0.0/16', '10.229.0.0/20']) {
      const body = await refusal(inside);
      expect(body, inside).toMatchObject({ id: 'unprocessable_entity', message: expect.stringMatching(/reserves for internal use/), request_id: expect.any(String) });
    }
    // OpenAPI vpc.yml ip_range: RFC 1918 only, "not smaller than /28 nor larger than /16".
    for (const outside of ['172.32.0.0/16', '192.169.0.0/16', '10.30.0.0/29', '10.30.0.0/15']) {
      expect((await refusal(outside))?.message, outside).toMatch(/must be an RFC 1918 range from \/16 to \/28/);
    }
    // Just beside a reserved range, and the sizes at the limits, are accepted.
    for (const fine of ['10.246.1.0/24', '10.243.0.0/16', '192.168.7.0/28']) {
      const vpc = (await api.vpc.createVpc({ name: `ok-${fine.replace(/[./]/g, '-')}`, region: 'fra1', ip_range: fine })).data.vpc;
      expect(vpc.ip_range).toBe(fine);
      await api.vpc.deleteVpc({ vpc_id: vpc.id });
    }
  });

  it('generates a /20 that overlaps no other VPC when no range is given (OpenAPI vpc.yml ip_range)', async () => {
    const fresh = await startDigitalOceanEmulator();
    try {
      const client = createApiClient({ token: 'test', endpoint: `${fresh.endpoint}/v2` });
      await client.vpc.createVpc({ name: 'taken', region: 'lon1', ip_range: '10.101.0.0/16' });
      const ranges = [];
      for (const name of ['first', 'second']) ranges.push((await client.vpc.createVpc({ name, region: 'lon1' })).data.vpc.ip_range);
      expect(ranges).toEqual(['10.100.0.0/20', '10.100.16.0/20']);
    } finally {
      await fresh.close();
    }
  });

  it('answers with the fields the OpenAPI models require: droplet, size, region, VPC, firewall, SSH key, tag, domain record, action, error', async () => {
    const shapes: Array<[ModelName, unknown]> = [];
    const vpc = (await api.vpc.createVpc({ name: 'shapes', region: 'sfo3', ip_range: '10.60.0.0/20' })).data.vpc;
    shapes.push(['vpc', vpc], ['vpc', (await api.vpc.getVpc({ vpc_id: vpc.id })).data.vpc]);
    shapes.push(...(await api.vpc.listVpcs({ page: 1, per_page: 50 })).data.vpcs.map((entry): [ModelName, unknown] => ['vpc', entry]));
    shapes.push(...(await api.region.listRegions({ page: 1, per_page: 50 })).data.regions.map((entry): [ModelName, unknown] => ['region', entry]));
    shapes.push(...(await api.size.listSizes({ page: 1, per_page: 50 })).data.sizes.map((entry): [ModelName, unknown] => ['size', entry]));

    const created = await api.droplet.createDroplet({ name: 'shapes', region: 'sfo3', size: 's-1vcpu-1gb', image: 'debian-12-x64', vpc_uuid: vpc.id } as never);
    const droplet = created.data.droplet;
    shapes.push(['droplet', droplet]);
    await eventually(async () => ((await api.droplet.getDroplet({ droplet_id: droplet.id })).data.droplet.status === 'active' ? true : undefined));
    shapes.push(['droplet', (await api.droplet.getDroplet({ droplet_id: droplet.id })).data.droplet]);
    const createAction = (created.data as unknown as { links: { actions: Array<{ id: number }> } }).links.actions[0]?.id ?? 0;
    shapes.push(['action', (await api.action.getAction({ action_id: createAction })).data.action]);
    const rename = (await api.droplet.renameDroplet({ droplet_id: droplet.id, name: 'shapes-2' })).data.action;
    shapes.push(['action', rename], ...(await api.droplet.listDropletActions({ droplet_id: droplet.id })).data.actions.map((entry): [ModelName, unknown] => ['action', entry]));

    await api.tag.createTag({ name: 'shapes' });
    await api.tag.tagResources({ tag_name: 'shapes', resources: [{ resource_id: String(droplet.id), resource_type: 'droplet' }] } as never);
    const tag = (await api.tag.getTag({ tag_name: 'shapes' })).data.tag;
    shapes.push(['tag', tag]);
    expect(tag.resources).toMatchObject({ count: 1, droplets: { count: 1, last_tagged_uri: expect.stringMatching(new RegExp(`/v2/droplets/${droplet.id}$`)) } });
    shapes.push(...(await api.droplet.listDroplets({ page: 1, per_page: 50, tag_name: 'shapes' })).data.droplets.map((entry): [ModelName, unknown] => ['droplet', entry]));

    const rule = { protocol: 'tcp', ports: '22', sources: { addresses: ['0.0.0.0/0'] } };
    const firewall = (await api.firewall.createFirewall({ name: 'shapes', inbound_rules: [rule], outbound_rules: [{ protocol: 'tcp', ports: '0', destinations: { addresses: ['0.0.0.0/0'] } }], tags: ['shapes'] } as never)).data.firewall;
    shapes.push(['firewall', firewall], ['firewall', (await api.firewall.getFirewall({ firewall_id: firewall.id as string })).data.firewall]);

    const key = (await api.sshKey.createSshKey({ name: 'shapes', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR shapes' })).data.ssh_key;
    shapes.push(['sshKey', key], ['sshKey', (await api.sshKey.getSshKey({ ssh_key_id: key.id })).data.ssh_key]);

    emulator.createDomain('shapes.test');
    const record = (await api.domain.createDomainRecord({ domain_name: 'shapes.test', type: 'A', name: 'www', data: '192.0.2.1', ttl: 60 } as never)).data.domain_record;
    shapes.push(['domainRecord', record], ['domainRecord', (await api.domain.getDomainRecord({ domain_name: 'shapes.test', domain_record_id: record.id })).data.domain_record]);

    shapes.push(['error', (await failureOf(api.droplet.getDroplet({ droplet_id: 1 })))?.data], ['error', (await failureOf(api.vpc.createVpc({ name: 'shapes', region: 'sfo3' })))?.data]);
    expect(shapes.flatMap(([model, value]) => missingFields(model, value))).toEqual([]);
  });

  it('renames a droplet with a rename action, which completes later (OpenAPI dropletActions_post)', async () => {
    const droplet = (await api.droplet.createDroplet({ name: 'old-name', region: 'sfo3', size: 's-1vcpu-1gb', image: 'debian-12-x64' } as never)).data.droplet;
    const action = (await api.droplet.renameDroplet({ droplet_id: droplet.id, name: 'new-name' })).data.action;
    expect(action).toMatchObject({ type: 'rename', status: 'in-progress', completed_at: null, resource_id: droplet.id, resource_type: 'droplet', region_slug: 'sfo3' });
    const done = await eventually(async () => {
      const current = (await api.action.getAction({ action_id: action.id })).data.action;
      return current.status === 'completed' ? current : undefined;
    });
    expect(done.completed_at).toEqual(expect.any(String));
    expect((await api.droplet.getDroplet({ droplet_id: droplet.id })).data.droplet.name).toBe('new-name');
    expect((await api.droplet.getDropletAction({ droplet_id: droplet.id, action_id: action.id })).data.action.type).toBe('rename');
    const refused = await failureOf(api.droplet.renameDroplet({ droplet_id: droplet.id, name: 'not_a_hostname' }));
    expect(refused?.data).toMatchObject({ id: 'unprocessable_entity', message: expect.stringMatching(/must be a valid hostname/) });
    expect((await failureOf(api.droplet.renameDroplet({ droplet_id: 999_999, name: 'x' })))?.status).toBe(404);
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
