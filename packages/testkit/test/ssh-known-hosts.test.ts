/**
 * Pinned host keys in a known_hosts file, against real OpenSSH servers, judged by OpenSSH's own
 * tools: what Armada writes, `ssh-keygen -F` finds, with the key the server holds; what
 * `ssh-keygen -H` hashes, Armada matches; a changed key is refused on the same address; strict mode
 * refuses a server no pin names and accepts one whose fingerprint (as `ssh-keygen -l` prints it) is
 * pinned; a damaged file is named with its line.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSsh, knownHostsStore, ValidationError, withJsonPins, withPins } from '@armada/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, startSshServer, type SshServer } from '../src/index.js';

let key: { privateKey: string; publicKey: string };
let server: SshServer;
let directory: string;
const target = () => ({ host: server.host, port: server.port, username: server.username, privateKey: key.privateKey, waitTimeoutMs: 10_000 });
const name = () => `[${server.host}]:${server.port}`;
/** The fingerprint of an OpenSSH public key, by ssh-keygen. */
const fingerprintOf = async (publicKey: string) => {
  const file = join(directory, `key-${Date.now()}.pub`);
  await writeFile(file, `${publicKey}\n`);
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' }).split(' ')[1] as string;
};
const connect = async (store: ReturnType<typeof knownHostsStore>) => {
  const session = await connectSsh({ ...target(), hostKeys: store });
  session.close();
};

beforeAll(async () => {
  key = await generateKeyPair();
  server = await startSshServer({ authorizedKeys: [key.publicKey] });
  directory = await mkdtemp(join(tmpdir(), 'armada-known-hosts-'));
});
afterAll(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

describe('known_hosts pins', () => {
  it('writes what ssh-keygen finds, keeps it, and refuses the same address with another key', async () => {
    const file = join(directory, 'known_hosts');
    await connect(knownHostsStore(file));
    const found = execFileSync('ssh-keygen', ['-F', name(), '-f', file], { encoding: 'utf8' });
    expect(found).toContain(`${name()} ${server.hostPublicKey.split(' ').slice(0, 2).join(' ')}`);
    const written = await readFile(file, 'utf8');
    await connect(knownHostsStore(file));
    expect(await readFile(file, 'utf8')).toBe(written);

    // The same address, rebuilt with a new host key.
    const port = server.port;
    await server.stop();
    server = await startSshServer({ authorizedKeys: [key.publicKey], port });
    const refused = await connect(knownHostsStore(file)).catch((error: unknown) => error as ValidationError);
    expect(ValidationError.isInstance(refused)).toBe(true);
    expect((refused as Error).message).toContain(`The SSH host key of ${server.host}:${port} has changed`);
    expect(await readFile(file, 'utf8')).toBe(written);
  });

  it('matches hosts ssh-keygen -H hashed', async () => {
    const file = join(directory, 'hashed');
    await writeFile(file, `${name()} ${server.hostPublicKey}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    expect(await readFile(file, 'utf8')).toMatch(/^\|1\|/);
    await connect(knownHostsStore(file, { strict: true }));
  });

  it('strict: refuses a server nothing pins, accepts one whose fingerprint is pinned', async () => {
    const file = join(directory, 'strict');
    const refused = await connect(knownHostsStore(file, { strict: true })).catch((error: unknown) => error as Error);
    expect(ValidationError.isInstance(refused)).toBe(true);
    expect(refused?.message).toMatch(/No host key is pinned for 127\.0\.0\.1:\d+, and host keys are strict/);
    const pinned = await fingerprintOf(server.hostPublicKey);
    const session = await connectSsh({ ...target(), hostKeys: withPins(knownHostsStore(file, { strict: true }), `${server.host}:${server.port}`, [pinned]) });
    session.close();
    const wrong = withPins(knownHostsStore(file, { strict: true }), `${server.host}:${server.port}`, ['SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']);
    await expect(connectSsh({ ...target(), hostKeys: wrong })).rejects.toThrow(/has changed/);
  });

  it('still expects what an older JSON pin file pinned', async () => {
    const json = join(directory, 'known_hosts.json');
    await writeFile(json, JSON.stringify({ [`${server.host}:${server.port}`]: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
    await expect(connectSsh({ ...target(), hostKeys: withJsonPins(knownHostsStore(join(directory, 'fresh')), json) })).rejects.toThrow(/has changed/);
    await writeFile(json, JSON.stringify({ [`${server.host}:${server.port}`]: await fingerprintOf(server.hostPublicKey) }));
    const session = await connectSsh({ ...target(), hostKeys: withJsonPins(knownHostsStore(join(directory, 'fresh'), { strict: true }), json) });
    session.close();
  });

  it('names a damaged file and its line, not "host denied"', async () => {
    const file = join(directory, 'damaged');
    await writeFile(file, `# pins\n${name()} ${server.hostPublicKey}\nnot a known hosts line\n`);
    const error = (await connect(knownHostsStore(file)).catch((caught: unknown) => caught)) as ValidationError;
    expect(ValidationError.isInstance(error)).toBe(true);
    expect(error.message).toContain(`The known hosts file ${file} is damaged at line 3.`);
    expect(error.message).not.toMatch(/Host denied/);
  });
});
