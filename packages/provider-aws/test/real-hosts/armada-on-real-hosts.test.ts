/**
 * The story's Armada environment applied through the real AWS SDK to the EC2 emulator, with every
 * instance a real host (`@armada/testkit/real-hosts`): SSH in with the key pair and the host key
 * from the console, reach the private data tier only through the web tier, and see "Data
 * Internal" enforced on the wire as the API says, kept in step when rules change. Destroy leaves
 * no host, namespace or process.
 */
import { AuthorizeSecurityGroupIngressCommand, DescribeInstancesCommand, DescribeSecurityGroupsCommand, EC2Client, RevokeSecurityGroupIngressCommand } from '@aws-sdk/client-ec2';
import { applyEnvironment, connectSsh, destroyEnvironment, fingerprintOf, isEmptyPlan, loadSpecFile, plan, type EnvironmentSpec, type HostKeyStore, type ProviderV1 } from '@armada/core';
import { generateKeyPair, startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { debianImage, startHostLab, type HostLab } from '@armada/testkit/real-hosts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsProvider } from '../../src/index.js';

const specPath = fileURLToPath(new URL('../../../../examples/environments/armada.yaml', import.meta.url));
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** Pins exactly the keys the instance printed on its console: nothing is trusted on first use. */
function pinned(keys: Record<string, string[]>): HostKeyStore {
  const fingerprints = (host: string) => (keys[host.replace(/:22$/, '')] ?? []).map((key) => fingerprintOf(Buffer.from(key.split(/\s+/)[1] ?? '', 'base64')));
  return { get: async (host) => fingerprints(host)[0], all: async (host) => fingerprints(host), set: async () => undefined, trustOnFirstUse: false };
}

describe('the Armada environment on real hosts behind the EC2 emulator', () => {
  let lab: HostLab;
  let emulator: AwsEmulator;
  let provider: ProviderV1;
  let ec2: EC2Client;
  let spec: EnvironmentSpec;
  let scratch: string;
  let key: { privateKey: string; publicKey: string };
  const hosts: Record<string, { id: string; privateIp: string; publicIp?: string }> = {};
  const consoleKeys: Record<string, string[]> = {};

  beforeAll(async () => {
    lab = await startHostLab({ image: await debianImage() });
    emulator = await startAwsEmulator({ hosts: lab, bootMs: 0, terminateMs: 0 });
    provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 50 });
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
    key = await generateKeyPair('deploy');
    scratch = await mkdtemp(join(tmpdir(), 'armada-real-aws-'));
    await writeFile(join(scratch, 'deploy.pub'), `${key.publicKey}\n`);
    const story = await loadSpecFile(specPath);
    spec = { ...story, provider: { id: 'aws', region: 'us-east-1' }, keyPairs: story.keyPairs.map((pair) => ({ ...pair, publicKey: key.publicKey })) };
  }, 180_000);

  afterAll(async () => {
    ec2?.destroy();
    await emulator?.close();
    await lab?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('applies the environment: every instance a running host with its own console host keys', async () => {
    const result = await applyEnvironment({ spec, provider });
    expect(result.execution.failed).toEqual([]);
    expect(result.execution.status).toBe('succeeded');
    await lab.settled();
    const reservations = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:armada:environment', Values: ['armada'] }] }))).Reservations ?? [];
    for (const instance of reservations.flatMap((reservation) => reservation.Instances ?? [])) {
      const name = instance.Tags?.find((tag) => tag.Key === 'Name')?.Value as string;
      expect(instance.State?.Name).toBe('running');
      hosts[name] = { id: instance.InstanceId as string, privateIp: instance.PrivateIpAddress as string, ...(instance.PublicIpAddress ? { publicIp: instance.PublicIpAddress } : {}) };
      const keys = await (provider.consoleHostKeys as NonNullable<ProviderV1['consoleHostKeys']>)(instance.InstanceId as string);
      expect(keys.length).toBeGreaterThan(0);
      consoleKeys[instance.PublicIpAddress ?? instance.PrivateIpAddress ?? ''] = keys;
    }
    expect(Object.keys(hosts).sort()).toEqual(['data-1', 'data-2', 'web-1', 'web-2']);
    expect(hosts['data-1']?.publicIp).toBeUndefined();
    expect(new Set(Object.values(consoleKeys).map((keys) => keys.join()))).toHaveProperty('size', 4);
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
  });

  it('logs in as admin on a web host, and on a data host only through it', async () => {
    const web = hosts['web-1'] as { publicIp: string; privateIp: string };
    const data = hosts['data-1'] as { privateIp: string };
    const hostKeys = pinned(consoleKeys);
    const session = await connectSsh({ host: web.publicIp, username: 'admin', privateKey: key.privateKey, hostKeys, waitTimeoutMs: 30_000 });
    try {
      const result = await session.exec('hostname; ip -4 -o address show eth0; sudo -n id -un');
      expect(result.stdout).toContain(`ip-${web.privateIp.replaceAll('.', '-')}`);
      expect(result.stdout).toContain(`${web.privateIp}/24`);
      expect(result.stdout).toMatch(/^root$/m);
    } finally {
      session.close();
    }
    // The direct path to the private subnet is closed: no route to it from outside the VPC.
    expect(await lab.probe('internet', data.privateIp, 22)).not.toBe('open');
    const jumped = await connectSsh({
      host: data.privateIp,
      username: 'admin',
      privateKey: key.privateKey,
      hostKeys,
      jumpHost: { host: web.publicIp, username: 'admin', privateKey: key.privateKey },
      waitTimeoutMs: 30_000,
    });
    try {
      expect((await jumped.exec('hostname')).stdout.trim()).toBe(`ip-${data.privateIp.replaceAll('.', '-')}`);
    } finally {
      jumped.close();
    }
  });

  it('enforces Data Internal on the wire: MySQL from the web tier and for replication, Redis from the web tier only', async () => {
    const data1 = hosts['data-1'] as { id: string; privateIp: string };
    // Listeners stand in for the servers here, so "open" (a listener answered) differs from "filtered" (a drop).
    await lab.exec(data1.id, 'for port in 3306 6379; do (nc -lk -p $port >/dev/null 2>&1 &); done; sleep 0.5');
    const web1 = { host: (hosts['web-1'] as { id: string }).id };
    const data2 = { host: (hosts['data-2'] as { id: string }).id };
    expect(await lab.probe(web1, data1.privateIp, 3306)).toBe('open');
    expect(await lab.probe(web1, data1.privateIp, 6379)).toBe('open');
    // data-2 replicates from data-1 (Data Internal admits MySQL from its own members), nothing else.
    expect(await lab.probe(data2, data1.privateIp, 3306)).toBe('open');
    expect(await lab.probe(data2, data1.privateIp, 6379)).toBe('filtered');
    expect(await lab.probe(data2, data1.privateIp, 8080)).toBe('filtered');
    expect(await lab.probe('internet', data1.privateIp, 3306)).not.toBe('open');
    // The web tier: HTTP open to the internet (nothing listens yet: refused, not dropped), 3306 dropped.
    const web1Public = (hosts['web-1'] as { publicIp: string }).publicIp;
    expect(await lab.probe('internet', web1Public, 80)).toBe('closed');
    expect(await lab.probe('internet', web1Public, 3306)).toBe('filtered');
  });

  it('keeps the hosts in step as a group rule changes', async () => {
    const groups = (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['Web Public'] }] }))).SecurityGroups ?? [];
    const groupId = groups[0]?.GroupId as string;
    const web1Public = (hosts['web-1'] as { publicIp: string }).publicIp;
    const rule = { GroupId: groupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] };
    expect(await lab.probe('internet', web1Public, 8080)).toBe('filtered');
    await ec2.send(new AuthorizeSecurityGroupIngressCommand(rule));
    await lab.settled();
    expect(await lab.probe('internet', web1Public, 8080)).toBe('closed');
    await ec2.send(new RevokeSecurityGroupIngressCommand(rule));
    await lab.settled();
    expect(await lab.probe('internet', web1Public, 8080)).toBe('filtered');
  });

  it('destroys every host: no namespace, process or machine route of them is left', async () => {
    const result = await destroyEnvironment({ environment: spec.name, provider });
    expect(result.execution.status).toBe('succeeded');
    await lab.settled();
    const footprint = await lab.footprint();
    // What is left is the lab's own internet, with nothing attached to it.
    expect(footprint.namespaces).toEqual([`armada-${lab.runId}-internet`]);
    expect(footprint.processes).toEqual([]);
  });
});
