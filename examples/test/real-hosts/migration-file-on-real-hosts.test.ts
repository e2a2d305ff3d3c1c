/**
 * A migration file, as an operator writes it for real clouds, run on real hosts: the source
 * environment on the DigitalOcean emulator (MariaDB on a private droplet holding the shop), the
 * target provisioned on the EC2 emulator, every instance a real host. Nothing is reachable the easy
 * way: the data tier of both clouds is private, so Armada configures data-1 through web-1
 * (`servers.ssh.jumpHost`, host keys from the console, strict), and copies the database through a
 * tunnel over the source's web-1 (`via: { instance: web-1 }`, found by discovery) into a tunnel over
 * the target's web-1. The result is read on the hosts themselves.
 */
import { applyEnvironment, discover, fingerprintOf, loadMigrationFile, loadSpecFile, migrationFromFile, PluginRegistry, runMigration, type EnvironmentSpec } from '@armada/core';
import { puppetConfigManagerPlugin } from '@armada/config-puppet';
import { mysqlDataMoverPlugin } from '@armada/data-mysql';
import { awsProviderPlugin } from '@armada/provider-aws';
import { createDigitalOceanProvider, digitalOceanProviderPlugin } from '@armada/provider-digitalocean';
import { generateKeyPair, startAwsEmulator, startDigitalOceanEmulator, type AwsEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { debianImage, startHostLab, type HostLab } from '@armada/testkit/real-hosts';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const storySpec = fileURLToPath(new URL('../../environments/armada.yaml', import.meta.url));
const OLD_PASSWORD = 'old-db-password';
const NEW_PASSWORD = 'new "db" password';

describe('a migration file on real hosts: private data tiers on both clouds', () => {
  let lab: HostLab;
  let aws: AwsEmulator;
  let digitalocean: DigitalOceanEmulator;
  let directory: string;
  let sourceDataIp: string;
  let sourceDataId: string;
  let sourceWebKeys: string[];

  beforeAll(async () => {
    lab = await startHostLab({ image: await debianImage() });
    aws = await startAwsEmulator({ hosts: lab, bootMs: 0, terminateMs: 0 });
    digitalocean = await startDigitalOceanEmulator({ hosts: lab, bootMs: 0 });
    directory = await mkdtemp(join(tmpdir(), 'armada-real-migration-'));
    const key = await generateKeyPair('deploy');
    await mkdir(join(directory, 'keys'));
    await writeFile(join(directory, 'keys', 'deploy.pub'), `${key.publicKey}\n`);
    await writeFile(join(directory, 'deploy'), key.privateKey, { mode: 0o600 });
    await copyFile(storySpec, join(directory, 'armada.yaml'));

    // What runs today: the story's environment on DigitalOcean, MariaDB on data-1 with the shop.
    const story = await loadSpecFile(join(directory, 'armada.yaml'));
    const source: EnvironmentSpec = { ...story, provider: { id: 'digitalocean', region: 'nyc3' } };
    const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'story', endpoint: `${digitalocean.endpoint}/v2`, pollIntervalMs: 50 });
    const applied = await applyEnvironment({ spec: source, provider });
    expect(applied.execution.status).toBe('succeeded');
    await lab.settled();
    const data1 = (await discover(provider, 'armada')).find((resource) => resource.kind === 'instance' && resource.name === 'data-1');
    sourceDataIp = String(data1?.outputs.privateIp);
    sourceDataId = String(data1?.id);
    // The old web droplet's host key, as the operator's known_hosts has it (DigitalOcean has no console API).
    const web1 = (await discover(provider, 'armada')).find((resource) => resource.kind === 'instance' && resource.name === 'web-1');
    sourceWebKeys = (lab.status(String(web1?.id))?.hostKeys ?? []).map((text) => fingerprintOf(Buffer.from(text.split(/\s+/)[1] ?? '', 'base64')));
    await lab.exec(
      sourceDataId,
      [
        "printf '[mysqld]\\nbind-address = 0.0.0.0\\nlog_bin = mysql-bin\\nserver-id = 7\\n' > /etc/mysql/mariadb.conf.d/99-armada.cnf",
        '/etc/init.d/mariadb start >/dev/null',
        `mysql -e "CREATE USER 'migrator'@'%' IDENTIFIED BY '${OLD_PASSWORD}'; GRANT ALL PRIVILEGES ON *.* TO 'migrator'@'%'; CREATE DATABASE shop; CREATE TABLE shop.customers (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL); INSERT INTO shop.customers SELECT seq, CONCAT('customer', seq, '@example.com') FROM shop.seq_1_to_3000"`,
      ].join(' && '),
    );

    // The server policies: data-1 a MySQL server with the migrator's account (its password a secret).
    await writeFile(
      join(directory, 'servers.yaml'),
      JSON.stringify({
        os: 'debian-12',
        assign: { 'data-1': 'database' },
        roles: {
          web: {},
          data: {},
          database: { mysql: { role: 'primary', serverId: 1, users: [{ name: 'migrator', host: '%', password: { secret: 'NEW_DB_PASSWORD' }, grants: [{ database: '*', privileges: ['ALL PRIVILEGES'] }] }] } },
        },
      }),
    );
    await writeFile(
      join(directory, 'move.yaml'),
      JSON.stringify({
        name: 'real-move',
        directory: './run',
        source: { environment: 'armada', provider: { id: 'digitalocean', region: 'nyc3' } },
        target: { spec: './armada.yaml', provider: { id: 'aws', region: 'us-east-1' } },
        servers: {
          policies: './servers.yaml',
          ssh: { user: 'admin', privateKeyPath: './deploy', jumpHost: 'web-1', hostKeys: { '*': 'console' }, strictHostKeys: true, knownHosts: './known_hosts', waitSeconds: 60 },
        },
        data: [
          {
            name: 'shop-db',
            mover: 'mysql',
            source: { host: sourceDataIp, port: 3306, user: 'migrator', passwordEnv: 'OLD_DB_PASSWORD', databases: ['shop'], via: { instance: 'web-1', user: 'root', hostKeys: sourceWebKeys } },
            target: { instance: 'data-1', address: 'privateIp', port: 3306, user: 'migrator', passwordEnv: 'NEW_DB_PASSWORD', via: { instance: 'web-1' } },
          },
        ],
      }),
    );
  }, 300_000);

  afterAll(async () => {
    await aws?.close();
    await digitalocean?.close();
    await lab?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('configures the private target through the jump host and copies the data through both tunnels', async () => {
    const registry = new PluginRegistry().use(
      awsProviderPlugin({ endpoint: aws.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, pollIntervalMs: 50 }),
      digitalOceanProviderPlugin({ endpoint: `${digitalocean.endpoint}/v2`, token: 'story', pollIntervalMs: 50 }),
      mysqlDataMoverPlugin(),
      puppetConfigManagerPlugin(),
    );
    const env = { HOME: directory, OLD_DB_PASSWORD: OLD_PASSWORD, NEW_DB_PASSWORD: NEW_PASSWORD };
    const migration = await migrationFromFile(await loadMigrationFile(join(directory, 'move.yaml')), { registry, env, cwd: directory });
    // The direct path is closed: from outside, the source database's private address leads nowhere.
    expect(await lab.probe('internet', sourceDataIp, 3306)).not.toBe('open');
    try {
      const report = await runMigration({ name: migration.name, steps: migration.steps, directory: migration.directory, preflight: migration.preflight, ...(process.env.ARMADA_DEBUG_TUNNELS ? { onEvent: (event: unknown) => console.log(JSON.stringify(event)) } : {}) });
      expect(report.status).toBe('succeeded');
      const configure = report.steps.find((step) => step.id === 'configure-servers');
      expect(configure?.details?.[0]).toMatch(/^data-1 \(database\): \d+ changed/);
      // Configured through web-1: the connection says so.
      expect(JSON.stringify(configure?.output)).toContain('through a jump host');
      const copied = report.steps.find((step) => step.id === 'copy-data');
      expect(copied?.summary).toMatch(/^1 store copied: 3,000 items/);
      expect(report.steps.find((step) => step.id === 'verify-data')?.summary).toBe('1 store identical');
    } finally {
      await migration.close();
    }
    // On the target host itself: the shop, row for row.
    const target = aws.instancesTagged({ Name: 'data-1' })[0];
    expect(target?.state).toBe('running');
    const checksum = 'SELECT COUNT(*), SUM(CRC32(CONCAT(id, email))) FROM shop.customers';
    const read = (host: string) => lab.exec(host, `mysql -N -B -e ${JSON.stringify(checksum)}`);
    expect(await read(target?.instanceId as string)).toBe(await read(sourceDataId));
  }, 600_000);
});
