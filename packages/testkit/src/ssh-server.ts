/**
 * A real OpenSSH server for tests: `/usr/sbin/sshd` on 127.0.0.1 with a throwaway host key and an
 * authorized_keys file of the test's choosing, stopped by its pid. Needs Debian's openssh-server.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD_PATH = '/usr/sbin/sshd';

export interface SshServerOptions {
  /** OpenSSH public keys allowed to log in (as any user). */
  authorizedKeys: string[];
  /** Reuse a port (to restart a server with another host key on the same address). */
  port?: number;
}

export interface SshServer {
  host: '127.0.0.1';
  port: number;
  /** The user tests log in as: whoever runs them. */
  username: string;
  /** The server's host public key (OpenSSH text). */
  hostPublicKey: string;
  stop(): Promise<void>;
}

/** A new ed25519 key pair in a temporary directory, for tests. */
export async function generateKeyPair(comment = 'armada-test'): Promise<{ privateKey: string; publicKey: string }> {
  const directory = await mkdtemp(join(tmpdir(), 'armada-key-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', join(directory, 'key')]);
    return { privateKey: await readFile(join(directory, 'key'), 'utf8'), publicKey: (await readFile(join(directory, 'key.pub'), 'utf8')).trim() };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s: ${log()}`);
}

export async function startSshServer(options: SshServerOptions): Promise<SshServer> {
  if (!existsSync(SSHD_PATH)) {
    throw new Error(`${SSHD_PATH} is not installed: install Debian's openssh-server (apt-get install openssh-server).`);
  }
  const directory = await mkdtemp(join(tmpdir(), 'armada-sshd-'));
  // sshd wants its privilege separation directory to exist.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(directory, 'host_ed25519')]);
  await writeFile(join(directory, 'authorized_keys'), `${options.authorizedKeys.join('\n')}\n`, { mode: 0o600 });
  const port = options.port ?? (await freePort());
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(directory, 'host_ed25519')}`,
    `PidFile ${join(directory, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(directory, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
  ].join('\n');
  await writeFile(join(directory, 'sshd_config'), `${config}\n`);
  let log = '';
  const child = spawn(SSHD_PATH, ['-D', '-e', '-f', join(directory, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString('utf8');
  });
  try {
    await waitForPort(port, child, () => log);
  } catch (error) {
    child.kill('SIGTERM');
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    host: '127.0.0.1',
    port,
    username: userInfo().username,
    hostPublicKey: (await readFile(join(directory, 'host_ed25519.pub'), 'utf8')).trim(),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
