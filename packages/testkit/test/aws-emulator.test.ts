/**
 * The EC2 / Route 53 emulator, driven only through the real AWS SDK clients: the rules and wire
 * details the providers rely on.
 */
import {
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSecurityGroupCommand,
  DeleteVpcCommand,
  DescribeInstancesCommand,
  DescribeVpcsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  AuthorizeSecurityGroupIngressCommand,
  paginateDescribeVpcs,
} from '@aws-sdk/client-ec2';
import { ChangeResourceRecordSetsCommand, ListResourceRecordSetsCommand, Route53Client, waitUntilResourceRecordSetsChanged } from '@aws-sdk/client-route-53';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATED_IMAGES, startAwsEmulator, type AwsEmulator } from '../src/index.js';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: { name?: string }) => error.name,
  );
}

describe('EC2 emulator', () => {
  let emulator: AwsEmulator;
  let ec2: EC2Client;
  beforeAll(async () => {
    emulator = await startAwsEmulator({ bootMs: 50, terminateMs: 30 });
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
  });
  afterAll(async () => {
    ec2.destroy();
    await emulator.close();
  });

  const newVpc = async (cidr = '10.1.0.0/16') => (await ec2.send(new CreateVpcCommand({ CidrBlock: cidr }))).Vpc?.VpcId as string;

  it('pages Describe calls with opaque tokens the SDK paginator follows', async () => {
    const made = await Promise.all(Array.from({ length: 7 }, (_, index) => ec2.send(new CreateVpcCommand({ CidrBlock: `10.${100 + index}.0.0/16`, TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'page', Value: 'yes' }] }] }))));
    const pages: number[] = [];
    const seen: string[] = [];
    for await (const page of paginateDescribeVpcs({ client: ec2, pageSize: 3 }, { Filters: [{ Name: 'tag:page', Values: ['yes'] }] })) {
      pages.push(page.Vpcs?.length ?? 0);
      seen.push(...(page.Vpcs ?? []).map((vpc) => vpc.VpcId as string));
    }
    expect(pages).toEqual([3, 3, 1]);
    expect(seen.sort()).toEqual(made.map((result) => result.Vpc?.VpcId as string).sort());
    expect(await codeOf(ec2.send(new DescribeVpcsCommand({ MaxResults: 5, NextToken: 'not-a-token' })))).toBe('InvalidPaginationToken');
  });

  it('enforces CIDR rules: VPC size, containment and overlap', async () => {
    expect(await codeOf(ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/8' })))).toBe('InvalidVpc.Range');
    const vpcId = await newVpc('10.2.0.0/16');
    expect(await codeOf(ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.3.0.0/24' })))).toBe('InvalidSubnet.Range');
    await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.2.1.0/24' }));
    expect(await codeOf(ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.2.1.128/25' })))).toBe('InvalidSubnet.Conflict');
    expect(await codeOf(ec2.send(new DeleteVpcCommand({ VpcId: vpcId })))).toBe('DependencyViolation');
    expect(await codeOf(ec2.send(new DescribeVpcsCommand({ VpcIds: ['vpc-doesnotexist'] })))).toBe('InvalidVpcID.NotFound');
  });

  it('refuses duplicates and deleting a group another group refers to', async () => {
    const vpcId = await newVpc('10.4.0.0/16');
    const web = (await ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: 'web', Description: 'web' }))).GroupId as string;
    expect(await codeOf(ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: 'web', Description: 'again' })))).toBe('InvalidGroup.Duplicate');
    const data = (await ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: 'data', Description: 'data' }))).GroupId as string;
    const rule = { GroupId: data, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 3306, ToPort: 3306, UserIdGroupPairs: [{ GroupId: web }] }] };
    await ec2.send(new AuthorizeSecurityGroupIngressCommand(rule));
    expect(await codeOf(ec2.send(new AuthorizeSecurityGroupIngressCommand(rule)))).toBe('InvalidPermission.Duplicate');
    expect(await codeOf(ec2.send(new DeleteSecurityGroupCommand({ GroupId: web })))).toBe('DependencyViolation');
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR x';
    await ec2.send(new ImportKeyPairCommand({ KeyName: 'dup', PublicKeyMaterial: new TextEncoder().encode(key) }));
    expect(await codeOf(ec2.send(new ImportKeyPairCommand({ KeyName: 'dup', PublicKeyMaterial: new TextEncoder().encode(key) })))).toBe('InvalidKeyPair.Duplicate');
  });

  it('replays a RunInstances by ClientToken, refuses it with other parameters, and moves instances through their states', async () => {
    const vpcId = await newVpc('10.5.0.0/16');
    const subnetId = (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.5.1.0/24' }))).Subnet?.SubnetId as string;
    const imageId = EMULATED_IMAGES[0]?.imageId as string;
    const launch = { ImageId: imageId, InstanceType: 't3.small' as const, MinCount: 1, MaxCount: 1, SubnetId: subnetId, ClientToken: 'token-1' };
    const first = (await ec2.send(new RunInstancesCommand(launch))).Instances?.[0];
    expect(first?.State?.Name).toBe('pending');
    const again = (await ec2.send(new RunInstancesCommand(launch))).Instances?.[0];
    expect(again?.InstanceId).toBe(first?.InstanceId);
    expect(await codeOf(ec2.send(new RunInstancesCommand({ ...launch, InstanceType: 't3.large' })))).toBe('IdempotentParameterMismatch');
    expect(await codeOf(ec2.send(new RunInstancesCommand({ ...launch, ClientToken: 'token-2', InstanceType: 'm9.huge' as never })))).toBe('Unsupported');
    await new Promise((resolve) => setTimeout(resolve, 80));
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [first?.InstanceId as string] }));
    expect(described.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('running');
    expect(described.Reservations?.[0]?.Instances?.[0]?.PrivateIpAddress).toMatch(/^10\.5\.1\.\d+$/);
    const terminated = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [first?.InstanceId as string] }));
    expect(terminated.TerminatingInstances?.[0]?.CurrentState?.Name).toBe('shutting-down');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const gone = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [first?.InstanceId as string] }));
    expect(gone.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('terminated');
  });

  it('hides new resources for a while under eventual consistency', async () => {
    emulator.faults.configure({ eventualConsistencyMs: 100 });
    try {
      const vpcId = await newVpc('10.6.0.0/16');
      expect(await codeOf(ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] })))).toBe('InvalidVpcID.NotFound');
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect((await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }))).Vpcs?.[0]?.VpcId).toBe(vpcId);
    } finally {
      emulator.faults.reset();
    }
  });

  it('throttles with 503 RequestLimitExceeded, which the SDK itself retries', async () => {
    emulator.faults.configure({ throttleRate: 1 });
    try {
      const error = await ec2.send(new DescribeVpcsCommand({})).catch((caught: { name: string; $metadata: { httpStatusCode: number; requestId?: string } }) => caught);
      expect(error).toMatchObject({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });
      expect((error as { $metadata: { requestId?: string } }).$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
      emulator.faults.configure({ throttleRate: 0.5 });
      const retrying = new EC2Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 10, retryMode: 'standard' });
      await expect(retrying.send(new DescribeVpcsCommand({}))).resolves.toBeDefined();
      retrying.destroy();
    } finally {
      emulator.faults.reset();
    }
  });

  it('answers an unknown action and an unknown access key as AWS does', async () => {
    const strict = await startAwsEmulator({ accessKeyIds: ['AKIDGOOD'] });
    try {
      const bad = new EC2Client({ region: 'us-east-1', endpoint: strict.endpoint, credentials: { accessKeyId: 'AKIDBAD', secretAccessKey: 'x' }, maxAttempts: 1 });
      expect(await codeOf(bad.send(new DescribeVpcsCommand({})))).toBe('AuthFailure');
      const response = await fetch(`${strict.endpoint}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKIDGOOD/20260101/us-east-1/ec2/aws4_request' },
        body: 'Action=LaunchRockets&Version=2016-11-15',
      });
      expect(response.status).toBe(400);
      expect(await response.text()).toContain('<Code>InvalidAction</Code>');
      bad.destroy();
    } finally {
      await strict.close();
    }
  });
});

describe('Route 53 emulator', () => {
  it('applies change batches atomically, lists records and reports INSYNC', async () => {
    const emulator = await startAwsEmulator({ changeSyncMs: 30 });
    const route53 = new Route53Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
    try {
      const zoneId = emulator.createHostedZone('example.test');
      const record = (name: string, value: string) => ({ Name: name, Type: 'A' as const, TTL: 300, ResourceRecords: [{ Value: value }] });
      const submitted = await route53.send(
        new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId, ChangeBatch: { Changes: [{ Action: 'CREATE', ResourceRecordSet: record('www.example.test', '192.0.2.1') }] } }),
      );
      expect(submitted.ChangeInfo?.Status).toBe('PENDING');
      await waitUntilResourceRecordSetsChanged({ client: route53, maxWaitTime: 5, minDelay: 0.02, maxDelay: 0.05 }, { Id: submitted.ChangeInfo?.Id as string });
      // One bad change fails the whole batch: the good one is not applied either.
      const refused = await route53
        .send(
          new ChangeResourceRecordSetsCommand({
            HostedZoneId: zoneId,
            ChangeBatch: {
              Changes: [
                { Action: 'CREATE', ResourceRecordSet: record('api.example.test', '192.0.2.2') },
                { Action: 'CREATE', ResourceRecordSet: record('www.example.test', '192.0.2.3') },
              ],
            },
          }),
        )
        .catch((error: { name: string; message: string }) => error);
      expect(refused).toMatchObject({ name: 'InvalidChangeBatch' });
      expect((refused as Error).message).toContain("Tried to create resource record set [name='www.example.test.', type='A'] but it already exists");
      const listed = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
      expect(listed.ResourceRecordSets?.map((set) => `${set.Name} ${set.Type}`)).toEqual(['example.test. NS', 'example.test. SOA', 'www.example.test. A']);
      const missing = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: 'ZNOPE' })).catch((error: { name: string }) => error.name);
      expect(missing).toBe('NoSuchHostedZone');
    } finally {
      route53.destroy();
      await emulator.close();
    }
  });
});
