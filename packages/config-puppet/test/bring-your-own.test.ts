/**
 * Bring your own: an existing module path is uploaded over real SSH and a named class applied by
 * real `puppet apply`, with the provisioning outputs as facts.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError, connectSsh, memoryHostKeyStore } from '@armada/core';
import { generateKeyPair, startSshServer } from '@armada/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { PUPPET_ROOT, PuppetConfigManager } from '../src/index.js';

const target = `/tmp/armada-byo-${process.pid}.conf`;

function modulePath(): string {
  const root = mkdtempSync(join(tmpdir(), 'armada-modules-'));
  mkdirSync(join(root, 'profile', 'manifests'), { recursive: true });
  writeFileSync(
    join(root, 'profile', 'manifests', 'web.pp'),
    `class profile::web {\n  file { '${target}':\n    ensure  => file,\n    content => "db_host=\${facts['armada_data_1_privateip']}\\n",\n  }\n}\n`,
  );
  return root;
}

describe('Puppet: bring your own modules', () => {
  afterAll(() => {
    execSync(`rm -f ${target}; rm -rf ${PUPPET_ROOT}; rmdir /etc/armada 2>/dev/null || true`);
  });

  it('uploads a module path and applies a class with the values as facts', async () => {
    const key = await generateKeyPair();
    const server = await startSshServer({ authorizedKeys: [key.publicKey] });
    const session = await connectSsh({ host: server.host, port: server.port, username: server.username, privateKey: key.privateKey, hostKeys: memoryHostKeyStore() });
    const puppet = new PuppetConfigManager();
    try {
      expect(await puppet.bootstrapModules(session, modulePath())).toEqual(['profile/manifests/web.pp']);
      const values = new Map([['data-1.privateIp', '10.0.2.10']]);
      const first = await puppet.applyClass(session, { className: 'profile::web', values });
      expect(first.resources).toEqual([expect.objectContaining({ resource: `File[${target}]`, status: 'changed' })]);
      expect(first.exitCode).toBe(2);
      expect(readFileSync(target, 'utf8')).toBe('db_host=10.0.2.10\n');
      const second = await puppet.applyClass(session, { className: 'profile::web', values });
      expect([second.exitCode, second.changed]).toEqual([0, 0]);
      await expect(puppet.applyClass(session, { className: 'Profile Web' })).rejects.toSatisfy(ValidationError.isInstance);
    } finally {
      session.close();
      await server.stop();
    }
  });
});
