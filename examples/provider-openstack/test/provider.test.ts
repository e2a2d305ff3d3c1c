/**
 * The pieces around the services: error mapping from each service's body, the client's Keystone
 * session (credentials, region, a revoked token), sizes and images, and adapt().
 */
import {
  AlreadyExistsError,
  DependencyViolationError,
  NotFoundError,
  ThrottledError,
  UnsupportedError,
  ValidationError,
  compileEnvironment,
  executePlan,
  parseSpec,
  plan,
  type EnvironmentSpecInput,
} from '@armada/core';
import { InMemoryCloud, createInMemoryProvider } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenStackClient, adaptToOpenStack, createOpenStackProvider, mapOpenStackError, parseFault, serverEnvironmentTag, type OpenStackProviderOptions } from '../src/index.js';
import { EMULATOR_REGION as REGION, providerOptionsFor, startOpenStackEmulator, type OpenStackEmulator } from './emulator/index.js';


describe('OpenStack error bodies mapped to typed errors', () => {
  const map = (status: number, body: unknown, headers: Record<string, string> = {}) => mapOpenStackError(parseFault(status, body, new Headers(headers)), 'DELETE /v2.0/networks');

  it('maps Neutron, Nova and Keystone bodies', () => {
    const inUse = map(409, { NeutronError: { type: 'NetworkInUse', message: 'ports still in use', detail: '' } }, { 'x-openstack-request-id': 'req-1' });
    expect(DependencyViolationError.isInstance(inUse)).toBe(true);
    expect(inUse).toMatchObject({ retryable: true, requestId: 'req-1', provider: 'openstack' });
    expect(AlreadyExistsError.isInstance(map(409, { NeutronError: { type: 'SecurityGroupRuleExists', message: 'exists' } }))).toBe(true);
    expect(AlreadyExistsError.isInstance(map(409, { conflictingRequest: { code: 409, message: "Key pair 'k' already exists." } }))).toBe(true);
    expect(NotFoundError.isInstance(map(404, { itemNotFound: { code: 404, message: 'Instance x could not be found.' } }))).toBe(true);
    const throttled = map(429, { overLimit: { code: 429, message: 'slow down', retryAfter: '3' } }, { 'retry-after': '3' });
    expect(ThrottledError.isInstance(throttled) && throttled.retryAfterMs).toBe(3000);
    expect(ThrottledError.isInstance(map(503, '<html>Service Unavailable</html>'))).toBe(true);
    const denied = map(401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    expect(ValidationError.isInstance(denied) && denied.issues[0]?.fix).toMatch(/OS_PASSWORD/);
    expect(ValidationError.isInstance(map(400, { NeutronError: { type: 'HTTPBadRequest', message: 'Invalid input for cidr' } }))).toBe(true);
  });
});

describe('the OpenStack provider against the emulator', () => {
  let emulator: OpenStackEmulator;
  const options = (extra: Partial<OpenStackProviderOptions> = {}): OpenStackProviderOptions => providerOptionsFor(emulator, extra);

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({ bootMs: 40, deleteMs: 10, retryAfterSeconds: 0 });
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('verify() names the missing credentials and their variables', async () => {
    const saved = process.env.OS_PASSWORD;
    delete process.env.OS_PASSWORD;
    try {
      const error = await createOpenStackProvider(options({ password: undefined })).verify?.().catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error) && error.issues).toEqual([{ path: 'password', message: 'not given', fix: 'pass `password` to openStackProviderPlugin(), or set OS_PASSWORD' }]);
    } finally {
      if (saved !== undefined) process.env.OS_PASSWORD = saved;
    }
  });

  it('verify() refuses a region the catalog lacks, listing those it has', async () => {
    const error = await createOpenStackProvider(options({ region: 'region-z' })).verify?.().catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error) && error.issues[0]).toMatchObject({ path: 'provider.region', fix: 'use one of: region-a.geo-1, region-b.geo-1' });
  });

  it('verify() refuses an external network that does not exist', async () => {
    const error = await createOpenStackProvider(options({ externalNetwork: 'Ext-Net-2' })).verify?.().catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error) && error.issues[0]).toMatchObject({ path: 'externalNetwork', fix: 'use one of: Ext-Net' });
    await expect(createOpenStackProvider(options({ externalNetwork: 'Ext-Net' })).verify?.()).resolves.toBeUndefined();
  });

  it('authenticates again when the token is revoked', async () => {
    const provider = createOpenStackProvider(options());
    await provider.verify?.();
    const before = emulator.calls('POST keystone auth');
    emulator.revokeTokens();
    await expect(provider.services.network.discover({ environment: 'nobody', findById: () => undefined })).resolves.toEqual([]);
    expect(emulator.calls('POST keystone auth')).toBe(before + 1);
  });

  it('maps portable sizes to flavors, and honours openstack.flavor and openstack.image', async () => {
    const provider = createOpenStackProvider(options());
    const resolve = (size: Parameters<typeof provider.resolveInstanceType>[0]['size'], extra: Record<string, unknown> = {}, image = 'debian-12') =>
      Promise.resolve(provider.resolveInstanceType({ instance: 'x', size, image, options: extra }));
    expect((await resolve('small')).size).toBe('standard.small');
    expect((await resolve('medium')).size).toBe('standard.medium');
    expect((await resolve('large')).size).toBe('standard.large');
    expect((await resolve({ cpus: 8, memoryGiB: 16 })).size).toBe('standard.2xlarge');
    expect((await resolve('small', { flavor: 'standard.xlarge' })).size).toBe('standard.xlarge');
    const debian = (await resolve('small')).image;
    expect((await resolve('small', { image: 'Debian 12 (bookworm)' })).image).toBe(debian);
    expect((await resolve('small', { image: debian })).image).toBe(debian);
    const unknown = await resolve('small', { flavor: 'm1.tiny' }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(unknown) && unknown.issues[0]).toMatchObject({ path: 'openstack.flavor', message: 'flavor m1.tiny is not offered in region-b.geo-1' });
    const noImage = await resolve('small', {}, 'plan9-4').catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(noImage) && noImage.issues[0]?.path).toBe('image');
  });

  it('reads the flavor override from the spec block named after the provider', async () => {
    const provider = createOpenStackProvider(options());
    const spec = await parseSpec({
      name: 'override',
      provider: { id: 'openstack', region: REGION },
      network: { name: 'net', cidr: '10.9.0.0/16', subnets: [{ name: 'a', cidr: '10.9.1.0/24', access: 'private' }] },
      instances: [{ name: 'big', size: 'small', image: 'debian-12', subnet: 'a', openstack: { flavor: 'standard.large' }, aws: { instanceType: 'm3.medium' } }],
    });
    const [instance] = (await compileEnvironment(spec, provider)).filter((resource) => resource.kind === 'instance');
    expect(instance?.properties).toMatchObject({ size: 'standard.large' });
  });

  it('follows list pages and keeps their filters (limit and marker)', async () => {
    const tokenOf = async () =>
      (
        await fetch(`${emulator.authUrl}/auth/tokens`, {
          method: 'POST',
          body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'demo', password: 'secret' } } }, scope: { project: { name: 'demo' } } } }),
        })
      ).headers.get('x-subject-token') ?? '';
    const token = await tokenOf();
    const post = (path: string, body: unknown) => fetch(`${emulator.endpoint}${path}`, { method: 'POST', headers: { 'x-auth-token': token }, body: JSON.stringify(body) });
    for (const name of ['a', 'b', 'c']) await post('/v2.0/networks', { network: { name, tags: ['page-test'] } });
    await post('/v2.0/networks', { network: { name: 'other', tags: [] } });
    const first = (await (await fetch(`${emulator.endpoint}/v2.0/networks?tags=page-test&limit=2`, { headers: { 'x-auth-token': token } })).json()) as {
      networks: Array<{ name: string }>;
      networks_links?: Array<{ rel: string; href: string }>;
    };
    expect(first.networks.map((network) => network.name)).toEqual(['a', 'b']);
    const next = first.networks_links?.find((link) => link.rel === 'next')?.href ?? '';
    expect(new URL(next).searchParams.get('tags')).toBe('page-test');
    const second = (await (await fetch(next, { headers: { 'x-auth-token': token } })).json()) as { networks: Array<{ name: string }>; networks_links?: unknown };
    expect(second.networks.map((network) => network.name)).toEqual(['c']);
    expect(second.networks_links).toBeUndefined();
    const client = new OpenStackClient({ credentials: { ...options(), userDomain: 'Default', projectDomain: 'Default' }, region: REGION, pageSize: 1, throttleAttempts: 1, throttleDelayMs: 1 });
    expect((await client.listAll<{ name: string }>('network', '/v2.0/networks', 'networks', { query: { tags: 'page-test' } })).map((network) => network.name)).toEqual(['a', 'b', 'c']);
  });

  it('never makes a second server when the create response is lost: the retry finds the first', async () => {
    const provider = createOpenStackProvider(options());
    const spec = await parseSpec({
      name: 'lost',
      provider: { id: 'openstack', region: REGION },
      network: { name: 'net', cidr: '10.8.0.0/16', subnets: [{ name: 'a', cidr: '10.8.1.0/24', access: 'public' }] },
      firewalls: [{ name: 'fw', description: 'ssh', ingress: [{ protocol: 'tcp', ports: 22, from: '0.0.0.0/0' }] }],
      instances: [{ name: 'one', size: 'small', image: 'debian-12', subnet: 'a', firewalls: ['fw'] }],
    });
    const posts = emulator.calls('POST nova servers');
    emulator.faults.loseNextResponse('createInstance');
    const retried: string[] = [];
    const result = await executePlan(await plan({ spec, provider }), { provider, retry: { minDelayMs: 10, maxDelayMs: 50 }, onEvent: (event) => event.type === 'retried' && retried.push(event.error.code) });
    expect(result.status).toBe('succeeded');
    // No reply is a ConnectionError (it may have taken effect), not a throttle.
    expect(retried).toEqual(['Connection']);
    expect(emulator.calls('POST nova servers') - posts).toBe(1);
    expect(emulator.servers().filter((server) => server.tags.includes(serverEnvironmentTag('lost')))).toHaveLength(1);
  });

  it('reads the host keys a server printed on its console (os-getConsoleOutput)', async () => {
    const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR host';
    const printing = await startOpenStackEmulator({ bootMs: 20, deleteMs: 10, hostKeys: [hostKey] });
    try {
      const provider = createOpenStackProvider(providerOptionsFor(printing));
      const spec = await parseSpec({
        name: 'console',
        provider: { id: 'openstack', region: REGION },
        network: { name: 'net', cidr: '10.9.0.0/16', subnets: [{ name: 'a', cidr: '10.9.1.0/24', access: 'private' }] },
        instances: [{ name: 'one', size: 'small', image: 'debian-12', subnet: 'a' }],
      });
      expect((await executePlan(await plan({ spec, provider }), { provider })).status).toBe('succeeded');
      const server = printing.servers().find((entry) => entry.tags.includes(serverEnvironmentTag('console')));
      expect(await provider.consoleHostKeys?.(server?.id ?? '')).toEqual([hostKey.split(' ').slice(0, 2).join(' ')]);
    } finally {
      await printing.close();
    }
  });
});

