/**
 * EC2 answers the rules of a security group that share a protocol and ports as one IpPermission
 * listing every peer (moto's aws-verified test_authorize_security_group_rules_with_different_
 * ipranges_or_prefixes). The provider reads each peer of it as its own rule, with its own
 * description, and revokes one without touching the others.
 */
import { DescribeSecurityGroupsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { executePlan, isEmptyPlan, parseSpec, plan, type EnvironmentSpec } from '@armada/core';
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../src/index.js';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };
const https = (from: string | { firewall: string }, description: string) => ({ protocol: 'tcp', ports: 443, from, description });

function firewallSpec(rules: ReturnType<typeof https>[]): Promise<EnvironmentSpec> {
  return parseSpec({
    name: 'merged',
    provider: { id: 'aws', region: 'us-east-1' },
    network: { name: 'net', cidr: '10.30.0.0/16', subnets: [{ name: 'app', cidr: '10.30.1.0/24', access: 'private' }] },
    firewalls: [
      { name: 'lb', description: 'load balancer', ingress: [] },
      { name: 'web', description: 'web servers', ingress: rules },
    ],
  });
}

describe('security group rules EC2 merges into one permission', () => {
  let emulator: AwsEmulator;
  let ec2: EC2Client;
  beforeAll(async () => {
    emulator = await startAwsEmulator();
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
  });
  afterAll(async () => {
    ec2.destroy();
    await emulator.close();
  });

  it('are three rules to the provider; removing one revokes just that one', async () => {
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
    const rules = [https('10.30.8.0/24', 'office'), https('10.30.9.0/24', 'vpn'), https({ firewall: 'lb' }, 'balancer')];
    const spec = await firewallSpec(rules);
    expect((await executePlan(await plan({ spec, provider }), { provider, retry: fastRetry })).failed).toEqual([]);

    const groups = (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:armada:environment', Values: ['merged'] }] }))).SecurityGroups ?? [];
    const lb = groups.find((group) => group.GroupName === 'lb')?.GroupId;
    const web = () => ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['web'] }] })).then((found) => found.SecurityGroups?.[0]?.IpPermissions);
    expect(await web()).toEqual([
      {
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        IpRanges: [
          { CidrIp: '10.30.8.0/24', Description: 'office' },
          { CidrIp: '10.30.9.0/24', Description: 'vpn' },
        ],
        Ipv6Ranges: [],
        PrefixListIds: [],
        UserIdGroupPairs: [{ GroupId: lb, UserId: '123456789012', Description: 'balancer' }],
      },
    ]);

    const discovered = await provider.services.firewall.discover({ environment: 'merged', findById: () => undefined });
    expect(discovered.find((firewall) => firewall.name === 'web')?.properties.ingress).toEqual([
      { protocol: 'tcp', ports: { from: 443, to: 443 }, peer: { cidr: '10.30.8.0/24' }, description: 'office' },
      { protocol: 'tcp', ports: { from: 443, to: 443 }, peer: { cidr: '10.30.9.0/24' }, description: 'vpn' },
      { protocol: 'tcp', ports: { from: 443, to: 443 }, peer: { firewall: 'lb' }, description: 'balancer' },
    ]);
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);

    const withoutVpn = await firewallSpec(rules.filter((rule) => rule.description !== 'vpn'));
    const [authorized, revoked] = [emulator.calls('AuthorizeSecurityGroupIngress'), emulator.calls('RevokeSecurityGroupIngress')];
    const update = await plan({ spec: withoutVpn, provider });
    expect(update.actions.filter((action) => action.type !== 'noop').map((action) => `${action.type} ${action.address}`)).toEqual(['update firewall.web']);
    expect((await executePlan(update, { provider, retry: fastRetry })).failed).toEqual([]);
    expect([emulator.calls('AuthorizeSecurityGroupIngress') - authorized, emulator.calls('RevokeSecurityGroupIngress') - revoked]).toEqual([0, 1]);
    expect((await web())?.[0]).toMatchObject({ IpRanges: [{ CidrIp: '10.30.8.0/24', Description: 'office' }], UserIdGroupPairs: [{ GroupId: lb, Description: 'balancer' }] });
    expect(isEmptyPlan(await plan({ spec: withoutVpn, provider }))).toBe(true);
  });
});
