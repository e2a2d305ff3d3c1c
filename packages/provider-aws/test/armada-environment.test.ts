/**
 * The story's "Armada" environment on AWS, through the real SDK clients against the emulator:
 * VPC, both subnets with gateway and routes, both security groups with the story's rules, the key
 * pair, 4 instances with Name and Version tags; an empty second plan; destroy leaves nothing.
 */
import { DescribeInstancesCommand, DescribeRouteTablesCommand, DescribeSecurityGroupsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { applyEnvironment, destroyEnvironment, executePlan, isEmptyPlan, loadSpecFile, plan, type EnvironmentSpec, type ProviderV1 } from '@armada/core';
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };

async function armadaOnAws(): Promise<EnvironmentSpec> {
  const spec = await loadSpecFile(specPath);
  return { ...spec, provider: { id: 'aws', region: 'us-east-1' } };
}

describe('the Armada environment on the AWS emulator', () => {
  let emulator: AwsEmulator;
  let provider: ProviderV1;
  let ec2: EC2Client;
  let spec: EnvironmentSpec;

  beforeAll(async () => {
    emulator = await startAwsEmulator({ bootMs: 80, terminateMs: 40 });
    provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
    spec = await armadaOnAws();
  });
  afterAll(async () => {
    ec2?.destroy();
    await emulator?.close();
  });

  it('applies the whole environment', async () => {
    await provider.verify?.();
    const planned = await plan({ spec, provider });
    expect(planned.summary.create).toBe(10);
    const result = await executePlan(planned, { provider, retry: fastRetry });
    expect(result.failed).toEqual([]);
    expect(result.status).toBe('succeeded');

    const vpcs = (await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'tag:armada:environment', Values: ['armada'] }] }))).Vpcs ?? [];
    expect(vpcs.map((vpc) => vpc.CidrBlock)).toEqual(['10.0.0.0/16']);
    const vpcId = vpcs[0]?.VpcId as string;

    const tables = (await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))).RouteTables ?? [];
    const tableOf = (address: string) => tables.find((table) => table.Tags?.some((tag) => tag.Key === 'armada:resource' && tag.Value === address));
    const publicRoutes = tableOf('subnet.public')?.Routes ?? [];
    expect(publicRoutes.some((route) => route.DestinationCidrBlock === '0.0.0.0/0' && route.GatewayId?.startsWith('igw-'))).toBe(true);
    expect((tableOf('subnet.private')?.Routes ?? []).some((route) => route.DestinationCidrBlock === '0.0.0.0/0')).toBe(false);

    const groups = (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))).SecurityGroups ?? [];
    const web = groups.find((group) => group.GroupName === 'Web Public');
    const data = groups.find((group) => group.GroupName === 'Data Internal');
    const ingress = (group: typeof web) =>
      (group?.IpPermissions ?? [])
        .flatMap((permission) => [
          ...(permission.IpRanges ?? []).map((range) => `${permission.IpProtocol} ${permission.FromPort} ${range.CidrIp}`),
          ...(permission.UserIdGroupPairs ?? []).map((pair) => `${permission.IpProtocol} ${permission.FromPort} ${pair.GroupId}`),
        ])
        .sort();
    expect(ingress(web)).toEqual(['tcp 22 100.64.0.0/10', 'tcp 443 0.0.0.0/0', 'tcp 80 0.0.0.0/0']);
    expect(ingress(data)).toEqual([`tcp 22 ${web?.GroupId}`, `tcp 3306 ${data?.GroupId}`, `tcp 3306 ${web?.GroupId}`, `tcp 6379 ${web?.GroupId}`].sort());

    const reservations = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:armada:environment', Values: ['armada'] }] }))).Reservations ?? [];
    const instances = reservations.flatMap((reservation) => reservation.Instances ?? []);
    const summary = instances
      .map((instance) => {
        const tag = (key: string) => instance.Tags?.find((entry) => entry.Key === key)?.Value;
        return [tag('Name'), tag('Version'), instance.InstanceType, instance.State?.Name, instance.KeyName, instance.PublicIpAddress ? 'public' : 'private'].join(' ');
      })
      .sort();
    expect(summary).toEqual([
      'data-1 1.0.0 m3.medium running armada-deploy private',
      'data-2 1.0.0 m3.medium running armada-deploy private',
      'web-1 1.0.0 m3.medium running armada-deploy public',
      'web-2 1.0.0 m3.medium running armada-deploy public',
    ]);
  });

  it('plans nothing the second time', async () => {
    const second = await plan({ spec, provider });
    expect(second.actions.filter((action) => action.type !== 'noop')).toEqual([]);
    expect(isEmptyPlan(second)).toBe(true);
  });

  it('destroys to an empty emulator', async () => {
    const { execution } = await destroyEnvironment({ environment: 'armada', provider, retry: fastRetry });
    expect(execution.failed).toEqual([]);
    expect(emulator.instancesTagged({ 'armada:environment': 'armada' })).toEqual([]);
    const left = emulator.inventory();
    expect({ ...left, routeTables: 0, securityGroups: 0 }).toEqual({ vpcs: 0, subnets: 0, internetGateways: 0, routeTables: 0, securityGroups: 0, keyPairs: 0, instances: 0 });
    // No VPC left means no main route table or default group either.
    expect(left.routeTables).toBe(0);
    expect(left.securityGroups).toBe(0);
  });
});

