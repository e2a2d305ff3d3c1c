/** The throttle, with each strategy: a copy asked for at most N bytes per second takes at least bytes / N. */
import { startRedisServer, type RedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisDataMover, type RedisCopyStrategy } from '../src/index.js';

let source: RedisServer;
let target: RedisServer;
const endpoint = (server: RedisServer) => ({ host: server.host, port: server.port });

beforeAll(async () => {
  [source, target] = await Promise.all([startRedisServer(), startRedisServer()]);
  const client = new Redis({ host: source.host, port: source.port });
  const pipeline = client.pipeline();
  for (let index = 0; index < 10_000; index++) pipeline.set(`k:${index}`, `value ${index} ${'y'.repeat(100)}`);
  await pipeline.exec();
  await client.config('SET', 'repl-diskless-sync-delay', '0');
  client.disconnect();
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

describe.each(['scan', 'rdb'] as RedisCopyStrategy[])('Redis copy with maxBytesPerSecond, strategy %s', (strategy) => {
  it('keeps to the rate and copies everything', async () => {
    const mover = new RedisDataMover();
    const free = await mover.copy(endpoint(source), endpoint(target), { strategy, replaceExisting: true });
    const rate = Math.round(free.bytes / 1.5); // a second and a half's worth
    const throttled = await mover.copy(endpoint(source), endpoint(target), { strategy, replaceExisting: true, maxBytesPerSecond: rate });
    expect(throttled.items).toBe(10_000);
    // scan paces the bytes it reports; rdb paces the snapshot's own bytes, a little fewer than the
    // RESTORE payloads it reports: both take at least near 1.5 s. A lower bound only: a busy
    // machine makes both copies slower, so comparing with the unthrottled copy's time is noise.
    expect(throttled.durationMs).toBeGreaterThanOrEqual(1_200);
    expect((await mover.verify(endpoint(source), endpoint(target))).ok).toBe(true);
  });
});
