/**
 * Cloud Firewalls as DigitalOcean defines them, on real droplets of the emulator's real-host
 * mode, through the dots-wrapper client alone: a droplet no firewall applies to is open; a
 * firewall denies what no rule allows, inbound and (with no outbound rule) outbound; it applies by
 * droplet id and by tag, its peers are addresses, droplet ids and tags (their droplets' private
 * and public addresses), its ports one, a range or all; and every change through the API reaches
 * the wire after `lab.settled()`: rules and members added and removed, tags put on and taken off
 * droplets, a PUT, a delete. Deleting a droplet removes its host.
 */
import { createApiClient } from 'dots-wrapper';
import { connectSsh, fingerprintOf, type HostKeyStore } from '@armada/core';
import { generateKeyPair, startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { debianImage, startHostLab, type HostLab } from '@armada/testkit/real-hosts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type Api = ReturnType<typeof createApiClient>;
interface Droplet {
  id: number;
  name: string;
  status: string;
  networks: { v4: Array<{ ip_address: string; type: string }> };
}
interface Host {
  id: number;
  host: string;
  privateIp: string;
  publicIp: string;
}

async function active(api: Api, id: number): Promise<Droplet> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const droplet = (await api.droplet.getDroplet({ droplet_id: id })).data.droplet as unknown as Droplet;
    if (droplet.status === 'active') return droplet;
    if (Date.now() > deadline) throw new Error(`droplet ${id} is still ${droplet.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Cloud Firewalls on real droplets', () => {
  let lab: HostLab;
  let emulator: DigitalOceanEmulator;
  let api: Api;
  let key: { privateKey: string; publicKey: string };
  let fingerprint: string;
  let a: Host;
  let b: Host;
  let firewallId: string;

  /** Makes a droplet in the VPC and waits for it to be active (its host booted). */
  async function droplet(vpcId: string, name: string, tags: string[], sshKeys: Array<number | string>): Promise<Host> {
    const created = (await api.droplet.createDroplet({ name, region: 'nyc3', size: 's-1vcpu-1gb', image: 'debian-12-x64', vpc_uuid: vpcId, tags, ssh_keys: sshKeys } as never)).data.droplet as unknown as Droplet;
    expect(created.status).toBe('new');
    const ready = await active(api, created.id);
    const address = (type: string) => ready.networks.v4.find((network) => network.type === type)?.ip_address as string;
    return { id: ready.id, host: String(ready.id), privateIp: address('private'), publicIp: address('public') };
  }
  const settle = () => lab.settled();
  const from = (droplet: Host) => ({ host: droplet.host });

  beforeAll(async () => {
    lab = await startHostLab({ image: await debianImage() });
    emulator = await startDigitalOceanEmulator({ hosts: lab, bootMs: 0 });
    api = createApiClient({ token: 'firewalls', endpoint: `${emulator.endpoint}/v2` });
    key = await generateKeyPair('firewalls');
    const sshKey = (await api.sshKey.createSshKey({ name: 'firewalls', public_key: key.publicKey })).data.ssh_key;
    fingerprint = sshKey.fingerprint;
    const vpc = (await api.vpc.createVpc({ name: 'firewalls', region: 'nyc3', ip_range: '10.20.0.0/24' })).data.vpc;
    await api.tag.createTag({ name: 'app' });
    // One droplet names its key by fingerprint, the other by id: the API takes either.
    [a, b] = await Promise.all([droplet(vpc.id, 'app-a', ['app'], [fingerprint]), droplet(vpc.id, 'plain-b', [], [sshKey.id])]);
    await settle();
    await lab.exec(a.host, 'for port in 5000 5002; do (nc -lk -p $port >/dev/null 2>&1 &); done; sleep 0.5');
    await lab.exec(b.host, '(nc -lk -p 5000 >/dev/null 2>&1 &); sleep 0.5');
  }, 240_000);

  afterAll(async () => {
    await emulator?.close();
    await lab?.close();
  });

  it('boots each droplet at the addresses the API reports, root holding the account key however it was named', async () => {
    for (const droplet of [a, b]) {
      expect(droplet.privateIp).toMatch(/^10\.20\.0\./);
      const status = lab.status(droplet.host);
      const fingerprints = (status?.hostKeys ?? []).map((hostKey) => fingerprintOf(Buffer.from(hostKey.split(/\s+/)[1] ?? '', 'base64')));
      const hostKeys: HostKeyStore = { get: async () => fingerprints[0], all: async () => fingerprints, set: async () => undefined, trustOnFirstUse: false };
      const session = await connectSsh({ host: droplet.publicIp, username: 'root', privateKey: key.privateKey, hostKeys, waitTimeoutMs: 30_000 });
      try {
        const output = (await session.exec('hostname; id -un; ip -4 -o address show eth0')).stdout;
        expect(output).toContain(`${droplet.privateIp}/24`);
        expect(output).toMatch(/^root$/m);
      } finally {
        session.close();
      }
    }
  });

  it('leaves a droplet no firewall applies to open both ways', async () => {
    expect(await lab.probe('internet', a.publicIp, 5000)).toBe('open');
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('open');
    expect(await lab.probe(from(a), b.privateIp, 5000)).toBe('open');
    expect(await lab.probe(from(b), a.privateIp, 5002)).toBe('open');
  });

  it('denies what no rule allows: inbound beyond the rules, and all outbound when there is no outbound rule', async () => {
    // By tag: it applies to app-a only. A droplet-id peer: plain-b's private and public addresses.
    const rule = { protocol: 'tcp', ports: '5000-5001', sources: { droplet_ids: [b.id] } };
    firewallId = (await api.firewall.createFirewall({ name: 'inbound-only', inbound_rules: [rule], outbound_rules: [], tags: ['app'] } as never)).data.firewall.id as string;
    await settle();
    expect(await lab.probe(from(b), a.privateIp, 5000)).toBe('open');
    expect(await lab.probe(from(b), a.publicIp, 5000)).toBe('open');
    expect(await lab.probe(from(b), a.privateIp, 5002)).toBe('filtered');
    expect(await lab.probe('internet', a.publicIp, 5000)).toBe('filtered');
    // No outbound rule: app-a starts nothing, not even to an open droplet.
    expect(await lab.probe(from(a), b.privateIp, 5000)).toBe('filtered');
    expect(await lab.probe(from(a), b.publicIp, 5000)).toBe('filtered');
    // plain-b, which no firewall applies to, is as open as before.
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('open');
  });

  it('follows rules added and removed: "all" ports outbound, an address peer inbound', async () => {
    const outbound = { protocol: 'tcp', ports: 'all', destinations: { addresses: ['0.0.0.0/0', '::/0'] } };
    const inbound = { protocol: 'tcp', ports: '5002', sources: { addresses: ['0.0.0.0/0'] } };
    await api.firewall.addRulesToFirewall({ firewall_id: firewallId, inbound_rules: [inbound], outbound_rules: [outbound] } as never);
    await settle();
    expect(await lab.probe(from(a), b.privateIp, 5000)).toBe('open');
    expect(await lab.probe('internet', a.publicIp, 5002)).toBe('open');
    expect(await lab.probe('internet', a.publicIp, 5000)).toBe('filtered');
    await api.firewall.removeRulesFromFirewall({ firewall_id: firewallId, inbound_rules: [inbound], outbound_rules: [outbound] } as never);
    await settle();
    expect(await lab.probe(from(a), b.privateIp, 5000)).toBe('filtered');
    expect(await lab.probe('internet', a.publicIp, 5002)).toBe('filtered');
  });

  it('follows membership: untagging and retagging a droplet, tags and droplets added to the firewall', async () => {
    const resources = [{ resource_id: String(a.id), resource_type: 'droplet' }];
    await api.tag.untagResources({ tag_name: 'app', resources } as never);
    await settle();
    expect(await lab.probe('internet', a.publicIp, 5002)).toBe('open');
    await api.tag.tagResources({ tag_name: 'app', resources } as never);
    await settle();
    expect(await lab.probe('internet', a.publicIp, 5002)).toBe('filtered');

    // plain-b joins by id: it is guarded now, and its own rule admits only itself.
    await api.firewall.addDropletsToFirewall({ firewall_id: firewallId, droplet_ids: [b.id] });
    await settle();
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('filtered');
    await api.firewall.removeDropletsFromFirewall({ firewall_id: firewallId, droplet_ids: [b.id] });
    await settle();
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('open');

    // And by a tag it gets later: the firewall names the tag first, then plain-b carries it.
    await api.tag.createTag({ name: 'late' });
    await api.firewall.addTagsToFirewall({ firewall_id: firewallId, tags: ['late'] });
    await settle();
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('open');
    await api.tag.tagResources({ tag_name: 'late', resources: [{ resource_id: String(b.id), resource_type: 'droplet' }] } as never);
    await settle();
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('filtered');
    await api.firewall.removeTagsFromFirewall({ firewall_id: firewallId, tags: ['late'] });
    await settle();
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('open');
  });

  it('follows a PUT, which replaces the firewall whole, and a delete, after which all is open', async () => {
    // Now by droplet id on plain-b, a tag peer (app-a's addresses) on every port, no tags: app-a is free.
    const rule = { protocol: 'tcp', ports: '0', sources: { tags: ['app'] } };
    await api.firewall.updateFirewall({ id: firewallId, name: 'inbound-only', inbound_rules: [rule], outbound_rules: [], droplet_ids: [b.id], tags: [] } as never);
    await settle();
    expect(await lab.probe('internet', a.publicIp, 5002)).toBe('open');
    expect(await lab.probe(from(a), b.privateIp, 5000)).toBe('open');
    expect(await lab.probe(from(a), b.publicIp, 5000)).toBe('open');
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('filtered');
    expect(await lab.probe(from(b), a.privateIp, 5000)).toBe('filtered');
    await api.firewall.deleteFirewall({ firewall_id: firewallId });
    await settle();
    expect(await lab.probe('internet', b.publicIp, 5000)).toBe('open');
    expect(await lab.probe(from(b), a.privateIp, 5000)).toBe('open');
  });

  it('removes the host of a deleted droplet, and leaves nothing once all are gone', async () => {
    await api.droplet.deleteDroplet({ droplet_id: b.id });
    await settle();
    expect(lab.status(b.host)).toBeUndefined();
    expect(lab.status(a.host)?.booted).toBe(true);
    expect(await lab.probe(from(a), b.privateIp, 5000)).not.toBe('open');
    await api.droplet.deleteDroplet({ droplet_id: a.id });
    const vpc = (await api.vpc.listVpcs({ page: 1, per_page: 50 })).data.vpcs[0];
    if (vpc) await api.vpc.deleteVpc({ vpc_id: vpc.id });
    await settle();
    expect(emulator.inventory()).toMatchObject({ vpcs: 0, droplets: 0 });
    const footprint = await lab.footprint();
    expect(footprint.namespaces).toEqual([`armada-${lab.runId}-internet`]);
    expect(footprint.processes).toEqual([]);
  });
});
