/**
 * A throwaway Redis server for tests: Debian's `redis-server` on 127.0.0.1 (a free port), nothing
 * persisted, debug commands on (so tests can compare DEBUG DIGEST), stopped by its pid.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER_PATH = '/usr/bin/redis-server';

export interface RedisServer {
  host: '127.0.0.1';
  port: number;
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

export async function startRedisServer(options: { password?: string; extraArguments?: string[] } = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER_PATH)) throw new Error(`${REDIS_SERVER_PATH} is not installed: install Debian's redis-server (apt-get install redis-server).`);
  const directory = await mkdtemp(join(tmpdir(), 'armada-redis-'));
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER_PATH,
    [
      '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', directory,
      '--enable-debug-command', 'yes', '--databases', '16', '--loglevel', 'warning',
      ...(options.password ? ['--requirepass', options.password] : []),
      ...(options.extraArguments ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString('utf8');
  });
  const deadline = performance.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${log}`);
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
      throw new Error(`redis-server did not listen on 127.0.0.1:${port} within 10 s: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return {
    host: '127.0.0.1',
    port,
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
