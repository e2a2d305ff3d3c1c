/**
 * The story's Armada environment applied through the real dots-wrapper client to the DigitalOcean
 * emulator, with every droplet a real host (`@armada/testkit/real-hosts`): SSH in as root with the
 * account's key and the host keys the host made at its first boot, reach the data tier only
 * through the web tier, and see "Data Internal" enforced on the wire as the API says, kept in step when firewalls change. Destroy leaves no host,
 * namespace or process.
 */
import { createApiClient } from 'dots-wrapper';
import { applyEnvironment, connectSsh, destroyEnvironment, fingerprintOf, isEmptyPlan, loadSpecFile, plan, type EnvironmentSpec, type HostKeyStore, type ProviderV1 } from '@armada/core';
import { generateKeyPair, startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { debianImage, startHostLab, type HostLab } from '@armada/testkit/real-hosts';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDigitalOceanProvider, tag } from '../../src/index.js';

const specPath = fileURLToPath(new URL('../../../../examples/environments/armada.yaml', import.meta.url));
const token = 'story';

type Api = ReturnType<typeof createApiClient>;
interface Droplet {
  id: number;
  name: string;
  status: string;
  networks: { v4: Array<{ ip_address: string; netmask: string; type: string }> };
}
interface Host {
  id: string;
  privateIp: string;
  publicIp: string;
}

/**
 * Pins exactly the keys each host made at its first boot (DigitalOcean has no console API to read
 * them from, so the lab's record of them stands in): nothing is trusted on first use.
 */
function pinned(keys: Record<string, string[]>): HostKeyStore {
  const fingerprints = (host: string) => (keys[host.replace(/:22$/, '')] ?? []).map((key) => fingerprintOf(Buffer.from(key.split(/\s+/)[1] ?? '', 'base64')));
  return { get: async (host) => fingerprints(host)[0], all: async (host) => fingerprints(host), set: async () => undefined, trustOnFirstUse: false };
}

/** A TCP connection attempt from this process (the operator: its address is the lab's machine link, in 100.64.0.0/10). */
function probeFromMachine(address: string, port: number, timeoutMs = 2_000): Promise<'open' | 'closed' | 'filtered'> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (result: 'open' | 'closed' | 'filtered') => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done('filtered'));
    socket.once('connect', () => done('open'));
    socket.once('error', () => done('closed'));
  });
}

