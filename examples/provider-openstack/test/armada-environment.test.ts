/**
 * The story's environment (examples/environments/armada.yaml) on the OpenStack emulator, with only
 * the provider selection switched: registered through the plugin, applied (credentials checked
 * first), re-planned empty, destroyed to nothing; and on a bad day, with a fifth of the calls
 * answered 429 or 503.
 */
import {
  PluginRegistry,
  applyEnvironment,
  destroyEnvironment,
  executePlan,
  isEmptyPlan,
  loadSpecFile,
  plan,
  renderHonouringSideBySide,
  type EnvironmentSpec,
  type ProviderV1,
} from '@armada/core';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStackProviderPlugin } from '../src/index.js';
import { startOpenStackEmulator, type OpenStackEmulator } from './emulator/index.js';

const specPath = fileURLToPath(new URL('../../environments/armada.yaml', import.meta.url));
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };
const REGION = 'region-b.geo-1';

async function armadaOnOpenStack(): Promise<EnvironmentSpec> {
  return { ...(await loadSpecFile(specPath)), provider: { id: 'openstack', region: REGION } };
}

function registryFor(emulator: OpenStackEmulator, password = 'secret'): PluginRegistry {
  return new PluginRegistry().use(
    openStackProviderPlugin({ authUrl: emulator.authUrl, username: 'demo', password, project: 'demo', pollIntervalMs: 20, throttleDelayMs: 10 }),
  );
}

