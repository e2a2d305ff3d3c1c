/**
 * Data across real networks: two clouds' networks on real hosts (lab topology), each with a
 * public jump host and a private database host running real MariaDB and Redis. Armada runs here,
 * outside both networks: the direct path to either database is closed (proved on the wire), the
 * data steps go through SSH tunnels over the jump hosts, replication crosses between the clouds
 * through a forward on the target host's loopback relayed by Armada, and a jump host whose sshd
 * is killed in the middle of a copy costs a reconnection, not the copy.
 *
 * Results are read on the hosts themselves (lab.exec: what a console would show), independently
 * of the movers under test.
 */
import {
  copyDataStep,
  type DataStoreMove,
  fingerprintOf,
  type HostKeyStore,
  type MigrationStep,
  openReplicationTunnel,
  replicationPort,
  runMigration,
  SessionKeeper,
  connectSsh,
  sshDataRoute,
  verifyDataStep,
  type SshDataRoute,
  cutoverDataStep,
  ReplicationRegistry,
} from '@armada/core';
import { MysqlDataMover, type MysqlCopyOptions } from '@armada/data-mysql';
import { RedisDataMover } from '@armada/data-redis';
import { generateKeyPair } from '@armada/testkit';
import { debianImage, type HostLab, type LabHost, startHostLab } from '@armada/testkit/real-hosts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PASSWORD = 'tunnel-test-password';
const SOURCE = { jump: 'old-web', db: 'old-data', jumpIp: '10.10.1.10', dbIp: '10.10.2.10' };
const TARGET = { jump: 'new-web', db: 'new-data', jumpIp: '10.0.1.10', dbIp: '10.0.2.10' };

function networkHosts(side: typeof SOURCE, networkId: string, prefix: string, publicIp: string, key: string): LabHost[] {
  const ssh = { protocol: 'tcp' as const, ports: { from: 22, to: 22 }, peers: ['0.0.0.0/0'] };
  const everywhere = { protocol: 'all' as const, peers: ['0.0.0.0/0'] };
  return [
    { id: side.jump, networkId, subnetId: 'public', privateIp: side.jumpIp, publicIp, hostname: side.jump, login: { user: 'admin', authorizedKeys: [key] }, running: true, firewall: { inbound: [ssh], outbound: [everywhere] } },
    {
      id: side.db,
      networkId,
      subnetId: 'private',
      privateIp: side.dbIp,
      hostname: side.db,
      login: { user: 'admin', authorizedKeys: [key] },
      running: true,
      // The database tier admits SSH, MySQL and Redis from its own network's jump host only.
      firewall: { inbound: [22, 3306, 6379].map((port) => ({ protocol: 'tcp' as const, ports: { from: port, to: port }, peers: [`${prefix}.1.0/24`] })), outbound: [everywhere] },
    },
  ];
}

/** What a console on the host shows: a query's tab-separated rows. */
async function sql(lab: HostLab, host: string, query: string): Promise<string> {
  return (await lab.exec(host, `mysql -N -B -e ${JSON.stringify(query)}`)).trim();
}

