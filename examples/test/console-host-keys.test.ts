/**
 * Strict host keys pinned from the cloud's console output: a migration file with
 * `strictHostKeys: true` and `hostKeys: { '*': console }` reads, through the AWS provider on the
 * EC2 emulator (GetConsoleOutput, as cloud-init prints the keys at first boot), the host keys of
 * the new instance, and connects to a real sshd standing for it only when they match; nothing is
 * trusted on first use. The emulator prints the sshd's key, or another one (a server that is not
 * the instance it claims to be).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginRegistry, ValidationError, applyEnvironment, discover, loadMigrationFile, loadSpecFile, migrationFromFile, type ProvisionedInstance } from '@armada/core';
import { puppetConfigManagerPlugin } from '@armada/config-puppet';
import { awsProviderPlugin } from '@armada/provider-aws';
import { generateKeyPair, startAwsEmulator, startSshServer, type SshServer } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPEC_PATH } from '../story/index.js';

let directory: string;
let server: SshServer;
let privateKey: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'armada-console-keys-'));
  const keyPair = await generateKeyPair();
  privateKey = keyPair.privateKey;
  server = await startSshServer({ authorizedKeys: [keyPair.publicKey] });
});
afterAll(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

/** A new web-1 on an emulator whose instances print `hostKeys`, and the migration's own connect. */
async function connectThroughMigration(hostKeys: string[], ssh: Record<string, unknown>) {
  const emulator = await startAwsEmulator({ bootMs: 20, terminateMs: 20, hostKeys });
  const credentials = { accessKeyId: 'AKID', secretAccessKey: 'x' };
  const registry = new PluginRegistry().use(awsProviderPlugin({ endpoint: emulator.endpoint, credentials, pollIntervalMs: 20 }));
  const provider = registry.provider('aws', 'us-east-1');
  const spec = { ...(await loadSpecFile(SPEC_PATH)), provider: { id: 'aws', region: 'us-east-1' } };
  await applyEnvironment({ spec, provider, lock: false });
  const web = (await discover(provider, spec.name)).find((resource) => resource.address === 'instance.web-1');
  const key = join(directory, 'deploy');
  await writeFile(key, privateKey, { mode: 0o600 });
  const file = join(directory, `migration-${Date.now()}.json`);
  await writeFile(
    file,
    JSON.stringify({
      name: 'console-keys',
      source: { environment: 'armada', provider: { id: 'aws', region: 'us-east-1' } },
      target: { spec: SPEC_PATH, provider: { id: 'aws', region: 'us-east-1' } },
      servers: { configManager: 'puppet', policies: join(SPEC_PATH, '..', 'armada-servers.yaml'), ssh: { user: server.username, privateKeyPath: key, hosts: { '*': `${server.host}:${server.port}` }, knownHosts: join(directory, `known_hosts-${Date.now()}`), waitSeconds: 10, ...ssh } },
    }),
  );
  registry.use(puppetConfigManagerPlugin());
  const migration = await migrationFromFile(await loadMigrationFile(file), { registry, cwd: directory });
  const instance: ProvisionedInstance = { name: 'web-1', id: web?.id ?? '', role: 'web', publicIp: String(web?.outputs.publicIp), privateIp: String(web?.outputs.privateIp) };
  try {
    const session = await migration.definition.servers?.connect(instance, new AbortController().signal, [instance]);
    const echoed = await session?.exec('echo connected');
    await session?.close?.();
    return echoed?.stdout;
  } finally {
    await emulator.close();
  }
}

describe('strict host keys from the console output', () => {
  it('connects when the console shows the server\'s key, with nothing trusted on first use', async () => {
    expect(await connectThroughMigration([server.hostPublicKey], { strictHostKeys: true, hostKeys: { '*': 'console' } })).toBe('connected\n');
  });

  it('refuses a server whose key is not the one the console shows', async () => {
    const other = (await generateKeyPair('not-the-instance')).publicKey;
    const refused = await connectThroughMigration([other], { strictHostKeys: true, hostKeys: { '*': 'console' } }).catch((error: unknown) => error as Error);
    expect(ValidationError.isInstance(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/The SSH host key of 127\.0\.0\.1:\d+ has changed: refusing to connect/);
  });

  it('refuses, in strict mode, a server nothing pins', async () => {
    const refused = await connectThroughMigration([server.hostPublicKey], { strictHostKeys: true }).catch((error: unknown) => error as Error);
    expect(ValidationError.isInstance(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/No host key is pinned for 127\.0\.0\.1:\d+, and host keys are strict/);
  });
});
