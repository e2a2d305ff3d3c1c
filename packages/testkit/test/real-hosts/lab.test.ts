import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh, fingerprintOf } from '@armada/core';
import { debianImage, realHostSupport, startHostLab, sweepAbandonedLabs, type HostLab, type LabTopology } from '../../src/real-hosts/index.js';
import { generateKeyPair } from '../../src/ssh-server.js';

/** A process's state letter, or undefined when it is gone or a zombie (dead, not yet reaped by whoever adopted it). */
function runningState(pid: number): string | undefined {
  try {
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return state === 'Z' || state === 'X' ? undefined : state;
  } catch {
    return undefined;
  }
}

/** Logs in over SSH, trusting only the host keys the host made at its first boot. */
async function sshRun(lab: HostLab, hostId: string, host: string, username: string, privateKey: string, command: string): Promise<string> {
  const fingerprints = (lab.status(hostId)?.hostKeys ?? []).map((key) => fingerprintOf(Buffer.from(key.split(' ')[1] ?? '', 'base64')));
  const hostKeys = { get: async () => fingerprints[0], all: async () => fingerprints, set: async () => undefined, trustOnFirstUse: false };
  const session = await connectSsh({ host, username, privateKey, hostKeys, waitTimeoutMs: 20_000 });
  try {
    const result = await session.exec(command);
    return result.stdout + result.stderr;
  } finally {
    session.close();
  }
}

describe('the real-host lab', () => {
  let lab: HostLab;
  let key: { privateKey: string; publicKey: string };
  let topology: LabTopology;
  let webPublic: string;

  beforeAll(async () => {
    expect(realHostSupport().missing).toEqual([]);
    key = await generateKeyPair();
    lab = await startHostLab({ image: await debianImage() });
    webPublic = lab.allocatePublicIp('203.0.113.0/24');
    topology = {
      networks: [{ id: 'vpc-1', subnets: [ { id: 'public', cidr: '10.0.1.0/24', internet: true }, { id: 'private', cidr: '10.0.2.0/24', internet: false } ] }],
      hosts: [
        { id: 'web', networkId: 'vpc-1', subnetId: 'public', privateIp: '10.0.1.10', publicIp: webPublic, hostname: 'ip-10-0-1-10', login: { user: 'admin', authorizedKeys: [key.publicKey] }, running: true,
          firewall: { inbound: [{ protocol: 'tcp', ports: { from: 22, to: 22 }, peers: ['0.0.0.0/0'] }], outbound: [{ protocol: 'all', peers: ['0.0.0.0/0'] }] } },
        { id: 'data', networkId: 'vpc-1', subnetId: 'private', privateIp: '10.0.2.10', hostname: 'ip-10-0-2-10', login: { user: 'admin', authorizedKeys: [key.publicKey] }, running: true,
          firewall: { inbound: [{ protocol: 'tcp', ports: { from: 22, to: 22 }, peers: ['10.0.1.0/24'] }], outbound: [{ protocol: 'all', peers: ['0.0.0.0/0'] }] } },
      ],
    };
    lab.sync(topology);
    await lab.settled();
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('boots hosts with sshd and host keys of their own', async () => {
    const output = await sshRun(lab, 'web', webPublic, 'admin', key.privateKey, 'hostname; id -un; sudo -n id -un; ip -4 -o addr show eth0');
    expect(output).toContain('ip-10-0-1-10');
    expect(output).toMatch(/^admin$/m);
    expect(output).toMatch(/^root$/m);
    expect(output).toContain('10.0.1.10/24');
    expect(lab.status('web')?.hostKeys.length).toBeGreaterThan(0);
    expect(lab.status('web')?.hostKeys).not.toEqual(lab.status('data')?.hostKeys);
  });

  it('reaches a private host only from inside its network, and enforces firewalls on the wire', async () => {
    expect(await lab.probe('internet', '10.0.2.10', 22)).not.toBe('open');
    expect(await lab.probe({ host: 'web' }, '10.0.2.10', 22)).toBe('open');
    expect(await lab.probe({ host: 'web' }, '10.0.2.10', 3306)).toBe('filtered');
    expect(await lab.probe({ host: 'data' }, '10.0.1.10', 22)).toBe('open');
    expect(await lab.probe('internet', webPublic, 22)).toBe('open');
    expect(await lab.probe('internet', webPublic, 80)).toBe('filtered');
  });

  it('leaves nothing behind when closed', async () => {
    const other = await startHostLab({ image: await debianImage() });
    other.sync({ networks: [{ id: 'n', subnets: [{ id: 's', cidr: '10.9.0.0/24', internet: true }] }], hosts: [{ id: 'h', networkId: 'n', subnetId: 's', privateIp: '10.9.0.5', publicIp: other.allocatePublicIp('198.51.100.0/24'), hostname: 'h', login: { user: 'root', authorizedKeys: [key.publicKey] }, running: true }] });
    await other.settled();
    const before = await other.footprint();
    expect(before.namespaces.length).toBe(3);
    expect(before.processes.length).toBeGreaterThan(0);
    await other.close();
    const after = await other.footprint();
    expect(after).toEqual({ namespaces: [], machineLinks: [], processes: [] });
    expect(existsSync(`/var/tmp/armada-hosts/labs/${other.runId}`)).toBe(false);
    expect(execFileSync('ip', ['route']).toString()).not.toContain(`arm${other.runId}`);
  }, 120_000);
});

describe('a lab whose process was killed', () => {
  it('is swept at the next start-up, by its markers only', async () => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', join(import.meta.dirname, 'fixtures/lab-holder.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the holder exited with ${code} before its lab was up`)));
    });
    const held = JSON.parse(line) as { runId: string; namespaces: string[]; processes: number[] };
    expect(held.namespaces).toHaveLength(3);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    // Killed: its namespaces, host processes and machine link outlive it.
    const names = execFileSync('ip', ['netns', 'list']).toString();
    for (const name of held.namespaces) expect(names).toContain(name);
    expect(execFileSync('ip', ['-o', 'link']).toString()).toContain(`arm${held.runId}`);

    const swept = await sweepAbandonedLabs();
    expect(swept).toContain(held.runId);
    const after = execFileSync('ip', ['netns', 'list']).toString();
    for (const name of held.namespaces) expect(after).not.toContain(name);
    expect(execFileSync('ip', ['-o', 'link']).toString()).not.toContain(`arm${held.runId}`);
    for (const pid of held.processes) expect(runningState(pid)).toBeUndefined();
    expect(existsSync(`/var/tmp/armada-hosts/labs/${held.runId}`)).toBe(false);
  }, 120_000);
});