describe('adapt()', () => {
  const base: EnvironmentSpecInput = {
    name: 'adapt',
    provider: { id: 'in-memory', region: 'local-1' },
    network: { name: 'net', cidr: '10.7.0.0/16', subnets: [{ name: 'a', cidr: '10.7.1.0/24', access: 'private', zone: 'az1' }] },
  };
  // Compiled with the in-memory provider's sizes and images: adapt() looks at neither.
  const desired = async (input: EnvironmentSpecInput) => {
    return compileEnvironment(await parseSpec(input), createInMemoryProvider({ cloud: new InMemoryCloud(), region: 'local-1' }));
  };

  it('drops subnet zones with a warning, and the network of security groups', async () => {
    const { resources, notes } = adaptToOpenStack(
      await desired({ ...base, firewalls: [{ name: 'fw', description: 'd', ingress: [{ protocol: 'tcp', ports: 22, from: '10.0.0.0/8' }] }] }),
    );
    expect(resources.find((resource) => resource.kind === 'subnet')?.properties).not.toHaveProperty('zone');
    expect(notes).toContainEqual(expect.objectContaining({ severity: 'warning', path: 'subnet.a' }));
    const firewall = resources.find((resource) => resource.kind === 'firewall');
    expect(firewall?.properties).toMatchObject({ network: '' });
    expect(firewall?.dependsOn).toEqual([]);
  });

  it('refuses a subnet peer, suggesting its range', async () => {
    const resources = await desired({ ...base, firewalls: [{ name: 'fw', description: 'd', ingress: [{ protocol: 'tcp', ports: 22, from: { subnet: 'a' } }] }] });
    const error = (() => {
      try {
        return adaptToOpenStack(resources);
      } catch (caught) {
        return caught;
      }
    })();
    expect(UnsupportedError.isInstance(error) && error.capability).toBe('firewallPeerBySubnet');
    expect((error as Error).message).toContain('from: 10.7.1.0/24');
  });

  it('refuses tags Nova metadata cannot hold, and the reserved prefix', async () => {
    const resources = await desired({
      ...base,
      instances: [{ name: 'i', size: 'small', image: 'debian-12', subnet: 'a', tags: { 'owner@team': 'x', 'armada:mine': 'y', Name: 'i' } }],
    });
    const error = (() => {
      try {
        return adaptToOpenStack(resources);
      } catch (caught) {
        return caught;
      }
    })();
    expect(ValidationError.isInstance(error) && error.issues.map((issue) => issue.path)).toEqual(['instance.i.tags.owner@team', 'instance.i.tags.armada:mine']);
  });
});
