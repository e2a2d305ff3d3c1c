/**
 * A missing or rejected token, an unknown region, size or image, a VPC range DigitalOcean refuses:
 * each is one clear error naming what to fix, before anything is created. Errors are mapped by
 * DigitalOcean's error id, whatever their message says, and 429s carry the wait DigitalOcean asked for.
 */
import {
  ConnectionError,
  ThrottledError,
  ValidationError,
  applyEnvironment,
  loadSpecFile,
  plan,
  type ApplyContext,
  type ArmadaErrorCode,
  type DesiredResource,
  type EnvironmentSpec,
} from '@armada/core';
import { createApiClient } from 'dots-wrapper';
import { createServer } from 'node:net';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_IDS, createDigitalOceanProvider, mapDigitalOceanError, vpcRangeIssues } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

async function failure(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(ValidationError.isInstance(error), `expected a ValidationError, got ${String(error)}`).toBe(true);
  return error as ValidationError;
}

/** Runs `test` on an emulator of its own, with a dots-wrapper client on it; closes it after. */
async function onOwnEmulator(test: (emulator: DigitalOceanEmulator, api: ReturnType<typeof createApiClient>) => Promise<void>): Promise<void> {
  const emulator = await startDigitalOceanEmulator();
  try {
    await test(emulator, createApiClient({ token: 'own', endpoint: `${emulator.endpoint}/v2` }));
  } finally {
    await emulator.close();
  }
}

describe('errors before anything is created', () => {
  let emulator: DigitalOceanEmulator;
  let spec: EnvironmentSpec;
  beforeAll(async () => {
    emulator = await startDigitalOceanEmulator({ tokens: ['good-token'] });
    spec = { ...(await loadSpecFile(specPath)), provider: { id: 'digitalocean', region: 'nyc3' } };
  });
  afterAll(async () => {
    await emulator?.close();
  });
  const provider = (region: string, token?: string) =>
    createDigitalOceanProvider({ region, endpoint: `${emulator.endpoint}/v2`, ...(token ? { token } : {}), pollIntervalMs: 10 });
  const nothingCreated = () => {
    for (const route of ['POST vpcs', 'POST droplets', 'POST firewalls', 'POST account']) expect(emulator.calls(route), route).toBe(0);
  };

  it('a missing token names DIGITALOCEAN_TOKEN', async () => {
    const saved = process.env.DIGITALOCEAN_TOKEN;
    delete process.env.DIGITALOCEAN_TOKEN;
    try {
      const error = await failure(applyEnvironment({ spec, provider: provider('nyc3') }));
      expect(error.issues[0]).toMatchObject({ path: 'token', fix: expect.stringMatching(/DIGITALOCEAN_TOKEN/) });
    } finally {
      if (saved !== undefined) process.env.DIGITALOCEAN_TOKEN = saved;
    }
    nothingCreated();
  });

  it('a rejected token says so', async () => {
    const error = await failure(applyEnvironment({ spec, provider: provider('nyc3', 'wrong-token') }));
    expect(error.message).toMatch(/^DigitalOcean rejected the API token\./);
    expect(error.issues[0]?.fix).toMatch(/DIGITALOCEAN_TOKEN/);
    nothingCreated();
  });

  it('an unknown region names the region option and the regions there are', async () => {
    const error = await failure(applyEnvironment({ spec: { ...spec, provider: { id: 'digitalocean', region: 'mars1' } }, provider: provider('mars1', 'good-token') }));
    expect(error.issues[0]).toMatchObject({ path: 'provider.region', fix: expect.stringContaining('nyc3') });
    nothingCreated();
  });

  it('a size the region does not offer, and an unknown image, name the instance and the field', async () => {
    const odd: EnvironmentSpec = {
      ...spec,
      provider: { id: 'digitalocean', region: 'lon1' },
      instances: spec.instances.map((instance, index) => (index === 0 ? { ...instance, digitalocean: { size: 's-8vcpu-16gb' } } : { ...instance, image: 'plan9-4' })),
    };
    const error = await failure(applyEnvironment({ spec: odd, provider: provider('lon1', 'good-token') }));
    expect(error.issues.map((issue) => [issue.path, issue.message])).toEqual([
      ['instances[0].digitalocean.size', 'size s-8vcpu-16gb is not offered in lon1'],
      ['instances[1].image', 'DigitalOcean has no image "plan9-4-x64"'],
    ]);
    nothingCreated();
  });

  it('a VPC range DigitalOcean reserves, or one it never accepts, names the network and the rule when the plan is made', async () => {
    /** The spec with its network in `cidr` and its two subnets in the given halves. */
    const inNetwork = (cidr: string, publicCidr: string, privateCidr: string): EnvironmentSpec => ({
      ...spec,
      network: { ...spec.network, cidr, subnets: spec.network.subnets.map((subnet) => ({ ...subnet, cidr: subnet.access === 'public' ? publicCidr : privateCidr })) },
    });
    const cases: Array<[EnvironmentSpec, RegExp]> = [
      [inNetwork('10.244.0.0/16', '10.244.1.0/24', '10.244.2.0/24'), /overlaps 10\.244\.0\.0\/16, which DigitalOcean reserves for internal use/],
      [inNetwork('10.246.0.0/24', '10.246.0.0/25', '10.246.0.128/25'), /overlaps 10\.246\.0\.0\/24, which DigitalOcean reserves/],
      [inNetwork('10.0.0.0/12', '10.0.1.0/24', '10.0.2.0/24'), /is a \/12: a DigitalOcean VPC is \/16 to \/28/],
      [inNetwork('100.64.0.0/16', '100.64.1.0/24', '100.64.2.0/24'), /is not private/],
    ];
    for (const [odd, message] of cases) {
      const error = await failure(plan({ spec: odd, provider: provider('nyc3', 'good-token') }));
      expect(error.issues).toEqual([{ path: `network.${spec.network.name}.cidr`, message: expect.stringMatching(message), fix: expect.any(String) }]);
    }
    nothingCreated();
  });
});