/** What the emulator holds, read on the wire as an operator would. */
async function neutron<T>(emulator: OpenStackEmulator, path: string, key: string): Promise<T[]> {
  const auth = await fetch(`${emulator.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: 'secret' } } }, scope: { project: { name: 'demo' } } } }),
  });
  const token = auth.headers.get('x-subject-token') ?? '';
  const response = await fetch(`${emulator.endpoint}${path}`, { headers: { 'x-auth-token': token } });
  return ((await response.json()) as Record<string, T[]>)[key] ?? [];
}

describe('the Armada environment on the OpenStack emulator', () => {
  let emulator: OpenStackEmulator;
  let provider: ProviderV1;
  let spec: EnvironmentSpec;

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({ bootMs: 80, deleteMs: 20 });
    spec = await armadaOnOpenStack();
    provider = registryFor(emulator).provider(spec.provider.id, spec.provider.region);
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('plans the web and data tiers and says how OpenStack honours them', async () => {
    const planned = await plan({ spec, provider });
    // 1 network, 2 subnets, 2 security groups, 1 key pair, 4 servers.
    expect(planned.summary).toEqual({ create: 10, update: 0, replace: 0, delete: 0, noop: 0 });
    const instances = planned.actions.filter((action) => action.kind === 'instance');
    expect(instances.map((action) => action.desired?.properties)).toEqual(
      Array(4).fill(expect.objectContaining({ size: 'standard.medium', image: expect.stringMatching(/^[0-9a-f-]{36}$/) })),
    );
    const text = renderHonouringSideBySide([planned]);
    expect(text).toContain("Neutron subnet with an interface on the network's router; its instances get floating IPs");
    expect(text).toContain('Neutron subnet with no router interface: no route to or from the internet');
    expect(text).toContain('Neutron security group on its instances');
  });

  it('applies: credentials checked, then every resource made', async () => {
    const { execution } = await applyEnvironment({ spec, provider, retry: fastRetry });
    expect(execution.failed).toEqual([]);
    expect(execution.status).toBe('succeeded');

    const servers = emulator.servers().filter((server) => server.metadata['armada:environment'] === 'armada');
    expect(servers.map((server) => `${server.name} ${server.status} ${server.metadata.Name} ${server.metadata.Version} ${server.metadata['armada:role']}`).sort()).toEqual([
      'data-1 ACTIVE data-1 1.0.0 data',
      'data-2 ACTIVE data-2 1.0.0 data',
      'web-1 ACTIVE web-1 1.0.0 web',
      'web-2 ACTIVE web-2 1.0.0 web',
    ]);
    // Only the public subnet has a router interface, so only the web tier has floating IPs.
    const subnets = await neutron<{ id: string; name: string; cidr: string }>(emulator, '/v2.0/subnets', 'subnets');
    const interfaces = await neutron<{ fixed_ips: Array<{ subnet_id: string }> }>(emulator, '/v2.0/ports?device_owner=network:router_interface', 'ports');
    const routed = interfaces.flatMap((port) => port.fixed_ips.map((ip) => subnets.find((subnet) => subnet.id === ip.subnet_id)?.cidr));
    expect(routed).toEqual(['10.0.1.0/24']);
    const floating = await neutron<{ fixed_ip_address: string }>(emulator, '/v2.0/floatingips', 'floatingips');
    expect(floating.map((ip) => ip.fixed_ip_address).sort()).toEqual([expect.stringMatching(/^10\.0\.1\./), expect.stringMatching(/^10\.0\.1\./)]);
    // The data tier admits the web tier's group, not an address range.
    const groups = await neutron<{ id: string; name: string; security_group_rules: Array<{ direction: string; port_range_min: number | null; remote_group_id: string | null }> }>(
      emulator,
      '/v2.0/security-groups',
      'security_groups',
    );
    const web = groups.find((group) => group.name === 'Web Public');
    const data = groups.find((group) => group.name === 'Data Internal');
    expect(data?.security_group_rules.filter((rule) => rule.direction === 'ingress').map((rule) => [rule.port_range_min, rule.remote_group_id])).toEqual([
      [3306, web?.id],
      [3306, data?.id],
      [6379, web?.id],
      [22, web?.id],
    ]);
    const discovered = await plan({ spec, provider });
    const web1 = discovered.actions.find((action) => action.address === 'instance.web-1')?.current;
    expect(web1?.outputs).toMatchObject({ status: 'ACTIVE', privateIp: expect.stringMatching(/^10\.0\.1\./), publicIp: expect.stringMatching(/^203\.0\.113\./) });
    expect(discovered.actions.find((action) => action.address === 'instance.data-1')?.current?.outputs.publicIp).toBeUndefined();
  });

  it('plans nothing the second time', async () => {
    const second = await plan({ spec, provider });
    expect(second.actions.filter((action) => action.type !== 'noop')).toEqual([]);
    expect(isEmptyPlan(second)).toBe(true);
  });

  it('destroys to nothing', async () => {
    const { execution } = await destroyEnvironment({ environment: 'armada', provider, retry: fastRetry });
    expect(execution.failed).toEqual([]);
    expect(execution.status).toBe('succeeded');
    expect(emulator.inventory()).toEqual({ networks: 0, subnets: 0, ports: 0, routers: 0, floatingIps: 0, securityGroups: 0, servers: 0, keypairs: 0 });
  });
});

describe('the Armada environment on a bad day at the OpenStack cloud', () => {
  it.each([3, 42])('completes with no duplicate servers when a fifth of the calls get a 429 or a 503 (seed %i)', async (seed) => {
    const emulator = await startOpenStackEmulator({ bootMs: 80, deleteMs: 20, retryAfterSeconds: 0, seed });
    try {
      const spec = await armadaOnOpenStack();
      const provider = registryFor(emulator).provider('openstack', REGION);
      emulator.faults.configure({ throttleRate: 0.2 });
      const result = await executePlan(await plan({ spec, provider, retry: fastRetry }), { provider, retry: fastRetry });
      expect(result.failed).toEqual([]);
      expect(result.status).toBe('succeeded');
      expect(emulator.faults.throttledCalls).toBeGreaterThan(3);
      emulator.faults.configure({ throttleRate: 0 });
      expect(emulator.servers().map((server) => server.name).sort()).toEqual(['data-1', 'data-2', 'web-1', 'web-2']);
      expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
      const { execution } = await destroyEnvironment({ environment: 'armada', provider, retry: fastRetry });
      expect(execution.status).toBe('succeeded');
      expect(emulator.inventory()).toMatchObject({ ports: 0, floatingIps: 0, servers: 0 });
    } finally {
      await emulator.close();
    }
  });
});

describe('credentials are checked before anything is created', () => {
  it('refuses a wrong password with a ValidationError naming what to fix, and makes nothing', async () => {
    const emulator = await startOpenStackEmulator();
    try {
      const spec = await armadaOnOpenStack();
      const provider = registryFor(emulator, 'wrong').provider('openstack', REGION);
      const refused = await applyEnvironment({ spec, provider, retry: fastRetry }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toMatchObject({ name: 'ValidationError', code: 'Validation', provider: 'openstack' });
      expect((refused as Error).message).toMatch(/rejected the credentials[\s\S]*OS_PASSWORD/);
      expect(emulator.calls() - emulator.calls('POST keystone auth')).toBe(0);
      expect(emulator.inventory()).toMatchObject({ networks: 0, servers: 0, keypairs: 0 });
    } finally {
      await emulator.close();
    }
  });
});
