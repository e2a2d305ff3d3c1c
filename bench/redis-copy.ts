/**
 * The Redis mover against Redis's own full sync (REPLICAOF) and against redis-cli (`--scan`, then
 * `MIGRATE ... COPY KEYS` in batches of 1,000, the usual redis-cli way to copy keys between two
 * servers), on the same generated data set, in one run: `tsx bench/redis-copy.ts [keys]`. Prints
 * one JSON line.
 *
 * The mover copies twice, into two targets: with its default strategy (`auto`, which takes the
 * RDB snapshot over PSYNC: `copyMs`, `ratio`, `ratioToRedisCli`, `copyPeakRssMB`, repeated as
 * `rdb*`) and with `strategy: 'scan'` (SCAN + DUMP/RESTORE: `scan*`). Each copy runs in a child
 * process (`copy` mode), so its peak memory is the mover's own, not the data generator's. The
 * source is set to start a full sync at once (repl-diskless-sync-delay 0): Redis 7 otherwise waits
 * 5 s for more replicas, which would flatter the mover (the rdb strategy waits that delay too).
 */
import { execFileSync } from 'node:child_process';
import { RedisDataMover, RedisReplication, type RedisCopyStrategy } from '@armada/data-redis';
import { startRedisServer } from '@armada/testkit';
import { Redis } from 'ioredis';

if (process.argv[2] === 'copy') {
  const [sourcePort, targetPort] = [Number(process.argv[3]), Number(process.argv[4])];
  const strategy = (process.argv[5] ?? 'auto') as RedisCopyStrategy;
  const started = performance.now();
  const report = await new RedisDataMover().copy({ host: '127.0.0.1', port: sourcePort }, { host: '127.0.0.1', port: targetPort }, { batchSize: 2000, strategy });
  console.log(JSON.stringify({ copyMs: Math.round(performance.now() - started), items: report.items, strategy: report.strategy, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }));
  process.exit(0);
}

