/**
 * Subnets in zones that offer the instance types launched into them. EC2 offers a type per zone
 * (the emulator has moto's us-east-1 data: m3.medium is in us-east-1a, b, c and e, not d or f)
 * and refuses a launch elsewhere (Unsupported). A subnet that names no zone gets one that offers
 * every type in it; one that names a zone that does not is refused when the plan is made.
 */
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { executePlan, isEmptyPlan, parseSpec, plan, type EnvironmentSpec } from '@armada/core';
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../src/index.js';
import { failure } from './helpers.js';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };

/** One private subnet, and instances of the given types in it. */
function zonesSpec(types: string[], zone?: string): Promise<EnvironmentSpec> {
  return parseSpec({
    name: 'zones',
    provider: { id: 'aws', region: 'us-east-1' },
    network: { name: 'net', cidr: '10.20.0.0/16', subnets: [{ name: 'app', cidr: '10.20.1.0/24', access: 'private', ...(zone ? { zone } : {}) }] },
    instances: types.map((instanceType, index) => ({ name: `app-${index}`, size: 'small', image: 'debian-12', subnet: 'app', aws: { instanceType } })),
  });
}

describe('subnet zones on AWS', () => {
  let emulator: AwsEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });
  const start = async (options: Parameters<typeof startAwsEmulator>[0] = {}) => {
    emulator = await startAwsEmulator({ bootMs: 20, terminateMs: 20, ...options });
    return createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 });
  };

  it('puts a subnet that names no zone in one offering its instance types; re-plans empty, and keeps it when a type is added', async () => {
    // Seed 11: the emulator, asked for no zone, would pick us-east-1d, which lacks m3.medium.
    const provider = await start({ seed: 11 });
    const spec = await zonesSpec(['m3.medium']);
    const planned = await plan({ spec, provider });
    const subnet = planned.actions.find((action) => action.address === 'subnet.app');
    // Chosen for the create, not asked for: compared with nothing once the subnet exists.
    expect(subnet?.desired?.chosen).toEqual({ zone: 'us-east-1a' });
    expect(subnet?.desired?.properties).not.toHaveProperty('zone');
    expect(planned.notes).toContainEqual(expect.objectContaining({ path: 'subnet.app', message: 'in us-east-1a, the first zone by name offering m3.medium' }));
    const result = await executePlan(planned, { provider, retry: fastRetry });
    expect(result.failed).toEqual([]);

    const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator?.endpoint, credentials, maxAttempts: 1 });
    const subnets = (await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:armada:environment', Values: ['zones'] }] }))).Subnets ?? [];
    ec2.destroy();
    // One of us-east-1a, b, c and e: the first of them by name.
    expect(subnets.map((entry) => entry.AvailabilityZone)).toEqual(['us-east-1a']);
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);

    // us-east-1a offers t3.micro too: the subnet stays, only the new instance is made.
    const grown = await plan({ spec: await zonesSpec(['m3.medium', 't3.micro']), provider });
    expect(grown.actions.filter((action) => action.type !== 'noop').map((action) => `${action.type} ${action.address}`)).toEqual(['create instance.app-1']);
  });

  it('keeps a subnet that exists in a zone other than the one it would choose (no replacement of it and its instances)', async () => {
    const provider = await start();
    // Made in us-east-1c (pinned then, or placed there by EC2 or an older Armada).
    const pinned = await zonesSpec(['m3.medium'], 'us-east-1c');
    expect((await executePlan(await plan({ spec: pinned, provider }), { provider, retry: fastRetry })).status).toBe('succeeded');
    const unpinned = await plan({ spec: await zonesSpec(['m3.medium']), provider });
    expect(unpinned.actions.filter((action) => action.type !== 'noop').map((action) => `${action.type} ${action.address}`)).toEqual([]);
  });

  it('refuses at plan time a subnet whose zone does not offer a type launched into it, naming the zones that do', async () => {
    const provider = await start();
    const error = await failure(plan({ spec: await zonesSpec(['m3.medium', 't3.micro'], 'us-east-1d'), provider }));
    expect(error.issues).toEqual([
      {
        path: 'subnet.app.zone',
        message: 'us-east-1d does not offer m3.medium: m3.medium is offered in us-east-1a, us-east-1b, us-east-1c, us-east-1e',
        fix: 'set zone to one of those, or leave it out for Armada to choose',
      },
    ]);
    expect(emulator?.calls('CreateVpc')).toBe(0);
  });

  it('refuses at plan time a subnet whose instance types no zone offers together, naming the zones of each', async () => {
    const provider = await start({ instanceTypeOfferings: { 'us-east-1': { 'm3.medium': ['us-east-1e'], 't3.micro': ['us-east-1a', 'us-east-1b'] } } });
    const error = await failure(plan({ spec: await zonesSpec(['t3.micro', 'm3.medium']), provider }));
    expect(error.issues).toEqual([
      {
        path: 'subnet.app',
        message: 'no zone offers all of m3.medium, t3.micro: m3.medium is offered in us-east-1e; t3.micro is offered in us-east-1a, us-east-1b',
        fix: 'put instances of types no zone shares in different subnets, or choose other sizes',
      },
    ]);
  });
});