describe('the VPC ranges refused at plan time', () => {
  it('are exactly those the API (emulated) refuses', async () => {
    await onOwnEmulator(async (_emulator, api) => {
      const ranges = ['10.244.0.0/16', '10.243.255.0/24', '10.245.128.0/17', '10.246.0.0/24', '10.246.1.0/24', '10.229.16.0/20', '10.230.0.0/16', '172.31.0.0/16', '172.32.0.0/16', '192.168.0.0/28', '192.168.0.0/29', '10.0.0.0/15', '100.64.0.0/16'];
      const verdicts: Array<{ range: string; refusedAtPlan: boolean; apiRefuses: boolean }> = [];
      for (const range of ranges) {
        const apiRefuses: boolean = await api.vpc.createVpc({ name: `v${verdicts.length}`, region: 'nyc3', ip_range: range }).then(
          async ({ data }) => {
            await api.vpc.deleteVpc({ vpc_id: data.vpc.id });
            return false;
          },
          () => true,
        );
        verdicts.push({ range, refusedAtPlan: vpcRangeIssues('network.net.cidr', range).length > 0, apiRefuses });
      }
      expect(verdicts.filter((verdict) => verdict.refusedAtPlan !== verdict.apiRefuses)).toEqual([]);
      expect(verdicts.filter((verdict) => verdict.apiRefuses).length).toBe(8);
    });
  });
});

describe('mapDigitalOceanError', () => {
  const axiosError = (status: number, id: string, message: string, headers: Record<string, string> = {}) => ({
    message: `Request failed with status code ${status}`,
    response: { status, data: { id, message, request_id: 'req-9' }, headers },
  });
  it('turns a 429 into a retryable error that waits as DigitalOcean asked', () => {
    const mapped = mapDigitalOceanError(axiosError(429, 'too_many_requests', 'API Rate limit exceeded.', { 'retry-after': '3' }), 'listDroplets');
    expect(ThrottledError.isInstance(mapped)).toBe(true);
    expect((mapped as ThrottledError).retryAfterMs).toBe(3000);
    expect(mapped.requestId).toBe('req-9');
    const reset = mapDigitalOceanError(axiosError(429, 'too_many_requests', 'x', { 'ratelimit-reset': String(Math.floor(Date.now() / 1000) + 2) }), 'x') as ThrottledError;
    expect(reset.retryAfterMs).toBeGreaterThan(500);
    expect(reset.retryAfterMs).toBeLessThanOrEqual(2000);
  });
  // Every id DigitalOcean documents (OpenAPI specification/shared/responses/*.yml, and 412), with a
  // message no mapping may lean on: what a future API might say instead of today's wording.
  const byId: Array<[number, string, string, ArmadaErrorCode, boolean]> = [
    [400, 'bad_request', 'createTag', 'Validation', false],
    [401, 'unauthorized', 'getAccount', 'Validation', false],
    [403, 'forbidden', 'createVpc', 'Validation', false],
    // OpenAPI vpcs_delete.yml: a VPC that still has members (or is the region's default) is refused with 403.
    [403, 'forbidden', 'deleteVpc', 'DependencyViolation', true],
    [404, 'not_found', 'getDroplet', 'NotFound', false],
    [409, 'conflict', 'createFirewall', 'Conflict', false],
    [412, 'precondition_failed', 'deleteVpc', 'Conflict', false],
    [422, 'unprocessable_entity', 'createSshKey', 'Validation', false],
    [429, 'too_many_requests', 'listDroplets', 'Throttled', true],
    [500, 'server_error', 'listDroplets', 'Throttled', true],
  ];
  it.each(byId)('%i %s (in %s) -> %s, whatever the message says', (status, id, context, code, retryable) => {
    const mapped = mapDigitalOceanError(axiosError(status, id, 'Something went wrong, phrased in a way no one has seen.'), context);
    expect([mapped.code, mapped.retryable]).toEqual([code, retryable]);
    expect(mapped.requestId).toBe('req-9');
  });
  it('covers every id DigitalOcean documents', () => {
    expect(new Set(byId.map(([, id]) => id))).toEqual(new Set(Object.values(ERROR_IDS)));
  });
  it('falls back on the status when the body has no documented id', () => {
    const noId = (status: number) => ({ message: `Request failed with status code ${status}`, response: { status, data: { message: 'no id here' }, headers: {} } });
    expect([404, 422, 429, 503].map((status) => mapDigitalOceanError(noId(status), 'call').code)).toEqual(['NotFound', 'Validation', 'Throttled', 'Throttled']);
    expect(mapDigitalOceanError(axiosError(404, 'some_new_id', 'x'), 'call').code).toBe('NotFound');
  });
  it('reads today\'s wording only as a last resort, to tell apart the kinds one 422 covers', () => {
    expect(mapDigitalOceanError(axiosError(422, 'unprocessable_entity', 'SSH Key is already in use on your account'), 'createSshKey').code).toBe('AlreadyExists');
    expect(mapDigitalOceanError(axiosError(422, 'unprocessable_entity', 'ip_range overlaps VPC x'), 'createVpc').code).toBe('Conflict');
    expect(mapDigitalOceanError(axiosError(422, 'unprocessable_entity', 'You specified an invalid size'), 'createDroplet').code).toBe('Validation');
  });
  it('maps the tag endpoints\' own error body, which has no id (OpenAPI tags_bad_request.yml)', async () => {
    await onOwnEmulator(async (_emulator, api) => {
      const error = mapDigitalOceanError(await api.tag.createTag({ name: 'has space' }).catch((caught: unknown) => caught), 'createTag');
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).message).toMatch(/^createTag: 400 bad_request: Error validating resource tag: .*contains invalid characters/);
    });
  });
});

