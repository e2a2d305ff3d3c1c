/**
 * Bad credentials, an unknown region, an instance type the region does not offer: each is one
 * clear error naming what to fix, before anything is created.
 */
import { DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ConnectionError, applyEnvironment, loadSpecFile, type EnvironmentSpec } from '@armada/core';
import { createServer } from 'node:net';
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider, mapAwsError } from '../src/index.js';
import { failure } from './helpers.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));

describe('errors before anything is created', () => {
  let emulator: AwsEmulator;
  let spec: EnvironmentSpec;
  const savedEnvironment = { ...process.env };

  beforeAll(async () => {
    // EC2 offers m3.medium in eu-west-1 (moto's offerings data); here it does not, for the last test.
    emulator = await startAwsEmulator({ accessKeyIds: ['AKIDGOOD'], instanceTypeOfferings: { 'eu-west-1': { 'm3.medium': [] } } });
    spec = { ...(await loadSpecFile(specPath)), provider: { id: 'aws', region: 'us-east-1' } };
  });
  afterEach(() => {
    process.env = { ...savedEnvironment };
  });
  afterAll(async () => {
    await emulator?.close();
  });

  const nothingCreated = () => {
    for (const action of ['CreateVpc', 'CreateSubnet', 'CreateSecurityGroup', 'ImportKeyPair', 'RunInstances']) expect(emulator.calls(action), action).toBe(0);
  };

  it('missing credentials name the variables to set', async () => {
    // The SDK's default chain with nothing to find, and without the EC2 metadata service (off-machine).
    for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) delete process.env[key];
    Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config' });
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint });
    const error = await failure(applyEnvironment({ spec, provider }));
    expect(error.issues[0]?.path).toBe('credentials');
    expect(error.issues[0]?.fix).toMatch(/AWS_ACCESS_KEY_ID/);
    nothingCreated();
  });

  it('rejected credentials say so', async () => {
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIDBAD', secretAccessKey: 'x' } });
    const error = await failure(applyEnvironment({ spec, provider }));
    expect(error.message).toMatch(/AWS refused the credentials/);
    expect(error.issues[0]?.fix).toMatch(/AWS_ACCESS_KEY_ID/);
    nothingCreated();
  });

  it("what AWS would refuse (a /8 VPC, 61 rules in a group, reserved and oversized tags) is refused when planning", async () => {
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIDGOOD', secretAccessKey: 'x' } });
    const [first] = spec.firewalls;
    const manyTags = Object.fromEntries(Array.from({ length: 45 }, (_, index) => [`team-${index}`, 'shop']));
    const wide: EnvironmentSpec = {
      ...spec,
      network: { ...spec.network, cidr: '10.0.0.0/8' },
      firewalls: spec.firewalls.map((firewall) =>
        firewall === first ? { ...firewall, ingress: Array.from({ length: 61 }, (_, index) => ({ protocol: 'tcp' as const, ports: { from: 1000 + index, to: 1000 + index }, from: { cidr: '10.0.0.0/16' } })) } : firewall,
      ),
      instances: spec.instances.map((instance, index) => (index === 0 ? { ...instance, tags: { ...manyTags, 'aws:owner': 'me', note: 'x'.repeat(300) } } : instance)),
    };
    const error = await failure(applyEnvironment({ spec: wide, provider }));
    expect(error.message).toMatch(/^The environment asks for what AWS does not allow:/);
    const paths = error.issues.map((issue) => issue.path);
    expect(paths.slice(0, 2)).toEqual([`network.${spec.network.name}.cidr`, `firewall.${first?.name}.ingress`]);
    // Each instance the first entry makes: too many tags, a reserved key, a value too long.
    const tagged = paths.slice(2);
    expect(tagged.length % 3).toBe(0);
    expect(tagged.length).toBeGreaterThan(0);
    for (let at = 0; at < tagged.length; at += 3) {
      expect(tagged[at]).toMatch(/^instance\.[^.]+\.tags$/);
      expect(tagged[at + 1]).toBe(`${tagged[at]}.aws:owner`);
      expect(tagged[at + 2]).toBe(`${tagged[at]}.note`);
    }
    expect(error.issues[0]?.message).toBe('VPC 10.0.0.0/8 is a /8: an AWS VPC is /16 to /28');
    expect(error.issues[1]?.message).toMatch(/^61 ingress rules: an AWS security group holds 60/);
    nothingCreated();
  });

  it('an unknown region names the region option', async () => {
    const provider = createAwsProvider({ region: 'us-nowhere-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIDGOOD', secretAccessKey: 'x' } });
    const error = await failure(applyEnvironment({ spec: { ...spec, provider: { id: 'aws', region: 'us-nowhere-1' } }, provider }));
    expect(error.issues[0]).toMatchObject({ path: 'provider.region' });
    expect(error.issues[0]?.fix).toMatch(/us-east-1/);
    nothingCreated();
  });

  it('an instance type the region does not offer names the instance and the option', async () => {
    const provider = createAwsProvider({ region: 'eu-west-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIDGOOD', secretAccessKey: 'x' } });
    const error = await failure(applyEnvironment({ spec: { ...spec, provider: { id: 'aws', region: 'eu-west-1' } }, provider }));
    expect(error.issues.map((issue) => issue.path)).toEqual(['instances[0].aws.instanceType', 'instances[1].aws.instanceType']);
    expect(error.issues[0]?.message).toBe('instance type m3.medium is not offered in eu-west-1');
    nothingCreated();
  });
});