describe('data through SSH tunnels, between two real networks', () => {
  let lab: HostLab;
  let key: { privateKey: string; publicKey: string };
  let scratch: string;
  const publicIps: Record<string, string> = {};
  const keepers: SessionKeeper[] = [];
  const routes: SshDataRoute[] = [];
  let sourceRoute: SshDataRoute;
  let targetRoute: SshDataRoute;
  let targetDbHost: SessionKeeper;

  const hostKeys = (): HostKeyStore => {
    const fingerprints = (host: string) => {
      const id = Object.entries({ ...publicIps, [SOURCE.db]: SOURCE.dbIp, [TARGET.db]: TARGET.dbIp }).find(([, address]) => `${address}:22` === host)?.[0];
      return (lab.status(id ?? '')?.hostKeys ?? []).map((text) => fingerprintOf(Buffer.from(text.split(/\s+/)[1] ?? '', 'base64')));
    };
    return { get: async (host) => fingerprints(host)[0], all: async (host) => fingerprints(host), set: async () => undefined, trustOnFirstUse: false };
  };
  const jumpKeeper = (jump: string) => {
    const keeper = new SessionKeeper((signal) => connectSsh({ host: publicIps[jump] as string, username: 'admin', privateKey: key.privateKey, hostKeys: hostKeys(), waitTimeoutMs: 60_000, ...(signal ? { signal } : {}) }), `admin@${publicIps[jump]}:22`);
    keepers.push(keeper);
    return keeper;
  };

  beforeAll(async () => {
    key = await generateKeyPair();
    scratch = await mkdtemp(join(tmpdir(), 'armada-tunnels-'));
    lab = await startHostLab({ image: await debianImage() });
    publicIps[SOURCE.jump] = lab.allocatePublicIp('198.51.100.0/24');
    publicIps[TARGET.jump] = lab.allocatePublicIp('203.0.113.0/24');
    const subnets = (prefix: string) => [
      { id: 'public', cidr: `${prefix}.1.0/24`, internet: true },
      { id: 'private', cidr: `${prefix}.2.0/24`, internet: false },
    ];
    lab.sync({
      networks: [
        { id: 'old-cloud', subnets: subnets('10.10') },
        { id: 'new-cloud', subnets: subnets('10.0') },
      ],
      hosts: [...networkHosts(SOURCE, 'old-cloud', '10.10', publicIps[SOURCE.jump] as string, key.publicKey), ...networkHosts(TARGET, 'new-cloud', '10.0', publicIps[TARGET.jump] as string, key.publicKey)],
    });
    await lab.settled();
    // Real servers on the private hosts: MariaDB with a binary log (the source replicates), Redis with a password.
    await Promise.all(
      [SOURCE.db, TARGET.db].map((host, index) =>
        lab.exec(
          host,
          [
            `printf '[mysqld]\\nbind-address = 0.0.0.0\\nserver-id = ${index + 1}\\nlog_bin = mysql-bin\\nbinlog_format = ROW\\n' > /etc/mysql/mariadb.conf.d/99-armada.cnf`,
            '/etc/init.d/mariadb start >/dev/null',
            `mysql -e "CREATE USER IF NOT EXISTS 'migrator'@'%' IDENTIFIED BY '${PASSWORD}'; GRANT ALL PRIVILEGES ON *.* TO 'migrator'@'%' WITH GRANT OPTION;"`,
            `redis-server --bind 0.0.0.0 --protected-mode no --requirepass ${PASSWORD} --masterauth ${PASSWORD} --save '' --appendonly no --daemonize yes --logfile /var/log/redis.log`,
          ].join(' && '),
        ),
      ),
    );
    await lab.exec(
      SOURCE.db,
      [
        'mysql -e "CREATE DATABASE shop; CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64) NOT NULL, notes TEXT)"',
        // 20,000 customers, ~2.5 MB: long enough to kill a jump host in the middle of a throttled copy.
        `mysql -e "INSERT INTO shop.customers (name, notes) SELECT CONCAT('customer ', seq), REPEAT(MD5(seq), 4) FROM shop.seq_1_to_20000"`,
        `redis-cli -a ${PASSWORD} --no-auth-warning eval "for i = 1, 500 do redis.call('SET', 'session:' .. i, 'user-' .. i) end return 500" 0 >/dev/null`,
      ].join(' && '),
    );
    sourceRoute = sshDataRoute(jumpKeeper(SOURCE.jump));
    targetRoute = sshDataRoute(jumpKeeper(TARGET.jump));
    routes.push(sourceRoute, targetRoute);
    targetDbHost = new SessionKeeper(
      (signal) =>
        connectSsh({ host: TARGET.dbIp, username: 'admin', privateKey: key.privateKey, hostKeys: hostKeys(), jumpHost: { host: publicIps[TARGET.jump] as string, username: 'admin', privateKey: key.privateKey }, waitTimeoutMs: 60_000, ...(signal ? { signal } : {}) }),
      `admin@${TARGET.dbIp} through ${TARGET.jump}`,
    );
    keepers.push(targetDbHost);
  }, 300_000);

  afterAll(async () => {
    for (const route of routes) await route.close();
    for (const keeper of keepers) await keeper.close();
    await lab?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const store = (mover: 'mysql' | 'redis', extra: Partial<DataStoreMove> = {}): DataStoreMove => ({
    name: mover === 'mysql' ? 'shop-db' : 'sessions',
    mover: mover === 'mysql' ? new MysqlDataMover() : new RedisDataMover(),
    source: { host: SOURCE.dbIp, port: mover === 'mysql' ? 3306 : 6379, ...(mover === 'mysql' ? { user: 'migrator', databases: ['shop'] } : {}), password: PASSWORD },
    target: { host: TARGET.dbIp, port: mover === 'mysql' ? 3306 : 6379, ...(mover === 'mysql' ? { user: 'migrator' } : {}), password: PASSWORD },
    routes: { source: sourceRoute, target: targetRoute },
    ...extra,
  });

  it('has no direct path: from outside both networks, and from one cloud to the other, the databases are unreachable', async () => {
    for (const port of [3306, 6379]) {
      expect(await lab.probe('internet', SOURCE.dbIp, port)).not.toBe('open');
      expect(await lab.probe('internet', TARGET.dbIp, port)).not.toBe('open');
      expect(await lab.probe({ host: TARGET.db }, SOURCE.dbIp, port)).not.toBe('open');
      // From its own network's jump host the database answers: the tunnel's way in.
      expect(await lab.probe({ host: SOURCE.jump }, SOURCE.dbIp, port)).toBe('open');
    }
  });

  it('copies MySQL through both tunnels, resumes after the jump host is killed mid-copy, and verifies', async () => {
    const progress: string[] = [];
    let killed = false;
    const started = performance.now();
    const copy: Omit<MysqlCopyOptions, 'signal' | 'checkpointPath' | 'onProgress'> = { chunkRows: 1_000, concurrency: 1, maxBytesPerSecond: 400_000 };
    const mysql = store('mysql', { copy });
    const steps: MigrationStep[] = [copyDataStep({ stores: [mysql] }), verifyDataStep({ stores: [mysql] })];
    const report = await runMigration({
      name: 'tunnels',
      steps,
      directory: join(scratch, 'mysql'),
      onEvent: (event) => {
        if (event.type !== 'step-progress') return;
        progress.push(`${((performance.now() - started) / 1000).toFixed(1)} s ${event.message}`);
        if (!killed && /shop\.customers [3-9],000/.test(event.message)) {
          killed = true;
          // The source side's jump host loses its sshd (every session with it), and gets it back 3 s later.
          void lab.exec(SOURCE.jump, 'pkill -x sshd; sleep 3; /usr/sbin/sshd');
        }
      },
    });
    if (process.env.ARMADA_DEBUG_TUNNELS) console.log(progress.join('\n'));
    expect(killed, progress.join('\n')).toBe(true);
    expect(report.status).toBe('succeeded');
    expect(progress.some((message) => message.includes('the connection was lost')), progress.join('\n')).toBe(true);
    expect(report.steps.find((step) => step.id === 'verify-data')?.summary).toBe('1 store identical');
    // Independently, on the hosts: the same rows, the same checksum.
    const checksum = 'SELECT COUNT(*), SUM(CRC32(CONCAT(id, name, notes))) FROM shop.customers';
    expect(await sql(lab, TARGET.db, checksum)).toBe(await sql(lab, SOURCE.db, checksum));
    expect((await sql(lab, TARGET.db, 'SELECT COUNT(*) FROM shop.customers')).trim()).toBe('20000');
  }, 300_000);

  it('replicates MySQL across the clouds through a forward on the target host, relayed by Armada, through both jump hosts losing sshd', async () => {
    const seen = await openReplicationTunnel(targetDbHost, replicationPort('shop-db'), { host: SOURCE.dbIp, port: 3306 }, sourceRoute);
    const mysql = store('mysql', { mode: 'replicate', copy: { replaceExisting: true }, routes: { source: sourceRoute, target: targetRoute, replicationPath: async () => seen.seenFromTarget } });
    const replications = new ReplicationRegistry();
    const report = await runMigration({ name: 'replicate', steps: [copyDataStep({ stores: [mysql], replications })], directory: join(scratch, 'replicate') });
    expect(report.status).toBe('succeeded');
    // The replica names its own loopback: it cannot reach the source's private address itself.
    const status = await lab.exec(TARGET.db, "mysql -e 'SHOW SLAVE STATUS\\G'");
    expect(status).toMatch(/Master_Host: 127\.0\.0\.1\n/);
    expect(status).toContain(`Master_Port: ${replicationPort('shop-db')}\n`);
    await lab.exec(SOURCE.db, `mysql -e "INSERT INTO shop.customers (name, notes) VALUES ('written after the copy', 'replicated')"`);
    let row = '';
    for (let attempt = 0; attempt < 50 && row === ''; attempt++) {
      row = await sql(lab, TARGET.db, "SELECT name FROM shop.customers WHERE notes = 'replicated'");
      if (row === '') await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(row).toBe('written after the copy');

    // Both jump hosts lose their sshd (every session through them: the forward on the target host,
    // the relay to the source) and get it back; the path is asked for again and the replica
    // reconnects by itself, so a row written meanwhile arrives.
    await Promise.all([SOURCE.jump, TARGET.jump].map((host) => lab.exec(host, 'pkill -x sshd; sleep 2; /usr/sbin/sshd')));
    await lab.exec(SOURCE.db, `mysql -e "INSERT INTO shop.customers (name, notes) VALUES ('written during the outage', 'after the drop')"`);
    let late = '';
    for (let attempt = 0; attempt < 120 && late === ''; attempt++) {
      late = await sql(lab, TARGET.db, "SELECT name FROM shop.customers WHERE notes = 'after the drop'");
      if (late === '') await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(late).toBe('written during the outage');
    const cutover = await runMigration({ name: 'replicate', steps: [copyDataStep({ stores: [mysql], replications }), cutoverDataStep({ stores: [mysql], replications })], directory: join(scratch, 'replicate'), resume: true });
    expect(cutover.status).toBe('succeeded');
    expect(await sql(lab, TARGET.db, 'SELECT @@read_only')).toBe('0');
    await seen.close();
  }, 300_000);

  it('copies Redis through both tunnels, and verifies', async () => {
    const redis = store('redis');
    const report = await runMigration({ name: 'sessions', steps: [copyDataStep({ stores: [redis] }), verifyDataStep({ stores: [redis] })], directory: join(scratch, 'redis') });
    expect(report.status).toBe('succeeded');
    const count = (host: string) => lab.exec(host, `redis-cli -a ${PASSWORD} --no-auth-warning dbsize`);
    expect((await count(TARGET.db)).trim()).toBe('500');
    expect((await lab.exec(TARGET.db, `redis-cli -a ${PASSWORD} --no-auth-warning get session:42`)).trim()).toBe('user-42');
  }, 120_000);
});
