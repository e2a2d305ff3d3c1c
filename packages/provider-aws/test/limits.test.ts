/**
 * What src/limits.ts refuses when the plan is made, EC2 refuses too: with that check bypassed
 * (the spec compiled and diffed without the provider's adapt), the apply fails on the emulator
 * with EC2's own error, mapped to a ValidationError that is not retried. The codes: moto
 * test_tags.py (TagLimitExceeded), test_security_groups.py (RulesPerSecurityGroupLimitExceeded),
 * test_key_pairs.py (InvalidKeyPair.Format); the aws: tag prefix as EC2 answers it
 * (InvalidParameterValue).
 */
import { ValidationError, compileEnvironment, diff, executePlan, parseSpec, plan, type EnvironmentSpec } from '@armada/core';
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../src/index.js';
import { failure } from './helpers.js';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };
const manyTags = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, index) => [`team-${index}`, 'shop']));

function limitsSpec(name: string, change: { tags?: Record<string, string>; rules?: number; publicKey?: string }): Promise<EnvironmentSpec> {
  return parseSpec({
    name,
    provider: { id: 'aws', region: 'us-east-1' },
    network: { name: 'net', cidr: '10.40.0.0/16', subnets: [{ name: 'app', cidr: '10.40.1.0/24', access: 'private', zone: 'us-east-1a' }] },
    firewalls: [
      {
        name: 'web',
        description: 'web',
        ingress: Array.from({ length: change.rules ?? 1 }, (_, index) => ({ protocol: 'tcp', ports: 1000 + index, from: '10.0.0.0/8' })),
      },
    ],
    keyPairs: [{ name: 'deploy', publicKey: change.publicKey ?? 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR deploy' }],
    instances: [{ name: 'app', size: 'small', image: 'debian-12', subnet: 'app', firewalls: ['web'], keyPair: 'deploy', tags: change.tags ?? {} }],
  });
}

describe("EC2's limits, with the plan-time check bypassed", () => {
  let emulator: AwsEmulator;
  beforeAll(async () => {
    emulator = await startAwsEmulator({ bootMs: 20, terminateMs: 20 });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it.each([
    ['51 tags on an instance (49 of the spec, 2 ownership tags)', { tags: manyTags(49) }, 'instance.app', 'RunInstances: TagLimitExceeded'],
    ['a tag key starting with aws:', { tags: { 'aws:owner': 'me' } }, 'instance.app', 'RunInstances: InvalidParameterValue'],
    ['61 ingress rules in a group', { rules: 61 }, 'firewall.web', 'AuthorizeSecurityGroupRules: RulesPerSecurityGroupLimitExceeded'],
    ['a DSA key', { publicKey: 'ssh-dss AAAAB3NzaC1kc3MAAACBAP deploy' }, 'keyPair.deploy', 'ImportKeyPair: InvalidKeyPair.Format'],
  ] as const)('%s: refused when planning, and by EC2 when applied unchecked', async (_, change, address, refusal) => {
    const spec = await limitsSpec(`limits-${address.replace('.', '-')}-${Object.keys(change)[0]}`, change);
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
    const refused = await failure(plan({ spec, provider }));
    expect(refused.issues.some((issue) => issue.path.startsWith(address))).toBe(true);

    const desired = await compileEnvironment(spec, provider);
    const result = await executePlan(diff({ environment: spec.name, provider, desired, observed: [] }), { provider, retry: fastRetry });
    const failed = result.failed.find((step) => step.address === address);
    expect(failed?.error.message).toMatch(new RegExp(`^${refusal}: `));
    expect([ValidationError.isInstance(failed?.error), failed?.error.retryable]).toEqual([true, false]);
  });
});
