/**
 * A migration reaches its servers the way the user's own `ssh` would: Host entries of an SSH
 * config (HostName, User, Port, IdentityFile, ProxyJump) apply where the migration file says
 * nothing, and the keys of a running ssh-agent are used when no key file is named. Against a real
 * sshd and a real ssh-agent (started here, stopped by its pid); the migration's own connect is
 * what is called.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginRegistry, ValidationError, loadMigrationFile, migrationFromFile, type ProvisionedInstance } from '@armada/core';
import { puppetConfigManagerPlugin } from '@armada/config-puppet';
import { generateKeyPair, inMemoryProviderPlugin, InMemoryCloud, startSshServer, type SshServer } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPEC_PATH } from '../story/index.js';

let directory: string;
let server: SshServer;
let keyFile: string;
let agent: ChildProcess | undefined;
const instance: ProvisionedInstance = { name: 'web-1', id: 'i-1', role: 'web', publicIp: '198.51.100.7', privateIp: '10.0.1.4' };

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'armada-ssh-config-'));
  const keyPair = await generateKeyPair();
  keyFile = join(directory, 'deploy');
  await writeFile(keyFile, keyPair.privateKey, { mode: 0o600 });
  server = await startSshServer({ authorizedKeys: [keyPair.publicKey] });
});
afterAll(async () => {
  agent?.kill();
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

/** The migration's connect for web-1, with these `servers.ssh` settings and environment. */
async function connectWith(ssh: Record<string, unknown>, env: Record<string, string | undefined> = {}): Promise<string | undefined> {
  const file = join(directory, `migration-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(
    file,
    JSON.stringify({
      name: 'ssh-config',
      source: { environment: 'armada', provider: { id: 'in-memory', region: 'local-1' } },
      target: { spec: SPEC_PATH, provider: { id: 'in-memory', region: 'local-1' } },
      servers: { configManager: 'puppet', policies: join(SPEC_PATH, '..', 'armada-servers.yaml'), ssh: { knownHosts: join(directory, `known_hosts-${Date.now()}`), waitSeconds: 5, ...ssh } },
    }),
  );
  const registry = new PluginRegistry().use(inMemoryProviderPlugin({ cloud: new InMemoryCloud() }), puppetConfigManagerPlugin());
  const migration = await migrationFromFile(await loadMigrationFile(file), { registry, cwd: directory, env: { HOME: directory, ...env } });
  const session = await migration.definition.servers?.connect(instance, new AbortController().signal, [instance]);
  try {
    return (await session?.exec('echo reached'))?.stdout;
  } finally {
    await session?.close?.();
  }
}

describe('SSH as the user has it set up', () => {
  it('takes HostName, Port, User and IdentityFile from the SSH config, and goes through a ProxyJump', async () => {
    const config = join(directory, 'config');
    await writeFile(
      config,
      [
        'Host armada-web',
        '  HostName 127.0.0.1',
        `  Port ${server.port}`,
        `  User ${server.username}`,
        `  IdentityFile ${keyFile}`,
        'Host armada-private',
        '  HostName 127.0.0.1',
        `  Port ${server.port}`,
        `  User ${server.username}`,
        `  IdentityFile ${keyFile}`,
        '  ProxyJump armada-web',
        '',
      ].join('\n'),
    );
    expect(await connectWith({ config, hosts: { '*': 'armada-web' } })).toBe('reached\n');
    expect(await connectWith({ config, hosts: { '*': 'armada-private' } })).toBe('reached\n');
    // The jump is really taken: through a jump host that does not answer, the same server is not reached.
    await writeFile(config, `Host armada-closed\n  HostName 127.0.0.1\n  Port 1\n  IdentityFile ${keyFile}\nHost armada-behind\n  HostName 127.0.0.1\n  Port ${server.port}\n  User ${server.username}\n  IdentityFile ${keyFile}\n  ProxyJump ${server.username}@armada-closed\n`);
    await expect(connectWith({ config, hosts: { '*': 'armada-behind' }, waitSeconds: 1 })).rejects.toThrow(/did not accept SSH connections/);
    // The default is ~/.ssh/config.
    execFileSync('mkdir', ['-p', join(directory, '.ssh')]);
    await writeFile(join(directory, '.ssh', 'config'), `Host armada-home\n  HostName 127.0.0.1\n  Port ${server.port}\n  User ${server.username}\n  IdentityFile ${keyFile}\n`);
    expect(await connectWith({ hosts: { '*': 'armada-home' } })).toBe('reached\n');
  });

  it('uses the keys of a running ssh-agent when no key file is named, and says what is missing without one', async () => {
    const socket = join(directory, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    for (let attempt = 0; !existsSync(socket); attempt++) {
      if (attempt > 500) throw new Error('ssh-agent did not start');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    execFileSync('ssh-add', [keyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
    const hosts = { '*': `${server.host}:${server.port}` };
    expect(await connectWith({ user: server.username, hosts }, { SSH_AUTH_SOCK: socket })).toBe('reached\n');
    const missing = await connectWith({ user: server.username, hosts }).catch((error: unknown) => error as ValidationError);
    expect(ValidationError.isInstance(missing)).toBe(true);
    expect((missing as ValidationError).issues[0]).toMatchObject({ path: 'servers.ssh.privateKeyPath', message: 'no key file is named and no ssh-agent runs (SSH_AUTH_SOCK)' });
  });
});
