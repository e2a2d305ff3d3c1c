/**
 * Core's SSH transport against real OpenSSH servers on loopback ports with throwaway host keys.
 */
import { CancelledError, SshConnectionPool, TimeoutError, ValidationError, connectSsh, memoryHostKeyStore } from '@armada/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, startSshServer, type SshServer } from '../src/index.js';

describe('SSH transport on a real sshd', () => {
  let key: { privateKey: string; publicKey: string };
  let server: SshServer;
  beforeAll(async () => {
    key = await generateKeyPair();
    server = await startSshServer({ authorizedKeys: [key.publicKey] });
  });
  afterAll(async () => {
    await server?.stop();
  });
  const target = () => ({ host: server.host, port: server.port, username: server.username, privateKey: key.privateKey });

  it('runs commands with exit codes, output streamed as it comes, and sudo', async () => {
    const session = await connectSsh({ ...target(), hostKeys: memoryHostKeyStore() });
    try {
      expect(await session.exec('echo out; echo err >&2; exit 3')).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
      const chunks: string[] = [];
      const streamed = await session.exec('for i in 1 2 3; do echo line $i; sleep 0.05; done', { onOutput: (chunk) => chunks.push(chunk) });
      expect(streamed.stdout).toBe('line 1\nline 2\nline 3\n');
      expect(chunks.length).toBeGreaterThan(1);
      expect((await session.exec('id -u', { sudo: true })).stdout.trim()).toBe('0');
    } finally {
      session.close();
    }
  });

  it('stops a command that runs over its timeout, and one that is cancelled', async () => {
    const session = await connectSsh({ ...target(), hostKeys: memoryHostKeyStore() });
    try {
      const started = performance.now();
      await expect(session.exec('sleep 5', { timeoutMs: 200 })).rejects.toSatisfy(TimeoutError.isInstance);
      expect(performance.now() - started).toBeLessThan(2000);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await expect(session.exec('sleep 5', { signal: controller.signal })).rejects.toSatisfy(CancelledError.isInstance);
      // Cancelled before the command started (or while its channel opened): it never runs.
      await expect(session.exec('sleep 5', { signal: AbortSignal.abort() })).rejects.toSatisfy(CancelledError.isInstance);
    } finally {
      session.close();
    }
  });

  it('uploads files over SFTP with the mode asked for', async () => {
    const session = await connectSsh({ ...target(), hostKeys: memoryHostKeyStore() });
    const path = `/tmp/armada-upload-${process.pid}-${Date.now()}`;
    try {
      await session.upload('secret: value\n', path, { mode: 0o600 });
      expect((await session.exec(`cat ${path}; stat -c %a ${path}`)).stdout).toBe('secret: value\n600\n');
      await session.upload(new TextEncoder().encode('second\n'), path, { mode: 0o644 });
      expect((await session.exec(`cat ${path}; stat -c %a ${path}; rm ${path}`)).stdout).toBe('second\n644\n');
    } finally {
      session.close();
    }
  });

  it('pins the host key on first use and refuses a changed one', async () => {
    const hostKeys = memoryHostKeyStore();
    const first = await startSshServer({ authorizedKeys: [key.publicKey] });
    const port = first.port;
    try {
      (await connectSsh({ host: first.host, port, username: first.username, privateKey: key.privateKey, hostKeys })).close();
      expect(await hostKeys.get(`127.0.0.1:${port}`)).toMatch(/^SHA256:/);
    } finally {
      await first.stop();
    }
    // Same address, new host key: a rebuilt server, or a man in the middle.
    const second = await startSshServer({ authorizedKeys: [key.publicKey], port });
    try {
      const error = await connectSsh({ host: second.host, port, username: second.username, privateKey: key.privateKey, hostKeys }).catch((caught: unknown) => caught);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(`The SSH host key of 127.0.0.1:${port} has changed: refusing to connect.`);
    } finally {
      await second.stop();
    }
  });

  it('says clearly when the server refuses the key', async () => {
    const stranger = await generateKeyPair('stranger');
    const error = await connectSsh({ ...target(), privateKey: stranger.privateKey, hostKeys: memoryHostKeyStore() }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(`SSH authentication as ${server.username}@127.0.0.1:${server.port} failed: the server refused the key.`);
    expect((error as Error).message).not.toContain('PRIVATE KEY');
  });

  it('reaches a host through a jump host, pinning both host keys', async () => {
    const jumpKey = await generateKeyPair('jump');
    const jump = await startSshServer({ authorizedKeys: [jumpKey.publicKey] });
    try {
      const hostKeys = memoryHostKeyStore();
      const session = await connectSsh({ ...target(), hostKeys, jumpHost: { host: jump.host, port: jump.port, username: jump.username, privateKey: jumpKey.privateKey } });
      expect((await session.exec('echo through')).stdout).toBe('through\n');
      expect(session.description).toMatch(/through a jump host/);
      session.close();
      expect(await hostKeys.get(`127.0.0.1:${jump.port}`)).toMatch(/^SHA256:/);
      expect(await hostKeys.get(`127.0.0.1:${server.port}`)).toMatch(/^SHA256:/);
      // The jump host is really used: with a key it refuses, the connection fails there.
      const error = await connectSsh({ ...target(), hostKeys, jumpHost: { host: jump.host, port: jump.port, username: jump.username, privateKey: key.privateKey } }).catch(
        (caught: unknown) => caught,
      );
      expect((error as Error).message).toMatch(`127.0.0.1:${jump.port} failed: the server refused the key`);
    } finally {
      await jump.stop();
    }
  });

  it('waits for a server that is not up yet, and gives up with an actionable message', async () => {
    const late = await startSshServer({ authorizedKeys: [key.publicKey] });
    const port = late.port;
    await late.stop();
    const connecting = connectSsh({ host: '127.0.0.1', port, username: server.username, privateKey: key.privateKey, hostKeys: memoryHostKeyStore(), retryDelayMs: 50, waitTimeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const restarted = await startSshServer({ authorizedKeys: [key.publicKey], port });
    try {
      const session = await connecting;
      expect((await session.exec('echo up')).stdout).toBe('up\n');
      session.close();
    } finally {
      await restarted.stop();
    }
    const error = await connectSsh({ host: '127.0.0.1', port, username: 'nobody', privateKey: key.privateKey, hostKeys: memoryHostKeyStore(), retryDelayMs: 50, waitTimeoutMs: 300 }).catch(
      (caught: unknown) => caught,
    );
    expect(TimeoutError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/did not accept SSH connections within 0 s .*firewall admits port/);
  });

  it('reuses one connection per host', async () => {
    const pool = new SshConnectionPool({ hostKeys: memoryHostKeyStore() });
    try {
      const first = await pool.session(target());
      const second = await pool.session(target());
      expect(second).toBe(first);
      expect((await second.exec('echo reused')).stdout).toBe('reused\n');
    } finally {
      await pool.closeAll();
    }
  });
});
