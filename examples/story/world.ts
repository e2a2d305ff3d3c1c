/**
 * The story on the embedded default: a running "armada" stack on one emulated cloud (the source,
 * with its DNS zone pointing at it), an empty other cloud (the target), real MariaDB and Redis
 * servers standing for the source's and the target's data stores, and, where OpenSSH and Puppet
 * are installed, a real SSH server standing for every new instance so the server policies are
 * applied for real by `puppet apply`.
 *
 * `startStoryWorld` sets it up; `storyMigration` is the migration a team would write for it.
 * Everything started here is stopped by `world.stop()`, by pid.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  connectSsh,
  type DataEndpoint,
  type DnsService,
  type EnvironmentSpec,
  executePlan,
  loadSpecFile,
  type MigrationDefinition,
  memoryHostKeyStore,
  parseServerPolicies,
  plan,
  type ServerPolicies,
} from '@armada/core';
import { PuppetConfigManager } from '@armada/config-puppet';
import { MysqlDataMover } from '@armada/data-mysql';
import { RedisDataMover } from '@armada/data-redis';
import { generateKeyPair, type MariaDbServer, type RedisServer, SSHD_PATH, type SshServer, startMariaDbServer, startRedisServer, startSshServer } from '@armada/testkit';
import { type CloudName, type EmulatedCloud, startCloud } from './clouds.js';
import { seedSessions, seedShop } from './data.js';

export const SPEC_PATH = fileURLToPath(new URL('../environments/armada.yaml', import.meta.url));
export const ZONE = 'armada.example';
/** The production TTL before the move: what the DNS step waits out (the demo caps the wait). */
export const OLD_TTL = 3600;

export interface StoryWorldOptions {
  source: CloudName;
  target: CloudName;
  /** Apply server policies over SSH with Puppet (needs openssh-server and puppet installed). */
  servers?: boolean;
  /** Rows and keys to generate on the source's data stores. */
  customers?: number;
  sessions?: number;
}

export interface StoryWorld {
  source: EmulatedCloud;
  target: EmulatedCloud;
  /** The DNS service holding the zone: the source's, or the target's when the source has none. */
  dns: DnsService;
  dnsAt: 'source' | 'target';
  spec: EnvironmentSpec;
  mysql: { source: DataEndpoint; target: DataEndpoint };
  redis: { source: DataEndpoint; target: DataEndpoint };
  /** Rows and keys on the source before the move. */
  seeded: { rows: number; keys: number };
  /** Present when servers are configured for real. */
  /** The deploy key stays in memory: it is the world's own, thrown away with it. */
  ssh?: { server: SshServer; privateKey: string; policies: ServerPolicies; root: string };
  /** A temporary directory for the migration's checkpoint and files. */
  directory: string;
  stop(): Promise<void>;
}

/** Why servers cannot be configured here, naming the Debian package to install; undefined when they can. */
export function serversUnavailable(): string | undefined {
  if (!existsSync(SSHD_PATH)) return `${SSHD_PATH} is missing: apt-get install openssh-server`;
  try {
    execFileSync('puppet', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'puppet is missing: apt-get install puppet';
  }
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'git is missing: apt-get install git';
  }
  return undefined;
}

/** The source's spec: the same environment, on the source cloud. */
const on = (spec: EnvironmentSpec, cloud: EmulatedCloud): EnvironmentSpec => ({ ...spec, provider: { id: cloud.provider.id, region: cloud.region } });

/**
 * The story's server policies, kept inside a scratch directory so the demo never touches the host:
 * the web tier gets its MOTD, its database settings (the new data server's address, from
 * provisioning) and the shop app cloned from git and checked out as its owner; the data tier gets
 * its configuration file.
 */
async function storyPolicies(root: string): Promise<ServerPolicies> {
  const repository = join(root, 'shop.git');
  const work = join(root, 'shop-src');
  await mkdir(work, { recursive: true });
  const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { stdio: 'pipe' });
  git('init', '--quiet', '--initial-branch=main');
  await writeFile(join(work, 'index.php'), '<?php echo "Armada shop";\n');
  git('add', '.');
  git('-c', 'user.name=Armada', '-c', 'user.email=demo@armada.example', 'commit', '--quiet', '-m', 'The shop');
  execFileSync('git', ['clone', '--quiet', '--bare', work, repository], { stdio: 'pipe' });
  // The hosts' own directories, as a server image has them: Puppet's file type makes no parents.
  for (const path of ['web/etc', 'web/srv', 'data/etc']) await mkdir(join(root, path), { recursive: true });
  const owner = userInfo().username;
  return parseServerPolicies({
    roles: {
      web: {
        files: [
          { path: `${root}/web/etc/motd`, content: 'Welcome to the Armada web tier, configured by Puppet over SSH.\n', mode: '0644' },
          { path: `${root}/web/etc/shop.env`, template: 'DB_HOST={{HOST}}\nDB_NAME=shop\n', vars: { HOST: { output: { instance: 'data-1', value: 'privateIp' } } }, mode: '0640' },
        ],
        apps: [{ name: 'shop', repository: `file://${repository}`, ref: 'main', path: `${root}/web/srv/shop`, owner }],
      },
      data: {
        files: [{ path: `${root}/data/etc/armada-data.conf`, content: 'role=data\nmysql=3306\nredis=6379\n', mode: '0644' }],
      },
    },
  });
}

