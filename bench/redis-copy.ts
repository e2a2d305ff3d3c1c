/**
 * The Redis mover against Redis's own full sync (REPLICAOF) and against redis-cli (`--scan`, then
 * `MIGRATE ... COPY KEYS` in batches of 1,000, the usual redis-cli way to copy keys between two
 * servers; and SCAN + PTTL/DUMP read in pipelines with the RESTOREs piped through `redis-cli
 * --pipe`, the way a script copies from a managed Redis without PSYNC: the baseline of the scan
 * strategy), on the same generated data set, in one run: `tsx bench/redis-copy.ts [keys] [rounds]`.
 * Prints one JSON line; `rdbRatio` and `scanRatio` are each strategy's time over REPLICAOF's.
 *
 * The machine is noisy (a busy 2-core VM), so the copies, the full sync and the verify run in
 * `rounds` rounds (default 5), one of each per round, in turn: each ratio is taken within a round
 * (against that round's REPLICAOF, or that round's copy) and the median of the rounds reported,
 * with every round's figures alongside. redis-cli's two ways run once (they are the slow ones).
 *
 * The mover copies twice, into two targets: with its default strategy (`auto`, which takes the
 * RDB snapshot over PSYNC: `copyMs`, `ratio`, `ratioToRedisCli`, `copyPeakRssMB`, repeated as
 * `rdb*`) and with `strategy: 'scan'` (SCAN + DUMP/RESTORE: `scan*`). Each copy runs in a child
 * process (`copy` mode), and so does each verify (`verify` mode), so peak memory is the mover's own,
 * not the data generator's. Each round copies into emptied targets and syncs a new server. The
 * source is set to start a full sync at once (repl-diskless-sync-delay 0): Redis 7 otherwise waits
 * 5 s for more replicas, which would flatter the mover (the rdb strategy waits that delay too).
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
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
if (process.argv[2] === 'verify') {
  const [sourcePort, targetPort] = [Number(process.argv[3]), Number(process.argv[4])];
  const started = performance.now();
  const sourceSnapshot = (process.argv[5] ?? 'auto') as 'auto' | 'never';
  const report = await new RedisDataMover().verify({ host: '127.0.0.1', port: sourcePort }, { host: '127.0.0.1', port: targetPort }, { sourceSnapshot });
  console.log(JSON.stringify({ verifyMs: Math.round(performance.now() - started), ok: report.ok, notes: report.notes ?? [] }));
  process.exit(0);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};
const ratio = (value: number) => Number(value.toFixed(2));

const keys = Number(process.argv[2] ?? 300_000);
const rounds = Math.max(1, Number(process.argv[3] ?? 5));
const [source, copyTarget, scanTarget, cliTarget, pipeTarget] = await Promise.all([startRedisServer(), startRedisServer(), startRedisServer(), startRedisServer(), startRedisServer()]);
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

  const child = <T>(...args: string[]): T => {
    const output = execFileSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, ...args], { encoding: 'utf8' });
    return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as T;
  };
  const copyWith = (port: number, strategy: RedisCopyStrategy) => child<{ copyMs: number; items: number; strategy: string; peakRssMB: number }>('copy', String(source.port), String(port), strategy);
  const emptied = async (port: number) => {
    const admin = new Redis({ host: '127.0.0.1', port });
    await admin.flushall('SYNC');
    admin.disconnect();
  };
  const measured: Array<{ copy: ReturnType<typeof copyWith>; scan: ReturnType<typeof copyWith>; syncMs: number; verifyMs: number; verifyOk: boolean; verifyNotes: string[] }> = [];
  for (let round = 0; round < rounds; round++) {
    await emptied(copyTarget.port);
    const copy = copyWith(copyTarget.port, 'auto');
    const verified = child<{ verifyMs: number; ok: boolean; notes: string[] }>('verify', String(source.port), String(copyTarget.port));
    await emptied(scanTarget.port);
    const scan = copyWith(scanTarget.port, 'scan');
    // A new server each round: one that was a replica before could resume with a partial sync.
    const syncTarget = await startRedisServer();
    try {
      const started = performance.now();
      const replication = await RedisReplication.start({ host: source.host, port: source.port }, { host: syncTarget.host, port: syncTarget.port });
      const syncMs = performance.now() - started;
      replication.close();
      measured.push({ copy, scan, syncMs, verifyMs: verified.verifyMs, verifyOk: verified.ok, verifyNotes: verified.notes });
    } finally {
      await syncTarget.stop();
    }
  }
  const last = measured.at(-1) as (typeof measured)[number];
  const copy = { ...last.copy, copyMs: median(measured.map((round) => round.copy.copyMs)), peakRssMB: Math.max(...measured.map((round) => round.copy.peakRssMB)) };
  const scan = { ...last.scan, copyMs: median(measured.map((round) => round.scan.copyMs)), peakRssMB: Math.max(...measured.map((round) => round.scan.peakRssMB)) };
  const syncMs = median(measured.map((round) => round.syncMs));
  const verifyMs = median(measured.map((round) => round.verifyMs));
  const rdbRatio = ratio(median(measured.map((round) => round.copy.copyMs / round.syncMs)));
  const scanRatio = ratio(median(measured.map((round) => round.scan.copyMs / round.syncMs)));
  const verifyRatio = ratio(median(measured.map((round) => round.verifyMs / round.copy.copyMs)));
  // The live verify (both sides key by key: what a source that refuses PSYNC gets), once.
  const live = child<{ verifyMs: number; ok: boolean }>('verify', String(source.port), String(copyTarget.port), 'never');
  let started: number;

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

  // SCAN, then PTTL + DUMP of the batch in one pipeline, its RESTOREs written to redis-cli --pipe
  // (which sends them on without waiting): one batch read while the previous one is restored.
  started = performance.now();
  const reader = new Redis({ host: source.host, port: source.port });
  const piped = spawn('redis-cli', ['-h', pipeTarget.host, '-p', String(pipeTarget.port), '--pipe'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let pipeOutput = '';
  piped.stdout.on('data', (chunk: Buffer) => {
    pipeOutput += chunk.toString();
  });
  const bulk = (bytes: Buffer) => [Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')];
  let cursor = '0';
  do {
    const [next, batch] = await reader.scanBuffer(cursor, 'COUNT', 2000);
    cursor = String(next);
    const read = reader.pipeline();
    for (const key of batch) read.pttl(key).dumpBuffer(key);
    const replies = (await read.exec()) ?? [];
    const parts: Buffer[] = [];
    batch.forEach((key, index) => {
      const ttl = Number(replies[2 * index]?.[1]);
      const payload = replies[2 * index + 1]?.[1] as Buffer | null;
      if (!payload || ttl === -2) return;
      parts.push(Buffer.from('*5\r\n$7\r\nRESTORE\r\n'), ...bulk(key), ...bulk(Buffer.from(String(Math.max(ttl, 0)))), ...bulk(payload), Buffer.from('$7\r\nREPLACE\r\n'));
    });
    if (!piped.stdin.write(Buffer.concat(parts))) await once(piped.stdin, 'drain');
  } while (cursor !== '0');
  piped.stdin.end();
  await once(piped, 'exit');
  reader.disconnect();
  const pipeMs = performance.now() - started;
  if (!/errors: 0,/.test(pipeOutput)) throw new Error(`redis-cli --pipe failed: ${pipeOutput.trim()}`);

  // Each copy is checked by Redis's own digest too (independently of the verify).
  const digest = async (port: number) => {
    const digestClient = new Redis({ host: '127.0.0.1', port });
    try {
      return String(await digestClient.call('DEBUG', 'DIGEST'));
    } finally {
      digestClient.disconnect();
    }
  };
  const [sourceDigest, copyDigest, scanDigest, pipeDigest] = await Promise.all([digest(source.port), digest(copyTarget.port), digest(scanTarget.port), digest(pipeTarget.port)]);
  console.log(
    JSON.stringify({
      keys: total,
      copiedKeys: copy.items,
      copyStrategy: copy.strategy,
      copyMs: copy.copyMs,
      replicaofFullSyncMs: Math.round(syncMs),
      ratio: rdbRatio,
      redisCliMigrateMs: Math.round(cliMs),
      redisCliKeys: cliKeys,
      ratioToRedisCli: Number((copy.copyMs / cliMs).toFixed(2)),
      copyPeakRssMB: copy.peakRssMB,
      verifyMs: Math.round(verifyMs),
      verifyRatio,
      verifyLiveMs: live.verifyMs,
      verifyLiveRatio: ratio(live.verifyMs / copy.copyMs),
      verifyFromSnapshot: last.verifyNotes.some((note) => note.startsWith('the source was read from its RDB snapshot')),
      verified: measured.every((round) => round.verifyOk) && live.ok && copyDigest === sourceDigest,
      ...(copy.strategy === 'rdb' ? { rdbCopyMs: copy.copyMs, rdbRatio, rdbRatioToRedisCli: Number((copy.copyMs / cliMs).toFixed(2)), rdbPeakRssMB: copy.peakRssMB } : {}),
      scanCopyMs: scan.copyMs,
      scanCopiedKeys: scan.items,
      scanRatio,
      scanRatioToRedisCli: Number((scan.copyMs / cliMs).toFixed(2)),
      scanPeakRssMB: scan.peakRssMB,
      scanVerified: scanDigest === sourceDigest,
      redisCliPipeMs: Math.round(pipeMs),
      redisCliPipeVerified: pipeDigest === sourceDigest,
      scanRatioToRedisCliPipe: Number((scan.copyMs / pipeMs).toFixed(2)),
      redisCliPipeRatio: Number((pipeMs / syncMs).toFixed(2)),
      rounds: measured.map((round) => ({ rdbMs: round.copy.copyMs, scanMs: round.scan.copyMs, replicaofMs: Math.round(round.syncMs), verifyMs: round.verifyMs })),
    }),
  );
} finally {
  await Promise.all([source.stop(), copyTarget.stop(), scanTarget.stop(), cliTarget.stop(), pipeTarget.stop()]);
}
