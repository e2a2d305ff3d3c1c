/**
 * A throwaway MariaDB server for tests: a new data directory (mariadb-install-db), `mariadbd` on
 * 127.0.0.1 (a free port) with its binary log on, and `root` reachable over TCP with no password.
 * Stopped by its pid; its data directory is removed.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const MARIADBD_PATH = '/usr/sbin/mariadbd';
const run = promisify(execFile);

export interface MariaDbServer {
  host: '127.0.0.1';
  port: number;
  user: 'root';
  socketPath: string;
  stop(): Promise<void>;
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

let serverId = 100;

export interface MariaDbServerOptions {
  /**
   * The server's system time zone (an IANA name, `America/New_York`): what `time_zone = SYSTEM`
   * means for its sessions. Default: the machine's. A zone with DST shows TIMESTAMP shifts.
   */
  timeZone?: string;
  /** More `mariadbd` options, such as `--sql-mode=` or `--max-allowed-packet=1M`. */
  args?: string[];
}

export async function startMariaDbServer(options: MariaDbServerOptions = {}): Promise<MariaDbServer> {
  if (!existsSync(MARIADBD_PATH)) throw new Error(`${MARIADBD_PATH} is not installed: install Debian's mariadb-server.`);
  const directory = await mkdtemp(join(tmpdir(), 'armada-mariadb-'));
  const data = join(directory, 'data');
  const socketPath = join(directory, 'mysqld.sock');
  // Its own tmpdir: servers bootstrapped at the same time would otherwise collide on temp table names.
  await run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db', `--tmpdir=${directory}`], { timeout: 60_000 });
  const port = await freePort();
  const child = spawn(
    MARIADBD_PATH,
    [
      '--no-defaults', `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${socketPath}`,
      `--pid-file=${join(directory, 'mysqld.pid')}`, `--tmpdir=${directory}`, '--user=root', `--log-bin=${join(directory, 'binlog')}`, `--server-id=${serverId++}`,
      '--binlog-format=ROW', '--skip-name-resolve', '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=48M',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: options.timeZone ? { ...process.env, TZ: options.timeZone } : process.env },
  );
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString('utf8');
  });
  const deadline = performance.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mariadbd exited with ${child.exitCode}: ${log.slice(-2000)}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) break;
    if (performance.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`mariadbd did not listen on 127.0.0.1:${port} within 30 s: ${log.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // root is created for localhost (the socket); tests and movers connect over TCP.
  await run('mariadb', ['--no-defaults', `--socket=${socketPath}`, '-u', 'root', '-e', "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"]);
  return {
    host: '127.0.0.1',
    port,
    user: 'root',
    socketPath,
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
