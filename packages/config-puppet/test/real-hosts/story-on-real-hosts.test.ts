/**
 * The story's server policies (examples/environments/armada-servers.yaml) converge for real: the
 * story's environment is applied through the real AWS SDK to the EC2 emulator with every instance
 * a real Debian 12 host (`@armada/testkit/real-hosts`: tini as PID 1, no systemd), and each role
 * is bootstrapped and applied with PuppetConfigManager over SSH, the data tier through web-1 as
 * jump host, as on a real cloud. Then, independently of the code under test: alice logs in with
 * her key, nginx answers the internet with the PHP site, the web tier logs in to MariaDB on data-1
 * with the users the policies made, data-2 replicates what is written on data-1, the environment
 * file holds the data tier's addresses, and a second apply changes nothing.
 *
 * The offline world cannot reach Sury or Adoptium: the policies are rendered after
 * substituteUnreachableRuntimes(…, OFFLINE_REPOSITORIES), which says what it substituted. Nor can
 * it reach the app's repository (https://git.example.com/shop.git): each web host serves the test's
 * own copy of the shop with `git daemon` on its loopback, and the app entry points there.
 */
import { request } from 'node:http';
import {
  OFFLINE_REPOSITORIES,
  applyEnvironment,
  connectSsh,
  fingerprintOf,
  loadServerPoliciesFile,
  loadSpecFile,
  resolveOutputs,
  roleOf,
  secretsOf,
  substituteUnreachableRuntimes,
  type ConfigReport,
  type HostKeyStore,
  type ObservedResource,
  type ServerPolicies,
  type SshSession,
} from '@armada/core';
import { generateKeyPair, startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { debianImage, startHostLab, type HostLab } from '@armada/testkit/real-hosts';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The story's cloud: config-puppet has no dependency on the AWS plugin, so its sources are imported as they are.
import { createAwsProvider } from '@armada/provider-aws';
import { PuppetConfigManager } from '../../src/index.js';

const specPath = fileURLToPath(new URL('../../../../examples/environments/armada.yaml', import.meta.url));
const policiesPath = fileURLToPath(new URL('../../../../examples/environments/armada-servers.yaml', import.meta.url));
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
/** The secrets the policies name, as test values (quotes and spaces on purpose: they must survive every layer). */
const secrets: Record<string, string> = {
  SHOP_DB_PASSWORD: "shop pw 'one'",
  ANALYTICS_DB_PASSWORD: 'analytics-pw-two',
  REPLICATION_PASSWORD: 'replication pw "three"',
};
/** Where each web host serves its copy of the shop (git daemon on loopback, as the app's git server would). */
const SHOP_REPOSITORY = 'git://127.0.0.1/shop.git';
const shellWord = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** Pins exactly the keys the instance printed on its console: nothing is trusted on first use. */
function pinned(keys: Record<string, string[]>): HostKeyStore {
  const fingerprints = (host: string) => (keys[host.replace(/:22$/, '')] ?? []).map((key) => fingerprintOf(Buffer.from(key.split(/\s+/)[1] ?? '', 'base64')));
  return { get: async (host) => fingerprints(host)[0], all: async (host) => fingerprints(host), set: async () => undefined, trustOnFirstUse: false };
}

/** An HTTP GET from the machine (the internet, for the lab) to a public address, with a Host header. */
function httpGet(address: string, hostHeader: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: 80, path: '/', headers: { Host: hostHeader }, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://${address}/ timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The shop, committed to a bare repository that git daemon serves on the web host's loopback. */
const SHOP_FIXTURE = `set -e
rm -rf ~/shop-src ~/git && mkdir -p ~/shop-src/public ~/git
cat > ~/shop-src/public/index.php <<'PHP'
<?php
echo 'shop on PHP ', PHP_VERSION, "\\n";
foreach (['mysqli', 'curl', 'mbstring'] as $module) echo $module, ': ', extension_loaded($module) ? 'loaded' : 'missing', "\\n";
PHP
cd ~/shop-src
git init -q -b main
git -c user.name=Armada -c user.email=test@armada.invalid add -A
git -c user.name=Armada -c user.email=test@armada.invalid commit -q -m 'The shop'
git clone -q --bare ~/shop-src ~/git/shop.git
git daemon --reuseaddr --listen=127.0.0.1 --base-path="$HOME/git" --export-all --detach --pid-file="$HOME/git-daemon.pid"
for attempt in $(seq 50); do nc -z 127.0.0.1 9418 && exit 0; sleep 0.1; done
echo 'git daemon did not listen' >&2; exit 1
`;

interface Host {
  id: string;
  privateIp: string;
  publicIp?: string;
  role: string;
}

describe("the story's server policies on real hosts: puppet apply over SSH", () => {
  let lab: HostLab;
  let emulator: AwsEmulator;
  let key: { privateKey: string; publicKey: string };
  let aliceKey: { privateKey: string; publicKey: string };
  let hostKeys: HostKeyStore;
  let policies: ServerPolicies;
  let notes: string[];
  let values: Map<string, string>;
  const hosts: Record<string, Host> = {};
  const sessions = new Map<string, SshSession>();
  const manager = new PuppetConfigManager();
  const timings: string[] = [];

  const web1 = () => hosts['web-1'] as Host & { publicIp: string };

  /** admin over SSH: web hosts on their public address, data hosts through web-1. */
  async function session(name: string): Promise<SshSession> {
    const existing = sessions.get(name);
    if (existing) return existing;
    const host = hosts[name] as Host;
    const opened = host.publicIp
      ? await connectSsh({ host: host.publicIp, username: 'admin', privateKey: key.privateKey, hostKeys, waitTimeoutMs: 30_000 })
      : await connectSsh({ host: host.privateIp, username: 'admin', privateKey: key.privateKey, hostKeys, jumpHost: { host: web1().publicIp, username: 'admin', privateKey: key.privateKey }, waitTimeoutMs: 30_000 });
    sessions.set(name, opened);
    return opened;
  }

  async function sh(name: string, script: string): Promise<string> {
    const result = await (await session(name)).exec(script);
    if (result.exitCode !== 0) throw new Error(`on ${name} (exit ${result.exitCode}): ${script}\n${result.stderr || result.stdout}`);
    return result.stdout;
  }

  async function converge(name: string): Promise<ConfigReport> {
    const host = hosts[name] as Host;
    const channel = await session(name);
    const started = performance.now();
    const needed = secretsOf(policies.roles[host.role] as ServerPolicies['roles'][string]);
    await manager.bootstrap(channel, manager.render(policies, values), { secrets: Object.fromEntries(needed.map((secret) => [secret, secrets[secret] as string])) });
    const bootstrapped = performance.now();
    const report = await manager.apply(channel, { role: host.role });
    timings.push(`${name} (${host.role}): bootstrap ${((bootstrapped - started) / 1000).toFixed(1)} s, first apply ${((performance.now() - bootstrapped) / 1000).toFixed(1)} s, ${report.changed} changed`);
    return report;
  }

  beforeAll(async () => {
    lab = await startHostLab({ image: await debianImage() });
    emulator = await startAwsEmulator({ hosts: lab, bootMs: 0, terminateMs: 0 });
    const provider = createAwsProvider({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, pollIntervalMs: 50 });
    key = await generateKeyPair('deploy');
    aliceKey = await generateKeyPair('alice@armada-test');
    const story = await loadSpecFile(specPath);
    const spec = { ...story, provider: { id: 'aws', region: 'us-east-1' }, keyPairs: story.keyPairs.map((pair) => ({ ...pair, publicKey: key.publicKey })) };
    const result = await applyEnvironment({ spec, provider });
    expect(result.execution.failed).toEqual([]);
    await lab.settled();

    const written = await loadServerPoliciesFile(policiesPath);
    // The test's own key for alice (the story's is an example's), and the test's own copy of the shop.
    const web = written.roles.web as ServerPolicies['roles'][string];
    const ours: ServerPolicies = {
      ...written,
      roles: {
        ...written.roles,
        web: {
          ...web,
          users: web.users.map((user) => (user.name === 'alice' ? { ...user, sshKeys: [aliceKey.publicKey] } : user)),
          apps: web.apps.map((app) => (app.name === 'shop' ? { ...app, repository: SHOP_REPOSITORY } : app)),
        },
      },
    };
    ({ policies, notes } = substituteUnreachableRuntimes(ours, OFFLINE_REPOSITORIES));

    const instances = result.execution.resources.filter((resource): resource is ObservedResource<'instance'> => resource.kind === 'instance');
    const consoleKeys: Record<string, string[]> = {};
    for (const instance of instances) {
      const outputs = instance.outputs as { privateIp: string; publicIp?: string };
      const role = roleOf(policies, { name: instance.name, role: (instance.properties as { role?: string }).role }) as string;
      hosts[instance.name] = { id: instance.id, privateIp: outputs.privateIp, ...(outputs.publicIp ? { publicIp: outputs.publicIp } : {}), role };
      consoleKeys[outputs.publicIp ?? outputs.privateIp] = await (provider.consoleHostKeys as (id: string) => Promise<string[]>)(instance.id);
    }
    hostKeys = pinned(consoleKeys);
    const resolved = resolveOutputs(policies, instances);
    expect(resolved.issues).toEqual([]);
    values = resolved.values;
  }, 300_000);

  afterAll(async () => {
    for (const opened of sessions.values()) opened.close();
    await emulator?.close();
    await lab?.close();
    if (timings.length > 0) console.info(`Converge times on real hosts:\n  ${timings.join('\n  ')}`);
  });

  it('runs the story: web-1 and web-2 with role web, data-1 the primary, data-2 the replica', () => {
    expect(Object.fromEntries(Object.entries(hosts).map(([name, host]) => [name, host.role]))).toEqual({ 'web-1': 'web', 'web-2': 'web', 'data-1': 'mysql-primary', 'data-2': 'mysql-replica' });
    expect(hosts['data-1']?.publicIp).toBeUndefined();
  });

  it("takes Debian's PHP and Java offline instead of Sury's and Adoptium's, and says so", () => {
    expect(notes).toEqual([
      "web: Java 8 from adoptium → Debian's Java 17 (adoptium unreachable offline)",
      "web: PHP 5.6 from sury → Debian's PHP 8.2 (sury unreachable offline)",
      'web: nginx site shop passes PHP to PHP-FPM 8.2 instead of 5.6',
    ]);
    const web = manager.render(policies, values).find((artifact) => artifact.path === 'manifests/web.pp')?.content ?? '';
    expect(web).toContain("package { 'openjdk-17-jre-headless'");
    expect(web).toContain('fastcgi_pass unix:/run/php/php8.2-fpm.sock;');
    expect(web).not.toMatch(/sury|adoptium|temurin|php5\.6/);
  });

  it('converges data-1, the MySQL primary, through web-1', async () => {
    const report = await converge('data-1');
    expect(report.resources.filter((entry) => entry.status === 'failed')).toEqual([]);
    expect(report.exitCode).toBe(2);
    expect(report.resources.map((entry) => entry.resource)).toEqual(expect.arrayContaining(['Service[mariadb]', 'Exec[mysql database shop]', 'Exec[mysql grant REPLICATION SLAVE on * to replicator@10.0.2.%]']));
    for (const secret of Object.values(secrets)) expect(report.log).not.toContain(secret);
  }, 180_000);

  it('converges data-2, the replica of data-1, through web-1', async () => {
    const report = await converge('data-2');
    expect(report.resources.filter((entry) => entry.status === 'failed')).toEqual([]);
    expect(report.exitCode).toBe(2);
    expect(report.resources.map((entry) => entry.resource)).toContain('Exec[mysql replica of its primary]');
  }, 180_000);

  it('converges web-1 and web-2: users, Java, PHP-FPM, nginx, the shop from git, the environment', async () => {
    for (const name of ['web-1', 'web-2']) {
      await sh(name, SHOP_FIXTURE);
      const report = await converge(name);
      expect(report.resources.filter((entry) => entry.status === 'failed')).toEqual([]);
      expect(report.exitCode).toBe(2);
      expect(report.resources.map((entry) => entry.resource)).toEqual(expect.arrayContaining(['User[alice]', 'Service[php8.2-fpm]', 'Service[nginx]', 'Exec[deploy shop: clone]']));
    }
  }, 300_000);

  it("manages the services with Debian's init scripts where PID 1 is not systemd (Puppet's own choice: no provider is named)", async () => {
    const web = hosts['web-1'] as Host;
    expect((await lab.exec(web.id, 'cat /proc/1/comm')).trim()).toBe('tini');
    const nginx = await lab.exec(web.id, 'puppet resource service nginx --color=false');
    expect(nginx).toMatch(/ensure\s+=> 'running'/);
    expect(nginx).toMatch(/enable\s+=> 'true'/);
    expect(nginx).toMatch(/provider\s+=> 'debian'/);
    expect(manager.render(policies, values).map((artifact) => artifact.content).join('\n')).not.toMatch(/provider\s+=> '(systemd|debian|init)'/);
  }, 60_000);

  it('lets alice log in on the web hosts with her key, in her group', async () => {
    for (const name of ['web-1', 'web-2']) {
      const alice = await connectSsh({ host: (hosts[name] as Host & { publicIp: string }).publicIp, username: 'alice', privateKey: aliceKey.privateKey, hostKeys, waitTimeoutMs: 10_000 });
      try {
        const result = await alice.exec('id -un; id -Gn; stat -c %U /srv/shop/public/index.php');
        expect(result.stdout.split('\n')).toEqual(['alice', expect.stringMatching(/\bdevelopers\b/), 'alice', '']);
      } finally {
        alice.close();
      }
    }
    // bob's key is the story's own, of which the test holds no private half: alice's key is alice's only.
    await expect(connectSsh({ host: web1().publicIp, username: 'bob', privateKey: aliceKey.privateKey, hostKeys, waitTimeoutMs: 2_000 })).rejects.toThrow();
  });

  it('serves the PHP site on web-1 and web-2 to the internet, with Debian 12 runtimes', async () => {
    for (const name of ['web-1', 'web-2']) {
      const address = (hosts[name] as Host & { publicIp: string }).publicIp;
      expect(await lab.probe('internet', address, 80)).toBe('open');
      const page = await httpGet(address, 'shop.example.com');
      expect(page.status).toBe(200);
      expect(page.body).toMatch(/^shop on PHP 8\.2\.\d+\nmysqli: loaded\ncurl: loaded\nmbstring: loaded\n$/);
      expect(await sh(name, 'java -version 2>&1 | head -1')).toMatch(/^openjdk version "17\./);
    }
  });

  it('holds the data tier addresses and the secret in the environment file of each web host', async () => {
    const data1 = hosts['data-1'] as Host;
    const data2 = hosts['data-2'] as Host;
    for (const name of ['web-1', 'web-2']) {
      const seen = await sh(name, `sudo -n sh -c 'set -a; . /etc/armada/environment; printf "%s|%s|%s|%s|%s" "$DB_PRIMARY_HOST" "$DB_REPLICA_HOST" "$DB_NAME" "$DB_USER" "$DB_PASSWORD"'; echo; stat -c %a /etc/armada/environment`);
      expect(seen).toBe(`${data1.privateIp}|${data2.privateIp}|shop|shop|${secrets.SHOP_DB_PASSWORD}\n600\n`);
    }
  });

  it("has data-1's databases and users, which the web tier logs in with over the network", async () => {
    const data1 = hosts['data-1'] as Host;
    // The console's view of the server.
    const databases = await lab.exec(data1.id, "mysql -N -B -e 'SHOW DATABASES'");
    expect(databases.split('\n')).toEqual(expect.arrayContaining(['shop', 'analytics']));
    const accounts = await lab.exec(data1.id, "mysql -N -B -e \"SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User IN ('shop', 'analytics', 'replicator') ORDER BY User\"");
    expect(accounts.trim().split('\n')).toEqual(['analytics@10.0.1.%', 'replicator@10.0.2.%', 'shop@10.0.1.%']);
    // The web tier, as the shop would: each user with its password, seeing what its grants give it.
    const asUser = (user: string, password: string, sql: string) => `MYSQL_PWD=${shellWord(password)} mysql -h ${data1.privateIp} -u ${user} -N -B -e ${shellWord(sql)}`;
    expect(await sh('web-1', asUser('shop', secrets.SHOP_DB_PASSWORD as string, 'SELECT CURRENT_USER(); SHOW DATABASES'))).toMatch(/^shop@10\.0\.1\.%\ninformation_schema\nshop\n$/);
    expect(await sh('web-1', asUser('analytics', secrets.ANALYTICS_DB_PASSWORD as string, 'SHOW DATABASES'))).toBe('analytics\ninformation_schema\n');
    const denied = await (await session('web-1')).exec(asUser('analytics', secrets.ANALYTICS_DB_PASSWORD as string, 'CREATE TABLE analytics.t (id INT)'));
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/command denied/);
  });

  it('replicates data-1 to data-2: both replica threads run, and a row written on data-1 appears on data-2', async () => {
    const data1 = hosts['data-1'] as Host;
    const data2 = hosts['data-2'] as Host;
    const status = await lab.exec(data2.id, "mysql -e 'SHOW REPLICA STATUS\\G'");
    expect(status).toMatch(new RegExp(`Master_Host: ${data1.privateIp.replaceAll('.', '\\.')}\\n`));
    expect(status).toMatch(/Slave_IO_Running: Yes\n/);
    expect(status).toMatch(/Slave_SQL_Running: Yes\n/);
    expect(status).toMatch(/Using_Gtid: Slave_Pos\n/);
    expect(await lab.exec(data2.id, "mysql -N -B -e 'SELECT @@read_only, @@server_id'")).toBe('1\t2\n');

    const shop = (address: string, sql: string) => `MYSQL_PWD=${shellWord(secrets.SHOP_DB_PASSWORD as string)} mysql -h ${address} -u shop -N -B -e ${shellWord(sql)}`;
    const order = `teapot-${Date.now()}`;
    await sh('web-1', shop(data1.privateIp, `CREATE TABLE IF NOT EXISTS shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(64)); INSERT INTO shop.orders (item) VALUES ('${order}')`));
    // Read back from the replica, as DB_REPLICA_HOST's readers would: the shop user came over with replication.
    let seen = '';
    for (let attempt = 0; attempt < 50 && !seen.includes(order); attempt++) {
      const result = await (await session('web-1')).exec(shop(data2.privateIp, `SELECT item FROM shop.orders WHERE item = '${order}'`));
      seen = result.stdout;
      if (!seen.includes(order)) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(seen).toBe(`${order}\n`);
    // The replica is read-only for the application.
    const write = await (await session('web-1')).exec(shop(data2.privateIp, "INSERT INTO shop.orders (item) VALUES ('not on a replica')"));
    expect(write.exitCode).not.toBe(0);
    expect(write.stderr).toMatch(/read-only|READ.ONLY/i);
  });

  it('changes nothing on a second apply, on every host', async () => {
    for (const name of ['data-1', 'data-2', 'web-1', 'web-2']) {
      const started = performance.now();
      const report = await manager.apply(await session(name), { role: (hosts[name] as Host).role });
      timings.push(`${name}: second apply ${((performance.now() - started) / 1000).toFixed(1)} s, ${report.changed} changed of ${report.changed + report.unchanged}`);
      expect({ name, resources: report.resources, changed: report.changed, failed: report.failed, exitCode: report.exitCode }).toEqual({ name, resources: [], changed: 0, failed: 0, exitCode: 0 });
      expect(report.unchanged).toBeGreaterThan(3);
    }
  }, 240_000);
});