describe('a create refused with a 422 worded some new way', () => {
  it('still finds the VPC and the SSH key its first, lost, attempt made', async () => {
    await onOwnEmulator(async (emulator, real) => {
      /** What DigitalOcean might say one day instead of "already exists" or "already in use". */
      const reworded = (error: { response?: { data?: { message?: string } } }) => {
        if (error.response?.data?.message) error.response.data.message = 'The request could not be processed as given.';
        throw error;
      };
      const client = {
        ...real,
        vpc: { ...real.vpc, createVpc: (input: Parameters<typeof real.vpc.createVpc>[0]) => real.vpc.createVpc(input).catch(reworded) },
        sshKey: { ...real.sshKey, createSshKey: (input: Parameters<typeof real.sshKey.createSshKey>[0]) => real.sshKey.createSshKey(input).catch(reworded) },
      };
      const { services } = createDigitalOceanProvider({ region: 'nyc3', client, pollIntervalMs: 10 });
      const apply = { environment: 'reworded', signal: new AbortController().signal, idempotencyToken: (address: string) => `run/${address}` } as ApplyContext;
      const network: DesiredResource<'network'> = { address: 'network.net', kind: 'network', name: 'net', properties: { cidr: '10.50.0.0/16' }, dependsOn: [] };
      const key: DesiredResource<'keyPair'> = {
        address: 'keyPair.deploy',
        kind: 'keyPair',
        name: 'deploy',
        properties: { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR deploy' },
        dependsOn: [],
      };
      emulator.faults.loseNextResponse('createNetwork');
      emulator.faults.loseNextResponse('createKeyPair');
      await expect(services.network.create(network, apply)).rejects.toMatchObject({ code: 'Connection' });
      await expect(services.keyPair.create(key, apply)).rejects.toMatchObject({ code: 'Connection' });
      // The retries find what the first attempts made before creating again (CreateAttempts), so
      // they never meet the 422 whose wording this client changes; a new run (another token) adopts
      // them the same way, by their ownership.
      const nextRun = { ...apply, idempotencyToken: (address: string) => `next/${address}` } as ApplyContext;
      expect((await services.network.create(network, nextRun)).address).toBe('network.net');
      expect((await services.keyPair.create(key, nextRun)).address).toBe('keyPair.deploy');
      expect((await services.network.create(network, apply)).address).toBe('network.net');
      expect((await services.keyPair.create(key, apply)).address).toBe('keyPair.deploy');
      expect(emulator.inventory()).toMatchObject({ vpcs: 1, sshKeys: 1 });
    });
  });
});

describe('a connection dots-wrapper could not make', () => {
  it('is a ConnectionError (retryable, and said to be a connection failure), not a throttle', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    const client = createApiClient({ token: 'token', endpoint: `http://127.0.0.1:${port}` });
    const error = await client.region.listRegions({}).catch((caught: unknown) => caught);
    const mapped = mapDigitalOceanError(error, 'list regions');
    expect(ConnectionError.isInstance(mapped)).toBe(true);
    expect([mapped.code, mapped.retryable, mapped.provider]).toEqual(['Connection', true, 'digitalocean']);
    expect(mapped.message).toBe('list regions: the connection failed (ECONNREFUSED); the call may have taken effect');
  });
});
