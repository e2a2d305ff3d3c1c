/**
 * A scan copy reads a live source key by key, so it is one point in time only while the source
 * takes no writes. A resumed scan copy continues from its cursors only when the source provably
 * has not changed since the first run began, and otherwise starts over (saying why); a copy
 * during which the source took writes says so. Compared independently of verify: DEBUG DIGEST
 * of both servers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError } from '@armada/core';
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover } from '../src/index.js';

let source: RedisServer;
const started: RedisServer[] = [];
const clients: Redis[] = [];
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });
const client = (server: RedisServer) => {
  const made = new Redis({ host: server.host, port: server.port });
  clients.push(made);
  return made;
};
const digest = async (server: RedisServer) => String(await client(server).call('DEBUG', 'DIGEST'));
const newTarget = async () => {
  const server = await startRedisServer();
  started.push(server);
  return server;
};

beforeAll(async () => {
  source = await startRedisServer();
  const writer = client(source);
  const pipeline = writer.pipeline();
  for (let index = 0; index < 3000; index++) pipeline.set(`key:${index}`, `value ${index}`);
  await pipeline.exec();
}, 60_000);
afterAll(async () => {
  for (const made of clients) made.disconnect();
  await Promise.all([source, ...started].map((server) => server?.stop()));
});

/** A scan copy into `target` stopped after three batches; its checkpoint's path. */
async function interrupted(target: RedisServer): Promise<string> {
  const checkpointPath = join(mkdtempSync(join(tmpdir(), 'armada-redis-resume-')), 'copy.json');
  const controller = new AbortController();
  let batches = 0;
  const first = await new RedisDataMover()
    .copy(endpoint(source), endpoint(target), { strategy: 'scan', batchSize: 200, checkpointPath, signal: controller.signal, onProgress: () => ++batches === 3 && controller.abort() })
    .catch((caught: unknown) => caught);
  expect(CancelledError.isInstance(first)).toBe(true);
  return checkpointPath;
}

describe('scan: resume and writes during the copy', () => {
  it('continues from its cursors when the source is unchanged since the first run began', async () => {
    const target = await newTarget();
    const checkpointPath = await interrupted(target);
    const resumed = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'scan', batchSize: 200, checkpointPath });
    expect(resumed.resumed).toBe(true);
    expect(resumed.restarted).toBeUndefined();
    expect(resumed.warnings).toBeUndefined();
    // Only what the first run had not copied was copied now.
    expect(resumed.items).toBe(3000);
    expect(await digest(target)).toBe(await digest(source));
  }, 60_000);

  it('starts over when the source was written between the runs, and ends with its new state', async () => {
    const target = await newTarget();
    const checkpointPath = await interrupted(target);
    // Every key changes, including those the first run had copied already.
    const writer = client(source);
    const pipeline = writer.pipeline();
    for (let index = 0; index < 3000; index++) pipeline.set(`key:${index}`, `changed ${index}`);
    pipeline.del('key:7');
    await pipeline.exec();
    // A key only the first run's copy left on the target (deleted on the source since) must go too.
    const resumed = await new RedisDataMover().copy(endpoint(source), endpoint(target), { strategy: 'scan', batchSize: 200, checkpointPath });
    expect(resumed.restarted).toMatch(/write counters moved/);
    expect(await client(target).exists('key:7')).toBe(0);
    expect(await digest(target)).toBe(await digest(source));
  }, 60_000);

  it('says so when the source took writes while it copied', async () => {
    const target = await newTarget();
    const writer = client(source);
    let written = 0;
    const report = await new RedisDataMover().copy(endpoint(source), endpoint(target), {
      strategy: 'scan',
      batchSize: 200,
      onProgress: () => {
        written++;
        writer.set(`during:${written}`, 'x').catch(() => undefined);
      },
    });
    expect(written).toBeGreaterThan(0);
    expect(report.warnings?.join('\n')).toMatch(/the source took writes during the scan copy/);
  }, 60_000);
});