describe('the Armada environment on a bad day at AWS', () => {
  // CreateVpc takes no idempotency token: its retry must find the VPC the lost attempt made, which
  // eventual consistency hides for a while, instead of making a second one.
  it.each([1, 2, 3])('leaves one VPC and no orphan when a CreateVpc reply is lost under eventual consistency (seed %i)', async (seed) => {
    const emulator = await startAwsEmulator({ bootMs: 20, terminateMs: 20, seed });
    try {
      const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
      const spec = await armadaOnAws();
      emulator.faults.configure({ eventualConsistencyMs: 400 });
      emulator.faults.loseNextResponse('createNetwork');
      const result = await applyEnvironment({ spec, provider, retry: fastRetry, lock: false });
      expect(result.execution.status).toBe('succeeded');
      emulator.faults.configure({ eventualConsistencyMs: 0 });
      // Counted on the emulator's side: the VPC with its main route table and default group, the
      // gateway, two subnets with their tables, two groups, the key and four instances.
      expect(emulator.inventory()).toEqual({ vpcs: 1, subnets: 2, internetGateways: 1, routeTables: 3, securityGroups: 3, keyPairs: 1, instances: 4 });
      expect(emulator.calls('CreateVpc')).toBe(1);
      expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
    } finally {
      await emulator.close();
    }
  });

  it('retries the credentials and region check: two failed DescribeRegions do not end the apply', async () => {
    const emulator = await startAwsEmulator({ bootMs: 20, terminateMs: 20 });
    try {
      const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
      // The first describe call of the run is verify's DescribeRegions: it fails twice (a 500, which EC2 says to retry).
      emulator.faults.failNext('describe', new Error('simulated outage'), 2);
      const result = await applyEnvironment({ spec: await armadaOnAws(), provider, retry: fastRetry });
      expect(result.execution.status).toBe('succeeded');
      expect(emulator.calls('DescribeRegions')).toBe(3);
    } finally {
      await emulator.close();
    }
  });

  // Several seeds: each throttles a different set of calls.
  it.each([7, 11, 23, 42])('completes with exactly 4 instances with a fifth of the calls throttled and eventual consistency (seed %i)', async (seed) => {
    const emulator = await startAwsEmulator({ bootMs: 80, terminateMs: 40, seed });
    try {
      const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
      const spec = await armadaOnAws();
      emulator.faults.configure({ throttleRate: 0.2, eventualConsistencyMs: 150 });
      const planned = await plan({ spec, provider, retry: fastRetry });
      const result = await executePlan(planned, { provider, retry: fastRetry });
      expect(result.failed).toEqual([]);
      expect(result.status).toBe('succeeded');
      // Throttles are absorbed either by the executor (a retried step) or inside the provider
      // (a retried follow-up call); either way they happened and the apply still converged.
      expect(emulator.faults.throttledCalls).toBeGreaterThan(5);
      emulator.faults.configure({ throttleRate: 0, eventualConsistencyMs: 0 });
      const instances = emulator.instancesTagged({ 'armada:environment': 'armada' });
      expect(instances).toHaveLength(4);
      expect(new Set(instances.map((instance) => instance.tags['armada:resource'])).size).toBe(4);
      expect(emulator.calls('RunInstances')).toBeGreaterThanOrEqual(4);
      expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
    } finally {
      await emulator.close();
    }
  });
});
