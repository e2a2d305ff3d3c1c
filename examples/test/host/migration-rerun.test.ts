/**
 * Re-running a finished migration, as a user does it (`armada migrate`, a child process), with its
 * servers configured for real (Puppet over SSH to a local sshd standing for every new instance):
 * a plain re-run says the migration finished and changes nothing; `--start-over` runs every step
 * again and keeps the earlier run's files; the host keys pinned by the first run live in the
 * project's known_hosts (OpenSSH's format, outside the run's directory), survive both, and a
 * server that comes back with another host key is refused on the re-run. In the "on this host"
 * project: Puppet holds a machine-wide lock.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSshServer } from '@armada/testkit';
import { describe, expect, it } from 'vitest';
import { armada } from '../armada-cli.js';
import { SPEC_PATH, startStoryWorld } from '../../story/index.js';

describe('re-running a finished migration', () => {
  it('says it finished; --start-over keeps the pins and the last run, and refuses a changed host key', { timeout: 600_000 }, async () => {
    const world = await startStoryWorld({ source: 'digitalocean', target: 'aws', servers: true, customers: 10, sessions: 10 });
    try {
      const ssh = world.ssh;
      if (!ssh) throw new Error('the story world has no SSH server');
      const key = join(world.directory, 'deploy-key');
      await writeFile(key, ssh.privateKey, { mode: 0o600 });
      const policies = join(world.directory, 'policies.json');
      await writeFile(policies, JSON.stringify(ssh.policies));
      const knownHosts = join(world.directory, 'project', 'known_hosts');
      const runDirectory = join(world.directory, 'run');
      const file = join(world.directory, 'migration.json');
      await writeFile(
        file,
        JSON.stringify({
          name: 'rerun',
          directory: runDirectory,
          source: { environment: 'armada', provider: { id: 'digitalocean', region: world.source.region } },
          target: { spec: SPEC_PATH, provider: { id: 'aws', region: world.target.region } },
          servers: {
            configManager: 'puppet',
            policies,
            // Every instance maps to this machine's sshd, and Puppet runs one at a time per machine.
            concurrency: 1,
            ssh: { user: ssh.server.username, privateKeyPath: key, hosts: { '*': `${ssh.server.host}:${ssh.server.port}` }, knownHosts, waitSeconds: 30 },
          },
        }),
      );
      const env = { ...process.env, ...world.source.env, ...world.target.env };
      const migrate = (...args: string[]) => armada(['migrate', file, ...args], env).done;

      const first = await migrate();
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain('Migration rerun: succeeded');
      // The pin, in OpenSSH's format: ssh-keygen finds it, with the server's key.
      const name = `[${ssh.server.host}]:${ssh.server.port}`;
      expect(execFileSync('ssh-keygen', ['-F', name, '-f', knownHosts], { encoding: 'utf8' })).toContain(ssh.server.hostPublicKey.split(' ').slice(0, 2).join(' '));
      const pins = readFileSync(knownHosts, 'utf8');
      const target = world.target.inventory();

      const plain = await migrate();
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toMatch(/Migration rerun finished at \S+ \(succeeded\); nothing was run now\./);
      expect(plain.stderr).toContain(`armada migrate ${file} --start-over`);
      expect(world.target.inventory()).toEqual(target);

      // The same address, rebuilt with another host key: the re-run must not trust it.
      const port = ssh.server.port;
      const publicKey = execFileSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' }).trim();
      await ssh.server.stop();
      const rebuilt = await startSshServer({ authorizedKeys: [publicKey], port });
      try {
        const over = await migrate('--start-over');
        expect(over.code).toBe(1);
        expect(over.stderr).toMatch(new RegExp(`The SSH host key of ${ssh.server.host}:${port} has changed: refusing to connect`));
        expect(readFileSync(knownHosts, 'utf8')).toBe(pins);
        // The first run's checkpoint and report are kept, not deleted.
        const kept = readdirSync(join(runDirectory, 'previous'));
        expect(kept).toHaveLength(1);
        expect(existsSync(join(runDirectory, 'previous', kept[0] as string, 'checkpoint.json'))).toBe(true);
      } finally {
        await rebuilt.stop();
      }
    } finally {
      await world.stop();
    }
  });
});
