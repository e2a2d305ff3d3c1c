/**
 * Preflight, as a user meets it: `armada migrate` (a child process) on a migration file with one
 * mistake, against the story's emulated clouds and real MariaDB and Redis servers. Each mistake is
 * found before anything is created, by the dry run and by the real run alike: exit 2, the field of
 * the migration file named with its fix, nothing on either cloud, no run directory.
 */
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from '@armada/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armada as run } from './armada-cli.js';
import { SPEC_PATH, type StoryWorld, startStoryWorld, ZONE } from '../story/index.js';

let world: StoryWorld;
let env: NodeJS.ProcessEnv;
let base: Record<string, unknown>;

beforeAll(async () => {
  world = await startStoryWorld({ source: 'digitalocean', target: 'aws', customers: 200, sessions: 50 });
  env = { ...process.env, ...world.source.env, ...world.target.env, SOURCE_DB_PASSWORD: '' };
  base = {
    name: 'preflight',
    directory: join(world.directory, 'run'),
    source: { environment: 'armada', provider: { id: 'digitalocean', region: world.source.region } },
    target: { spec: SPEC_PATH, provider: { id: 'aws', region: world.target.region } },
    data: [
      { name: 'shop-db', mover: 'mysql', source: { ...world.mysql.source, passwordEnv: 'SOURCE_DB_PASSWORD' }, target: world.mysql.target },
      { name: 'sessions', mover: 'redis', source: world.redis.source, target: world.redis.target },
    ],
    dns: { provider: world.dnsAt, zone: ZONE, maxWaitSeconds: 0, records: [{ name: 'www', to: { instance: ['web-1', 'web-2'] } }] },
  };
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

type Data = Array<Record<string, unknown>>;
const withData = (change: (data: Data) => void) => {
  const data = structuredClone(base.data) as Data;
  change(data);
  return { ...base, data };
};

/** A migration file with one mistake, and what preflight must say about it. */
const mistakes: Array<{ title: string; file: () => Promise<Record<string, unknown>>; path: string; message: RegExp }> = [
  {
    title: 'a database host that cannot be reached',
    file: async () => withData((data) => Object.assign(data[0] as object, { source: { ...world.mysql.source, port: 1, passwordEnv: 'SOURCE_DB_PASSWORD' } })),
    path: 'data[0].source',
    message: /ECONNREFUSED/,
  },
  {
    title: 'a database that refuses the credentials',
    file: async () => withData((data) => Object.assign(data[0] as object, { source: { ...world.mysql.source, user: 'nobody-here', passwordEnv: 'SOURCE_DB_PASSWORD' } })),
    path: 'data[0].source',
    message: /user or password was refused/,
  },
  {
    title: 'a data target naming an instance the spec does not have',
    file: async () => withData((data) => Object.assign(data[1] as object, { target: { instance: 'data-9', port: 6379 } })),
    path: 'data[1].target.instance',
    message: /the target spec has no instance "data-9"/,
  },
  {
    title: 'a data target on a new server the mover cannot reach (its public address, in a private subnet)',
    file: async () => withData((data) => Object.assign(data[0] as object, { target: { instance: 'data-1', address: 'publicIp', port: 3306, user: 'root' } })),
    path: 'data[0].target.address',
    message: /data-1 is in the private subnet private: it has no public address/,
  },
  {
    title: 'a data target on a new server whose firewalls do not admit its port',
    file: async () => withData((data) => Object.assign(data[0] as object, { target: { instance: 'web-1', address: 'privateIp', port: 3306, user: 'root' } })),
    path: 'data[0].target.port',
    message: /no firewall of web-1 admits TCP port 3306 from inside the network/,
  },
  {
    title: 'a DNS record pointing at an instance the spec does not have',
    file: async () => ({ ...base, dns: { ...(base.dns as object), records: [{ name: 'www', to: { instance: ['web-1', 'web-7'] } }] } }),
    path: 'dns.records[0].to.instance',
    message: /the target spec has no instance "web-7"/,
  },
  {
    title: 'a data store copied onto itself',
    file: async () => withData((data) => Object.assign(data[1] as object, { target: { ...world.redis.source, host: 'localhost' } })),
    path: 'data[1].target',
    message: /the target is the source itself/,
  },
  {
    title: 'server policies without the role an instance gets',
    file: async () => {
      const policies = join(world.directory, 'policies-without-data.yaml');
      await writeFile(policies, 'os: debian-12\nroles:\n  web: {}\n');
      const key = join(world.directory, 'deploy-key');
      await writeFile(key, (await generateKeyPair()).privateKey, { mode: 0o600 });
      return { ...base, servers: { configManager: 'puppet', policies, ssh: { user: 'admin', privateKeyPath: key } } };
    },
    path: 'servers.policies: roles',
    message: /instance data-1 has role "data", which the server policies do not define/,
  },
  {
    title: 'a damaged known_hosts file, and host keys pinned for an instance the spec lacks',
    file: async () => {
      const policies = join(world.directory, 'policies-web.yaml');
      await writeFile(policies, 'os: debian-12\nroles:\n  web: {}\n  data: {}\n');
      const key = join(world.directory, 'deploy-key-2');
      await writeFile(key, (await generateKeyPair()).privateKey, { mode: 0o600 });
      const knownHosts = join(world.directory, 'damaged_known_hosts');
      await writeFile(knownHosts, 'this is not a known_hosts line\n');
      const hostKeys = { 'web-9': 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
      return { ...base, servers: { configManager: 'puppet', policies, ssh: { user: 'admin', privateKeyPath: key, knownHosts, hostKeys } } };
    },
    path: 'servers.ssh.knownHosts',
    message: /line 1 of \S+damaged_known_hosts is not a known_hosts line/,
  },
  {
    title: 'a DNS record to move that the zone does not have',
    file: async () => ({ ...base, dns: { ...(base.dns as object), records: [{ name: 'www', to: { instance: ['web-1'] } }, { name: 'nosuch', to: { instance: ['web-1'] } }] } }),
    path: 'dns.records[1]',
    message: new RegExp(`${ZONE.replaceAll('.', '\\.')} has no A record nosuch`),
  },
  {
    title: 'a DNS zone the chosen provider does not hold',
    file: async () => ({ ...base, dns: { ...(base.dns as object), zone: 'not-held.example' } }),
    path: 'dns.zone',
    message: /holds no zone not-held\.example/,
  },
];

describe('armada migrate: preflight', () => {
  it.each(mistakes)('finds $title before anything is created, in the dry run and the real run', { timeout: 90_000 }, async ({ file, path, message }) => {
    const migration = join(world.directory, 'migration.json');
    await writeFile(migration, JSON.stringify(await file()));
    const before = { source: world.source.inventory(), target: world.target.inventory() };
    for (const args of [['--dry-run'], []]) {
      const result = await run(['migrate', migration, ...args], env).done;
      expect(result.code, result.stderr).toBe(2);
      const line = result.stderr.split('\n').find((entry) => entry.includes(`${path}:`) && message.test(entry));
      expect(line, result.stderr).toBeDefined();
      expect(line).toContain('(fix: ');
      expect(result.stderr).not.toMatch(/\n\s+at |looks like a bug/);
      expect(result.stderr).toMatch(/Preflight: \d+ problem\(s\) in \d+ checks/);
    }
    expect({ source: world.source.inventory(), target: world.target.inventory() }).toEqual(before);
    expect(existsSync(join(world.directory, 'run'))).toBe(false);
  });

  it('says what it checked when all is well (dry run)', { timeout: 90_000 }, async () => {
    const migration = join(world.directory, 'migration.json');
    await writeFile(migration, JSON.stringify(base));
    const result = await run(['migrate', migration, '--dry-run'], env).done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Preflight: nothing wrong in 6 checks/);
    expect(result.stderr).toContain('checked target provider aws (us-east-1): credentials and region');
    expect(result.stderr).toMatch(/checked data\[0\] \(shop-db\) with mysql: source 127\.0\.0\.1:\d+ and target 127\.0\.0\.1:\d+/);
    expect(result.stderr).toContain(`checked DNS zone ${ZONE}`);
  });
});
