/**
 * Real `puppet apply` of rendered policies, over a real SSH connection to a throwaway sshd on this
 * machine: a system user with an authorized key, files, environment variables, a service, and a
 * MySQL database and user on the local MariaDB. Everything it makes is removed afterwards.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connectSsh, memoryHostKeyStore, parseServerPolicies, type SshSession } from '@armada/core';
import { generateKeyPair, startSshServer, type SshServer } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUPPET_ROOT, PuppetConfigManager } from '../src/index.js';

const id = `${process.pid}`;
const user = `armada-u${id}`;
const group = `armada-g${id}`;
const database = `armada_db_${id}`;
const dbUser = `armada_${id}`;
const motd = `/etc/armada/motd-${id}`;
const servicePid = `/tmp/armada-service-${id}.pid`;
const password = `pw-${id}-correct horse 'battery'`;

const mysql = (sql: string) => execFileSync('mysql', ['--protocol=socket', '-u', 'root', '-N', '-B', '-e', sql], { encoding: 'utf8' });

function policies(motdText = 'Welcome to the web tier\n') {
  return parseServerPolicies({
    roles: {
      web: {
        groups: [group],
        users: [{ name: user, groups: [group], sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR deploy@armada'] }],
        files: [
          { path: motd, content: motdText, mode: '0640' },
          { path: `${motd}.db`, template: 'host={{HOST}}\nname={{NAME}}\npassword={{PASSWORD}}\n', vars: { HOST: { output: { instance: 'data-1', value: 'privateIp' } }, NAME: database, PASSWORD: { secret: 'SHOP_DB_PASSWORD' } }, mode: '0600' },
        ],
        environment: { DB_HOST: { output: { instance: 'data-1', value: 'privateIp' } }, DB_NAME: database, DB_PASSWORD: { secret: 'SHOP_DB_PASSWORD' } },
        services: [{ name: `armada-probe-${id}`, start: `sh -c 'sleep 600 >/dev/null 2>&1 & echo $! > ${servicePid}'`, status: `kill -0 "$(cat ${servicePid} 2>/dev/null)" 2>/dev/null` }],
        mysql: { databases: [database], users: [{ name: dbUser, host: 'localhost', password: { secret: 'SHOP_DB_PASSWORD' }, grants: [{ database, privileges: ['ALL PRIVILEGES'] }] }] },
      },
      broken: {
        files: [{ path: `/etc/armada/broken-${id}`, content: 'x', owner: 'armada-nobody-here' }],
      },
    },
  });
}

describe('Puppet over SSH, for real', () => {
  let server: SshServer;
  let session: SshSession;
  const manager = new PuppetConfigManager();
  const values = new Map([['data-1.privateIp', '10.0.2.10']]);

  beforeAll(async () => {
    const key = await generateKeyPair();
    server = await startSshServer({ authorizedKeys: [key.publicKey] });
    session = await connectSsh({ host: server.host, port: server.port, username: server.username, privateKey: key.privateKey, hostKeys: memoryHostKeyStore() });
    await manager.bootstrap(session, manager.render(policies(), values), { secrets: { SHOP_DB_PASSWORD: password } });
  }, 120_000);

  afterAll(async () => {
    session?.close();
    await server?.stop();
    // Remove everything the policies made on this machine.
    const quiet = (command: string) => {
      try {
        execSync(command, { stdio: 'ignore' });
      } catch {
        // already gone
      }
    };
    if (existsSync(servicePid)) quiet(`kill "$(cat ${servicePid})"; rm -f ${servicePid}`);
    quiet(`userdel -r ${user}`);
    quiet(`groupdel ${group}`);
    quiet(`rm -f ${motd} ${motd}.db /etc/armada/broken-${id} /etc/armada/environment /etc/profile.d/armada.sh && rm -rf ${PUPPET_ROOT} && rmdir /etc/armada`);
    quiet(`mysql --protocol=socket -u root -e "DROP DATABASE IF EXISTS ${database}; DROP USER IF EXISTS '${dbUser}'@'localhost'"`);
  });

  it('renders manifests that hold no secret, and installs them', () => {
    const artifacts = manager.render(policies(), values);
    expect(artifacts.map((artifact) => artifact.path)).toEqual(['manifests/web.pp', 'manifests/broken.pp']);
    for (const artifact of artifacts) expect(artifact.content).not.toContain('correct horse');
    expect(readFileSync(`${PUPPET_ROOT}/manifests/web.pp`, 'utf8')).toBe(artifacts[0]?.content);
    expect(statSync(`${PUPPET_ROOT}/secrets.env`).mode & 0o777).toBe(0o600);
  });

  it('applies: the user, key, files, environment, service and MySQL exist, and the report lists the changes', async () => {
    const report = await manager.apply(session, { role: 'web' });
    expect(report.resources.filter((entry) => entry.status === 'failed')).toEqual([]);
    expect(report.failed).toBe(0);
    expect(report.exitCode).toBe(2);
    const changed = report.resources.filter((entry) => entry.status === 'changed').map((entry) => entry.resource);
    expect(changed).toEqual(
      expect.arrayContaining([`Group[${group}]`, `User[${user}]`, `File[/home/${user}/.ssh/authorized_keys]`, `File[${motd}]`, `Exec[mysql database ${database}]`, `Exec[mysql user ${dbUser}@localhost]`]),
    );
    expect(report.changed).toBeGreaterThanOrEqual(changed.length);
    expect(report.log).not.toContain('correct horse');

    expect(execFileSync('id', ['-nG', user], { encoding: 'utf8' }).trim().split(' ')).toContain(group);
    expect(readFileSync(`/home/${user}/.ssh/authorized_keys`, 'utf8')).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR deploy@armada\n');
    expect(statSync(motd).mode & 0o777).toBe(0o640);
    expect(readFileSync(`${motd}.db`, 'utf8')).toBe(`host=10.0.2.10\nname=${database}\npassword=${password}\n`);
    const environment = execFileSync('sh', ['-c', 'set -a; . /etc/armada/environment; echo "$DB_HOST|$DB_NAME|$DB_PASSWORD"'], { encoding: 'utf8' }).trim();
    expect(environment).toBe(`10.0.2.10|${database}|${password}`);
    expect(statSync('/etc/armada/environment').mode & 0o777).toBe(0o600);
    expect(execSync(`kill -0 "$(cat ${servicePid})" && echo running`, { encoding: 'utf8' }).trim()).toBe('running');
    // The new MySQL user logs in with the secret password and sees its database.
    const seen = execFileSync('mysql', ['--protocol=socket', '-u', dbUser, `--password=${password}`, '-N', '-B', '-e', 'SHOW DATABASES'], { encoding: 'utf8' });
    expect(seen.split('\n')).toContain(database);
    expect(mysql(`SHOW GRANTS FOR '${dbUser}'@'localhost'`)).toContain(`ON \`${database}\`.*`);
  });

  it('reports zero changes the second time', async () => {
    const report = await manager.apply(session, { role: 'web' });
    expect(report.exitCode).toBe(0);
    expect(report.changed).toBe(0);
    expect(report.failed).toBe(0);
    expect(report.unchanged).toBeGreaterThan(8);
    expect(report.resources).toEqual([]);
  });

  it('in noop mode reports what would change and changes nothing', async () => {
    await manager.bootstrap(session, manager.render(policies('A new welcome\n'), values), { secrets: { SHOP_DB_PASSWORD: password } });
    const report = await manager.apply(session, { role: 'web', noop: true });
    expect(report.changed).toBe(1);
    expect(report.resources.map((entry) => entry.resource)).toEqual([`File[${motd}]`]);
    expect(report.resources[0]?.message).toMatch(/\(noop\)/);
    expect(readFileSync(motd, 'utf8')).toBe('Welcome to the web tier\n');
  });

  it("reports a policy that cannot converge with Puppet's own message", async () => {
    const report = await manager.apply(session, { role: 'broken' });
    expect(report.failed).toBeGreaterThan(0);
    expect([4, 6]).toContain(report.exitCode);
    const failure = report.resources.find((entry) => entry.status === 'failed');
    expect(failure?.message).toMatch(/armada-nobody-here/);
  });
});