const keys = Number(process.argv[2] ?? 300_000);
const [source, copyTarget, scanTarget, syncTarget, cliTarget] = await Promise.all([startRedisServer(), startRedisServer(), startRedisServer(), startRedisServer(), startRedisServer()]);
try {
  const client = new Redis({ host: source.host, port: source.port });
  // Mostly small strings (a tenth with a TTL), some hashes and lists, and one big hash.
  const strings = Math.floor(keys * 0.85);
  const hashes = Math.floor(keys * 0.1);
  for (let start = 0; start < keys - 1; start += 10_000) {
    const pipeline = client.pipeline();
    for (let index = start; index < Math.min(keys - 1, start + 10_000); index++) {
      const value = `value-${index}-${'x'.repeat(64)}`;
      if (index < strings) {
        if (index % 10 === 0) pipeline.set(`s:${index}`, value, 'EX', 3600);
        else pipeline.set(`s:${index}`, value);
      } else if (index < strings + hashes) pipeline.hset(`h:${index}`, { a: index, b: 'two', c: 'three', d: 'four', e: 'five' });
      else pipeline.rpush(`l:${index}`, 'a', 'b', 'c', 'd', 'e', 'f');
    }
    await pipeline.exec();
  }
  // One big hash, written in slices (one call with 400,000 arguments would overflow the stack).
  for (let slice = 0; slice < 20; slice++) {
    const fields: string[] = [];
    for (let index = slice * 10_000; index < (slice + 1) * 10_000; index++) fields.push(`f${index}`, `v${index}`);
    await client.hset('big', ...fields);
  }
  await client.config('SET', 'repl-diskless-sync-delay', '0');
  const total = Number(await client.dbsize());
  client.disconnect();

  const copyWith = (port: number, strategy: RedisCopyStrategy) => {
    const child = execFileSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, 'copy', String(source.port), String(port), strategy], { encoding: 'utf8' });
    return JSON.parse(child.trim().split('\n').at(-1) ?? '{}') as { copyMs: number; items: number; strategy: string; peakRssMB: number };
  };
  const copy = copyWith(copyTarget.port, 'auto');
  const scan = copyWith(scanTarget.port, 'scan');

  let started = performance.now();
  const replication = await RedisReplication.start({ host: source.host, port: source.port }, { host: syncTarget.host, port: syncTarget.port });
  const syncMs = performance.now() - started;
  replication.close();

  // redis-cli: every key is listed, then moved by the source itself, 1,000 keys per MIGRATE. The
  // generated keys are plain text, so redis-cli's line protocol carries them unquoted.
  started = performance.now();
  const cli = (args: string[], input?: string) => execFileSync('redis-cli', ['-h', source.host, '-p', String(source.port), ...args], { encoding: 'utf8', maxBuffer: 1 << 28, ...(input === undefined ? {} : { input }) });
  const listed = cli(['--scan']).split('\n').filter(Boolean);
  const migrations: string[] = [];
  for (let index = 0; index < listed.length; index += 1000) migrations.push(`MIGRATE ${cliTarget.host} ${cliTarget.port} "" 0 60000 COPY KEYS ${listed.slice(index, index + 1000).join(' ')}`);
  const replies = cli([], `${migrations.join('\n')}\n`).split('\n').filter(Boolean);
  const cliMs = performance.now() - started;
  if (replies.some((reply) => reply !== 'OK')) throw new Error(`redis-cli MIGRATE failed: ${replies.find((reply) => reply !== 'OK')}`);
  const cliClient = new Redis({ host: cliTarget.host, port: cliTarget.port });
  const cliKeys = Number(await cliClient.dbsize());
  cliClient.disconnect();

  started = performance.now();
  const verified = await new RedisDataMover().verify({ host: source.host, port: source.port }, { host: copyTarget.host, port: copyTarget.port });
  const verifyMs = performance.now() - started;
  // The scan copy is checked by DEBUG DIGEST (the full verify above takes most of a minute).
  const digest = async (port: number) => {
    const digestClient = new Redis({ host: '127.0.0.1', port });
    try {
      return String(await digestClient.call('DEBUG', 'DIGEST'));
    } finally {
      digestClient.disconnect();
    }
  };
  const [sourceDigest, copyDigest, scanDigest] = await Promise.all([digest(source.port), digest(copyTarget.port), digest(scanTarget.port)]);
  console.log(
    JSON.stringify({
      keys: total,
      copiedKeys: copy.items,
      copyStrategy: copy.strategy,
      copyMs: copy.copyMs,
      replicaofFullSyncMs: Math.round(syncMs),
      ratio: Number((copy.copyMs / syncMs).toFixed(2)),
      redisCliMigrateMs: Math.round(cliMs),
      redisCliKeys: cliKeys,
      ratioToRedisCli: Number((copy.copyMs / cliMs).toFixed(2)),
      copyPeakRssMB: copy.peakRssMB,
      verifyMs: Math.round(verifyMs),
      verified: verified.ok && copyDigest === sourceDigest,
      ...(copy.strategy === 'rdb' ? { rdbCopyMs: copy.copyMs, rdbRatio: Number((copy.copyMs / syncMs).toFixed(2)), rdbRatioToRedisCli: Number((copy.copyMs / cliMs).toFixed(2)), rdbPeakRssMB: copy.peakRssMB } : {}),
      scanCopyMs: scan.copyMs,
      scanCopiedKeys: scan.items,
      scanRatio: Number((scan.copyMs / syncMs).toFixed(2)),
      scanRatioToRedisCli: Number((scan.copyMs / cliMs).toFixed(2)),
      scanPeakRssMB: scan.peakRssMB,
      scanVerified: scanDigest === sourceDigest,
    }),
  );
} finally {
  await Promise.all([source.stop(), copyTarget.stop(), scanTarget.stop(), syncTarget.stop(), cliTarget.stop()]);
}
