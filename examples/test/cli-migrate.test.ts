/**
 * `armada migrate` as a user runs it: a child process, a migration file, the emulators' endpoints
 * in the environment the way real credentials would be. A dry run changes nothing anywhere; a run
 * killed (SIGKILL) in the middle of the MySQL copy refuses a plain re-run, resumes with --resume at
 * the chunk where it stopped, and ends verified and identical.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armada as run } from './armada-cli.js';
import { SPEC_PATH, type StoryWorld, startStoryWorld, ZONE } from '../story/index.js';


let world: StoryWorld;
let migrationFile: string;
let env: NodeJS.ProcessEnv;
const armada = (args: string[]) => run(args, env);

const mysqldump = (port: number) => execFileSync('mysqldump', ['-h', '127.0.0.1', '-P', String(port), '-u', 'root', '--skip-dump-date', '--skip-comments', 'shop'], { encoding: 'utf8', maxBuffer: 1 << 28 });

beforeAll(async () => {
  world = await startStoryWorld({ source: 'digitalocean', target: 'aws', customers: 25_000, sessions: 2_000 });
  env = { ...process.env, ...world.source.env, ...world.target.env, SOURCE_DB_PASSWORD: '' };
  migrationFile = join(world.directory, 'migration.json');
  await writeFile(
    migrationFile,
    JSON.stringify({
      name: 'do-to-aws',
      directory: join(world.directory, 'run'),
      source: { environment: 'armada', provider: { id: 'digitalocean', region: world.source.region } },
      target: { spec: SPEC_PATH, provider: { id: 'aws', region: world.target.region } },
      data: [
        // One worker, small chunks: the copy takes long enough to be killed in its middle.
        { name: 'shop-db', mover: 'mysql', source: { ...world.mysql.source, passwordEnv: 'SOURCE_DB_PASSWORD' }, target: world.mysql.target, concurrency: 1, options: { chunkRows: 1_000 } },
        { name: 'sessions', mover: 'redis', source: world.redis.source, target: world.redis.target },
      ],
      dns: { provider: world.dnsAt, zone: ZONE, maxWaitSeconds: 0, records: [{ name: 'www', to: { instance: ['web-1', 'web-2'] } }] },
    }),
  );
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

describe('armada migrate', () => {
  it('--dry-run prints every step and changes nothing on the clouds, the DNS or the servers', { timeout: 60_000 }, async () => {
    const before = { source: world.source.inventory(), target: world.target.inventory(), dns: await world.dns.listRecords(ZONE) };
    const run = await armada(['migrate', migrationFile, '--dry-run']).done;
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('Provision armada on aws (us-east-1)');
    expect(run.stdout).toMatch(/would copy shop-db with mysql from 127\.0\.0\.1:\d+ \(shop\)/);
    expect(run.stdout).toContain('www A: TTL 3600 -> 60');
    expect({ source: world.source.inventory(), target: world.target.inventory(), dns: await world.dns.listRecords(ZONE) }).toEqual(before);
    expect(() => mysqldump(world.mysql.target.port)).toThrow(); // no shop database on the target
    const redis = new Redis({ host: world.redis.target.host, port: world.redis.target.port });
    expect(await redis.dbsize()).toBe(0);
    redis.disconnect();
    expect(existsSync(join(world.directory, 'run'))).toBe(false);
  });

  it('killed during the data copy, refuses a plain re-run, and completes with --resume', { timeout: 180_000 }, async () => {
    const checkpoint = join(world.directory, 'run', 'copy-data', 'shop-db.checkpoint.json');
    const first = armada(['migrate', migrationFile]);
    // Kill it hard once a few chunks of the MySQL copy are recorded.
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('the copy never started');
      if (existsSync(checkpoint)) {
        const done = (JSON.parse(readFileSync(checkpoint, 'utf8')) as { done: unknown[] }).done.length;
        if (done >= 3) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    first.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    // The copy was cut short: the target holds part of the rows.
    const rowsAtKill = Number(execFileSync('mysql', ['-h', '127.0.0.1', '-P', String(world.mysql.target.port), '-u', 'root', '-N', '-B', '-e', 'SELECT (SELECT COUNT(*) FROM shop.customers) + (SELECT COUNT(*) FROM shop.orders)'], { encoding: 'utf8' }).trim());
    expect(rowsAtKill).toBeGreaterThan(0);
    expect(rowsAtKill).toBeLessThan(world.seeded.rows);

    const plain = await armada(['migrate', migrationFile]).done;
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('stopped at step "copy-data"');
    expect(plain.stderr).not.toMatch(/\n\s+at /);

    const resumed = await armada(['migrate', migrationFile, '--resume', '--json']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    const document = JSON.parse(resumed.stdout) as { ok: boolean; report: { resumed: boolean; steps: Array<{ id: string; status: string; output?: { stores?: Array<{ name: string; resumed?: boolean }> } }> } };
    expect(document.ok).toBe(true);
    expect(document.report.resumed).toBe(true);
    expect(document.report.steps.map((step) => [step.id, step.status])).toEqual([
      ['check-policies', 'done earlier'],
      ['provision-target', 'done earlier'],
      ['copy-data', 'done'],
      ['verify-data', 'done'],
      ['lower-dns-ttl', 'done'],
      ['switch-dns', 'done'],
    ]);
    const copied = document.report.steps.find((step) => step.id === 'copy-data')?.output?.stores?.find((store) => store.name === 'shop-db');
    expect(copied?.resumed).toBe(true);
    // Independent of the mover's own verify: both servers dump the same.
    expect(mysqldump(world.mysql.target.port)).toBe(mysqldump(world.mysql.source.port));
    const www = (await world.dns.listRecords(ZONE)).find((record) => record.name === 'www');
    expect(www?.ttl).toBe(60);
    expect(www?.values.every((value) => value.startsWith('203.0.113.'))).toBe(true);

    // Run again: the work is found done.
    const again = await armada(['migrate', migrationFile, '--resume']).done;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('done earlier');
  });
});
