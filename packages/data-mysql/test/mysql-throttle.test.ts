/**
 * The throttle: a copy asked for at most N bytes per second takes at least bytes / N, and its
 * progress reports a rate at or under it; the data still arrives whole.
 */
import { startMariaDbServer, type MariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlDataMover } from '../src/index.js';

let source: MariaDbServer;
let target: MariaDbServer;
const endpoint = (server: MariaDbServer) => ({ host: server.host, port: server.port, user: 'root', databases: ['logs'] });

beforeAll(async () => {
  [source, target] = await Promise.all([startMariaDbServer(), startMariaDbServer()]);
  const connection = await createConnection({ host: source.host, port: source.port, user: 'root', multipleStatements: true });
  await connection.query('CREATE DATABASE logs; CREATE TABLE logs.lines (id INT PRIMARY KEY, text VARCHAR(200) NOT NULL)');
  for (let start = 0; start < 20_000; start += 5_000) {
    const rows = Array.from({ length: 5_000 }, (_, offset) => [start + offset, `line ${start + offset} ${'x'.repeat(90)}`]);
    await connection.query('INSERT INTO logs.lines VALUES ?', [rows]);
  }
  await connection.end();
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('MySQL copy with maxBytesPerSecond', () => {
  it('keeps to the rate', async () => {
    const mover = new MysqlDataMover();
    const free = await mover.copy(endpoint(source), endpoint(target), { chunkRows: 2_000 });
    const rate = Math.round(free.bytes / 1.5); // a second and a half's worth
    const rates: number[] = [];
    const throttled = await mover.copy(endpoint(source), endpoint(target), { chunkRows: 2_000, replaceExisting: true, maxBytesPerSecond: rate, onProgress: (progress) => rates.push(progress.bytesPerSecond ?? 0) });
    expect(throttled.bytes).toBe(free.bytes);
    // A lower bound only: a busy machine slows the unthrottled copy too, so comparing the two is noise.
    expect(throttled.durationMs).toBeGreaterThanOrEqual(1_450);
    expect(rates.at(-1)).toBeLessThanOrEqual(rate * 1.05);
    expect((await mover.verify(endpoint(source), endpoint(target))).ok).toBe(true);
  });
});