export async function startStoryWorld(options: StoryWorldOptions): Promise<StoryWorld> {
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const stopper of stoppers.reverse()) await stopper().catch(() => {});
  };
  try {
    const directory = await mkdtemp(join(tmpdir(), 'armada-story-'));
    stoppers.push(() => rm(directory, { recursive: true, force: true }));
    const [source, target] = await Promise.all([startCloud(options.source), startCloud(options.target)]);
    stoppers.push(() => source.close(), () => target.close());
    const spec = await loadSpecFile(SPEC_PATH);

    // The running production on the source cloud, and its DNS pointing at it.
    const sourceSpec = on(spec, source);
    const running = await executePlan(await plan({ spec: sourceSpec, provider: source.provider }), { provider: source.provider });
    if (running.status !== 'succeeded') throw new Error(`could not start the source stack: ${running.failed.map((failure) => failure.error.message).join('; ')}`);
    const web = running.resources.filter((resource) => resource.kind === 'instance' && resource.name.startsWith('web-')).map((resource) => String(resource.outputs.publicIp));
    const dnsAt = source.dns ? 'source' : 'target';
    const zoneHost = dnsAt === 'source' ? source : target;
    if (!zoneHost.dns || !zoneHost.createZone) throw new Error(`neither ${source.name} nor ${target.name} has a DNS service for the story's zone`);
    const dns = zoneHost.dns;
    zoneHost.createZone(ZONE);
    await dns.upsertRecord({ zone: ZONE, name: 'www', type: 'A', ttl: OLD_TTL, values: web });
    await dns.upsertRecord({ zone: ZONE, name: 'shop', type: 'A', ttl: 300, values: web.slice(0, 1) });

    const servers: [MariaDbServer, MariaDbServer, RedisServer, RedisServer] = await Promise.all([startMariaDbServer(), startMariaDbServer(), startRedisServer(), startRedisServer()]);
    for (const server of servers) stoppers.push(() => server.stop());
    const [mysqlSource, mysqlTarget, redisSource, redisTarget] = servers;
    const mysql = { source: { host: mysqlSource.host, port: mysqlSource.port, user: 'root', databases: ['shop'] }, target: { host: mysqlTarget.host, port: mysqlTarget.port, user: 'root', databases: ['shop'] } };
    const redis = { source: { host: redisSource.host, port: redisSource.port }, target: { host: redisTarget.host, port: redisTarget.port } };
    const [rows, keys] = await Promise.all([seedShop(mysql.source, { customers: options.customers ?? 2_000 }), seedSessions(redis.source, { sessions: options.sessions ?? 5_000 })]);

    let ssh: StoryWorld['ssh'];
    if (options.servers) {
      const missing = serversUnavailable();
      if (missing) throw new Error(`Configuring servers needs OpenSSH, Puppet and git: ${missing}.`);
      const root = join(directory, 'hosts');
      const policies = await storyPolicies(root);
      const keyPair = await generateKeyPair('armada-story');
      const server = await startSshServer({ authorizedKeys: [keyPair.publicKey] });
      stoppers.push(() => server.stop());
      ssh = { server, privateKey: keyPair.privateKey, policies, root };
    }
    return { source, target, dns, dnsAt, spec, mysql, redis, seeded: { rows, keys }, ...(ssh ? { ssh } : {}), directory, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface StoryMigrationOptions {
  /** How the DNS step waits out the old TTL (the demo and tests cap it). */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
  chunkRows?: number;
  /** Replicate the data stores until the cutover instead of copying them once. */
  replicate?: boolean;
  decommissionSource?: boolean;
}

/**
 * The migration a team writes for the story, with the library's standard steps: every new instance
 * is reached at the local SSH server (standing for its public address), the data stores move to
 * the target servers, and www and shop switch to the new web servers.
 */
export function storyMigration(world: StoryWorld, options: StoryMigrationOptions = {}): MigrationDefinition {
  const targetSpec = on(world.spec, world.target);
  const ssh = world.ssh;
  const hostKeys = memoryHostKeyStore(); // trust on first use, then pinned for the run
  const mode = options.replicate ? ('replicate' as const) : ('copy' as const);
  return {
    name: `story-${world.source.name}-to-${world.target.name}`,
    source: { provider: world.source.provider, environment: world.spec.name },
    target: { provider: world.target.provider, spec: targetSpec },
    ...(ssh
      ? {
          servers: {
            configManager: new PuppetConfigManager(),
            policies: ssh.policies,
            // Every instance is reached at the local SSH server, standing for its public address.
            connect: (_instance, signal) => connectSsh({ host: ssh.server.host, port: ssh.server.port, username: ssh.server.username, privateKey: ssh.privateKey, hostKeys, signal }),
            // One machine stands for all four servers, and Puppet runs one at a time per machine.
            concurrency: 1,
          },
        }
      : {}),
    data: [
      { name: 'shop-db', mover: new MysqlDataMover(), source: world.mysql.source, target: world.mysql.target, copy: { concurrency: 2, ...(options.chunkRows ? { chunkRows: options.chunkRows } : {}) }, mode },
      { name: 'sessions', mover: new RedisDataMover(), source: world.redis.source, target: world.redis.target, mode },
    ],
    dns: {
      dns: world.dns,
      zone: ZONE,
      lowTtl: 60,
      records: [
        { name: 'www', type: 'A', to: { instance: ['web-1', 'web-2'] } },
        { name: 'shop', type: 'A', to: { instance: 'web-1' } },
      ],
      ...(options.wait ? { wait: options.wait } : {}),
    },
    ...(options.decommissionSource ? { decommissionSource: true } : {}),
  };
}