describe('the Armada environment on real hosts behind the DigitalOcean emulator', () => {
  let lab: HostLab;
  let emulator: DigitalOceanEmulator;
  let provider: ProviderV1;
  let api: Api;
  let spec: EnvironmentSpec;
  let key: { privateKey: string; publicKey: string };
  const hosts: Record<string, Host> = {};
  const hostKeys: Record<string, string[]> = {};
  const host = (name: string) => hosts[name] as Host;
  const firewallNamed = async (name: string) => {
    const firewalls = (await api.firewall.listFirewalls({ page: 1, per_page: 50 })).data.firewalls;
    const firewall = firewalls.find((entry) => entry.name === name);
    if (!firewall) throw new Error(`no firewall ${name}: ${firewalls.map((entry) => entry.name).join(', ')}`);
    return firewall;
  };

  beforeAll(async () => {
    lab = await startHostLab({ image: await debianImage() });
    emulator = await startDigitalOceanEmulator({ hosts: lab, bootMs: 0 });
    provider = createDigitalOceanProvider({ region: 'nyc3', token, endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 50 });
    api = createApiClient({ token, endpoint: `${emulator.endpoint}/v2` });
    key = await generateKeyPair('deploy');
    const story = await loadSpecFile(specPath);
    spec = { ...story, provider: { id: 'digitalocean', region: 'nyc3' }, keyPairs: story.keyPairs.map((pair) => ({ ...pair, publicKey: key.publicKey })) };
  }, 180_000);

  afterAll(async () => {
    await emulator?.close();
    await lab?.close();
  });

  it('applies the environment: every droplet an active host with host keys of its own', async () => {
    const result = await applyEnvironment({ spec, provider });
    expect(result.execution.failed).toEqual([]);
    expect(result.execution.status).toBe('succeeded');
    await lab.settled();
    const droplets = (await api.droplet.listDroplets({ page: 1, per_page: 50, tag_name: tag('armada:env', 'armada') })).data.droplets as unknown as Droplet[];
    for (const droplet of droplets) {
      expect(droplet.status).toBe('active');
      const address = (type: string) => droplet.networks.v4.find((network) => network.type === type)?.ip_address as string;
      hosts[droplet.name] = { id: String(droplet.id), privateIp: address('private'), publicIp: address('public') };
      // The private interface is in the VPC's range, 10.0.0.0/16 (the story network's CIDR).
      expect(droplet.networks.v4.find((network) => network.type === 'private')?.netmask).toBe('255.255.0.0');
      const status = lab.status(String(droplet.id));
      expect(status?.booted).toBe(true);
      expect(status?.hostKeys.length).toBeGreaterThan(0);
      // Both addresses lead to the same host: pin its keys under each.
      hostKeys[address('private')] = status?.hostKeys ?? [];
      hostKeys[address('public')] = status?.hostKeys ?? [];
    }
    expect(Object.keys(hosts).sort()).toEqual(['data-1', 'data-2', 'web-1', 'web-2']);
    // On DigitalOcean every droplet has a public address, the data tier's too: only firewalls keep it private.
    for (const entry of Object.values(hosts)) expect(entry.publicIp).toMatch(/^198\.51\.100\./);
    expect(new Set(Object.values(hosts).map((entry) => lab.status(entry.id)?.hostKeys.join()))).toHaveProperty('size', 4);
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
  });

  it('refuses, in the API error format, an image the lab cannot boot', async () => {
    const vpc = (await api.vpc.listVpcs({ page: 1, per_page: 50 })).data.vpcs[0];
    const failure = await api.droplet.createDroplet({ name: 'ubuntu', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', vpc_uuid: vpc?.id } as never).then(
      () => undefined,
      (error: { response?: { status: number; data: unknown } }) => error.response,
    );
    expect(failure?.status).toBe(422);
    expect(failure?.data).toMatchObject({ id: 'unprocessable_entity', message: expect.stringMatching(/boots Debian 12 only.*ubuntu-24-04-x64/), request_id: expect.any(String) });
    expect(emulator.inventory().droplets).toBe(4);
  });

  it('logs in as root on a web droplet, and on a data droplet only through it', async () => {
    const web = host('web-1');
    const data = host('data-1');
    const pins = pinned(hostKeys);
    const session = await connectSsh({ host: web.publicIp, username: 'root', privateKey: key.privateKey, hostKeys: pins, waitTimeoutMs: 30_000 });
    try {
      const result = await session.exec('hostname; id -un; ip -4 -o address show eth0');
      expect(result.stdout).toMatch(/^web-1$/m);
      expect(result.stdout).toMatch(/^root$/m);
      // The VPC's range: 10.0.0.0/16, the story network's CIDR.
      expect(result.stdout).toContain(`${web.privateIp}/16`);
    } finally {
      session.close();
    }
    // The data droplet's public address answers nothing from outside: Data Internal admits only
    // the tiers' own droplets, and DigitalOcean drops what no firewall of a droplet admits.
    expect(await lab.probe('internet', data.publicIp, 22)).toBe('filtered');
    // Nor from the operators' VPN range, from which web-1 just took SSH.
    expect(await probeFromMachine(web.publicIp, 22)).toBe('open');
    expect(await probeFromMachine(data.publicIp, 22)).toBe('filtered');
    const jumped = await connectSsh({
      host: data.privateIp,
      username: 'root',
      privateKey: key.privateKey,
      hostKeys: pins,
      jumpHost: { host: web.publicIp, username: 'root', privateKey: key.privateKey },
      waitTimeoutMs: 30_000,
    });
    try {
      expect((await jumped.exec('hostname; id -un')).stdout.trim().split('\n')).toEqual(['data-1', 'root']);
    } finally {
      jumped.close();
    }
  });

  it('enforces Data Internal on the wire: MySQL from the web tier and for replication, nothing from the internet', async () => {
    const data1 = host('data-1');
    // Listeners stand in for the servers here, so "open" (a listener answered) differs from "filtered" (a drop).
    await lab.exec(data1.id, 'for port in 3306 6379; do (nc -lk -p $port >/dev/null 2>&1 &); done; sleep 0.5');
    const web1 = { host: host('web-1').id };
    const data2 = { host: host('data-2').id };
    expect(await lab.probe(web1, data1.privateIp, 3306)).toBe('open');
    expect(await lab.probe(web1, data1.privateIp, 6379)).toBe('open');
    // A tag peer is its droplets' public addresses too: web-1 reaches data-1's public address from its own.
    expect(await lab.probe(web1, data1.publicIp, 6379)).toBe('open');
    // data-2 replicates from data-1: Data Internal admits MySQL from its own members.
    expect(await lab.probe(data2, data1.privateIp, 3306)).toBe('open');
    // As on AWS: inside the VPC too, only what Data Internal admits. (The provider used to add a
    // guard admitting the whole VPC range; firewalls add up, so it opened Redis and every port.)
    expect(await lab.probe(data2, data1.privateIp, 6379)).toBe('filtered');
    expect(await lab.probe(data2, data1.privateIp, 8080)).toBe('filtered');
    // The data tier's public address: nothing from the internet, whatever listens.
    expect(await lab.probe('internet', data1.publicIp, 3306)).toBe('filtered');
    expect(await lab.probe('internet', data1.publicIp, 6379)).toBe('filtered');
    expect(await lab.probe('internet', data1.privateIp, 3306)).not.toBe('open');
    // The web tier: HTTP open to the internet (nothing listens yet: refused, not dropped), MySQL dropped.
    const web1Public = host('web-1').publicIp;
    expect(await lab.probe('internet', web1Public, 80)).toBe('closed');
    expect(await lab.probe('internet', web1Public, 3306)).toBe('filtered');
  });

  it('keeps the hosts in step as firewall rules and members change through the API', async () => {
    const webPublic = await firewallNamed('armada.armada.Web-20Public');
    const web1Public = host('web-1').publicIp;
    const rule = { protocol: 'tcp', ports: '8080', sources: { addresses: ['0.0.0.0/0'] } };
    expect(await lab.probe('internet', web1Public, 8080)).toBe('filtered');
    await api.firewall.addRulesToFirewall({ firewall_id: webPublic.id as string, inbound_rules: [rule] } as never);
    await lab.settled();
    expect(await lab.probe('internet', web1Public, 8080)).toBe('closed');
    await api.firewall.removeRulesFromFirewall({ firewall_id: webPublic.id as string, inbound_rules: [rule] } as never);
    await lab.settled();
    expect(await lab.probe('internet', web1Public, 8080)).toBe('filtered');

    // A droplet named by id joins a firewall: Web Public's HTTP rule now reaches data-1 too.
    const data1 = host('data-1');
    expect(await lab.probe('internet', data1.publicIp, 80)).toBe('filtered');
    await api.firewall.addDropletsToFirewall({ firewall_id: webPublic.id as string, droplet_ids: [Number(data1.id)] });
    await lab.settled();
    expect(await lab.probe('internet', data1.publicIp, 80)).toBe('closed');
    await api.firewall.removeDropletsFromFirewall({ firewall_id: webPublic.id as string, droplet_ids: [Number(data1.id)] });
    await lab.settled();
    expect(await lab.probe('internet', data1.publicIp, 80)).toBe('filtered');
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
  });

  it('destroys every droplet: no namespace or process of them is left', async () => {
    const result = await destroyEnvironment({ environment: spec.name, provider });
    expect(result.execution.failed).toEqual([]);
    expect(result.execution.status).toBe('succeeded');
    await lab.settled();
    expect(emulator.inventory()).toMatchObject({ vpcs: 0, droplets: 0, firewalls: 0, sshKeys: 0 });
    const footprint = await lab.footprint();
    // What is left is the lab's own internet, with nothing attached to it.
    expect(footprint.namespaces).toEqual([`armada-${lab.runId}-internet`]);
    expect(footprint.processes).toEqual([]);
  });
});
