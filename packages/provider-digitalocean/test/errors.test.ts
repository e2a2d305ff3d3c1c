/**
 * A missing or rejected token, an unknown region, size or image: each is one clear error naming
 * what to fix, before anything is created. And 429s carry the wait DigitalOcean asked for.
 */
import { ConnectionError, ThrottledError, ValidationError, applyEnvironment, loadSpecFile, type EnvironmentSpec } from '@armada/core';
import { createApiClient } from 'dots-wrapper';
import { createServer } from 'node:net';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDigitalOceanProvider, mapDigitalOceanError } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

async function failure(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(ValidationError.isInstance(error), `expected a ValidationError, got ${String(error)}`).toBe(true);
  return error as ValidationError;
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
  it.each([
    [500, 'server_error', 'boom', 'Throttled'],
    [404, 'not_found', 'nope', 'NotFound'],
    [403, 'forbidden', 'Can not delete VPC with members', 'DependencyViolation'],
    [422, 'unprocessable_entity', 'SSH Key is already in use on your account', 'AlreadyExists'],
    [422, 'unprocessable_entity', 'ip_range overlaps VPC x', 'Conflict'],
    [422, 'unprocessable_entity', 'You specified an invalid size', 'Validation'],
  ] as const)('%i %s -> %s', (status, id, message, code) => {
    expect(mapDigitalOceanError(axiosError(status, id, message), 'call').code).toBe(code);
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