describe('mapAwsError', () => {
  const sdkError = (name: string, status: number, fault: 'client' | 'server' = status >= 500 ? 'server' : 'client') =>
    Object.assign(new Error(`${name} happened`), { name, $fault: fault, $metadata: { httpStatusCode: status, requestId: 'req-1' } });

  it.each([
    ['RequestLimitExceeded', 503, 'Throttled', true],
    ['InternalError', 500, 'Throttled', true],
    ['InvalidVpcID.NotFound', 400, 'NotFound', false],
    ['InvalidGroup.Duplicate', 400, 'AlreadyExists', false],
    ['DependencyViolation', 400, 'DependencyViolation', true],
    ['InvalidSubnet.Conflict', 400, 'Conflict', false],
    ['InvalidParameterValue', 400, 'Validation', false],
    // What the emulator refuses as EC2 does (see the testkit README's Fidelity table): not retried.
    ['Unsupported', 400, 'Validation', false],
    ['InvalidKeyPair.Format', 400, 'Validation', false],
    ['TagLimitExceeded', 400, 'Validation', false],
    ['RulesPerSecurityGroupLimitExceeded', 400, 'Validation', false],
    ['Resource.AlreadyAssociated', 400, 'Conflict', false],
    ['AuthFailure', 401, 'Validation', false],
  ] as const)('%s (%i) -> %s', (name, status, code, retryable) => {
    const mapped = mapAwsError(sdkError(name, status), 'SomeCall');
    expect([mapped.code, mapped.retryable, mapped.provider, mapped.requestId]).toEqual([code, retryable, 'aws', 'req-1']);
  });
});

describe('a connection the SDK could not make', () => {
  it('is a ConnectionError (retryable, and said to be a connection failure), not a throttle', async () => {
    // A port that was just free: nothing listens there, so the connection is refused.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    const client = new EC2Client({ region: 'eu-west-1', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'AKIDGOOD', secretAccessKey: 'x' }, maxAttempts: 1 });
    const error = await client.send(new DescribeRegionsCommand({})).catch((caught: unknown) => caught);
    client.destroy();
    const mapped = mapAwsError(error, 'DescribeRegions');
    expect(ConnectionError.isInstance(mapped)).toBe(true);
    expect([mapped.code, mapped.retryable, mapped.provider]).toEqual(['Connection', true, 'aws']);
    expect(mapped.message).toBe('DescribeRegions: the connection failed (ECONNREFUSED); the call may have taken effect');
  });
});
