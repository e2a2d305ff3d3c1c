/**
 * Whether the target can hold the copy, checked before anything is written, and a watch on the
 * target's evictions while the copy runs. A target with `maxmemory` and an evicting policy drops
 * keys to make room without an error to anyone: a copy into it reports every key while the target
 * keeps a part of them. So:
 *
 * - `checkCapacity` compares an estimate of the data set (read on the source) with the room the
 *   target has (`maxmemory` minus `used_memory`, less what the copy will replace), and refuses
 *   with the numbers when it does not fit. The rule:
 *   - `maxmemory` 0 (no limit): nothing to check (the machine's own memory is not looked at).
 *   - `noeviction`: refused when the estimate exceeds the room. A copy that runs out anyway fails
 *     loudly (the target answers OOM, and the copy names the key), so no margin is asked for.
 *   - any other policy (`allkeys-*`, `volatile-*`): refused unless the estimate plus a margin of
 *     25 % fits. The estimate is rough (allocator rounding, hash tables that double while they
 *     grow, encodings), and here running out is silent: the target evicts. `volatile-*` policies
 *     evict only keys with a TTL (and answer OOM when none is left), yet those are keys of the copy
 *     or of the target's other users all the same: the same rule.
 * - `watchEvictions` records the target's `evicted_keys` (INFO stats) when the copy starts;
 *   `check()` fails the copy as soon as it has grown, whatever the estimate said.
 */
import { ArmadaError, ValidationError } from '@armada/core';
import type { Redis } from 'ioredis';
import { keyspace } from './connection.js';

export interface CapacityOptions {
  /** The source databases the copy takes. */
  databases: number[];
  /** Whether target databases that hold data are emptied first (their memory then counts as free). */
  replaceExisting: boolean;
  /** Source database -> target database (default: the same index). */
  mapped?: (db: number) => number;
  /** A resumed copy: what the target holds in the copy's databases is this copy's own, replaced or kept as part of the data set. */
  resumed?: boolean;
}

export interface CapacityReport {
  /** The target's maxmemory in bytes, 0 for none. */
  maxmemory: number;
  policy: string;
  /** The target's used_memory. */
  used: number;
  /** The part of `used` the copy replaces (an estimate), not counted as used. */
  replaced: number;
  /** The estimated memory the data set takes, and how it was estimated. */
  dataset: number;
  estimate: string;
}

/** The share of the estimate asked to fit in addition, under a policy that evicts. */
export const EVICTING_MARGIN = 0.25;
/** Up to this many keys in the copied databases, MEMORY USAGE of each; beyond, of a sample. */
const MEASURE_ALL_KEYS = 100_000;
const SAMPLE_KEYS = 1_000;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const targetWhere = (client: Redis) => `${client.options.host}:${client.options.port}`;

/** `name:value` lines of an INFO section. */
function infoFields(info: string): Map<string, string> {
  return new Map([...info.matchAll(/^([a-z_0-9.]+):(.*?)\r?$/gm)].map((match) => [match[1] as string, match[2] as string]));
}

/** maxmemory and its policy: CONFIG GET, or INFO memory where CONFIG is refused (managed Redis). */
async function memoryLimits(target: Redis): Promise<{ maxmemory: number; policy: string; used: number; dataset: number }> {
  const memory = infoFields(await target.info('memory'));
  let maxmemory = Number(memory.get('maxmemory') ?? 0);
  let policy = memory.get('maxmemory_policy') ?? 'noeviction';
  try {
    const config = (await target.config('GET', 'maxmemory*')) as string[];
    const values = new Map<string, string>();
    for (let index = 0; index + 1 < config.length; index += 2) values.set(config[index] as string, config[index + 1] as string);
    if (values.has('maxmemory')) maxmemory = Number(values.get('maxmemory'));
    policy = values.get('maxmemory-policy') ?? policy;
  } catch {
    // CONFIG refused (renamed, or ACL): INFO memory has both since Redis 4.
  }
  return { maxmemory, policy, used: Number(memory.get('used_memory') ?? 0), dataset: Number(memory.get('used_memory_dataset') ?? 0) };
}

/** The keyspace's hash tables (MEMORY STATS), which used_memory_dataset leaves out, or 0 if refused. */
async function keyspaceTables(client: Redis, databases: Set<number>): Promise<number> {
  try {
    const stats = (await client.call('MEMORY', 'STATS')) as unknown[];
    let bytes = 0;
    for (let index = 0; index + 1 < stats.length; index += 2) {
      const match = /^db\.(\d+)$/.exec(String(stats[index]));
      if (!match || !databases.has(Number(match[1]))) continue;
      const fields = stats[index + 1] as unknown[];
      for (let field = 0; field + 1 < fields.length; field += 2) bytes += Number(fields[field + 1]) || 0;
    }
    return bytes;
  } catch {
    return 0;
  }
}

/** MEMORY USAGE of every key of the database selected on `client`, or of a random sample scaled up. */
async function measureDatabase(client: Redis, keys: number): Promise<number> {
  if (keys <= MEASURE_ALL_KEYS) {
    let total = 0;
    let cursor = '0';
    do {
      const [next, batch] = await client.scanBuffer(cursor, 'COUNT', 1000);
      cursor = String(next);
      const pipeline = client.pipeline();
      for (const key of batch) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '5');
      for (const [, size] of (batch.length > 0 ? await pipeline.exec() : []) ?? []) total += Number(size) || 0;
    } while (cursor !== '0');
    return total;
  }
  const pipeline = client.pipeline();
  for (let index = 0; index < SAMPLE_KEYS; index++) pipeline.randomkeyBuffer();
  const sampled = ((await pipeline.exec()) ?? []).map(([, key]) => key as Buffer | null).filter((key): key is Buffer => key !== null);
  if (sampled.length === 0) return 0;
  const sizes = client.pipeline();
  for (const key of sampled) sizes.call('MEMORY', 'USAGE', key, 'SAMPLES', '5');
  const total = ((await sizes.exec()) ?? []).reduce((sum, [, size]) => sum + (Number(size) || 0), 0);
  return (total / sampled.length) * keys;
}

/** How much memory the copied databases take on the source, and how that was estimated. */
async function datasetSize(source: Redis, databases: number[]): Promise<{ bytes: number; estimate: string }> {
  const present = await keyspace(source);
  const wanted = new Set(databases);
  const tables = await keyspaceTables(source, wanted);
  if ([...present.keys()].every((db) => wanted.has(db))) {
    // Every database that holds keys: the server's own count, cheap and close.
    const dataset = Number(infoFields(await source.info('memory')).get('used_memory_dataset') ?? 0);
    return { bytes: dataset + tables, estimate: "the source's INFO memory used_memory_dataset plus its keyspace hash tables" };
  }
  // Some databases only: MEMORY USAGE of their keys (of a sample, past 100,000 keys in a database).
  let bytes = tables;
  let sampled = false;
  for (const db of databases) {
    const keys = present.get(db) ?? 0;
    if (keys === 0) continue;
    await source.select(db);
    bytes += await measureDatabase(source, keys);
    sampled ||= keys > MEASURE_ALL_KEYS;
  }
  return { bytes, estimate: sampled ? `MEMORY USAGE of a sample of ${SAMPLE_KEYS} keys per database on the source, scaled to the key counts` : 'the sum of MEMORY USAGE of the keys on the source' };
}

/**
 * Refuses (ValidationError, with the numbers) a copy the target cannot hold, or could hold only
 * by evicting keys; see the rule at the top. Reads only; runs before anything is written.
 */
export async function checkCapacity(source: Redis, target: Redis, options: CapacityOptions): Promise<CapacityReport> {
  const limits = await memoryLimits(target);
  const { maxmemory, policy, used } = limits;
  const report: CapacityReport = { maxmemory, policy, used, replaced: 0, dataset: 0, estimate: 'not estimated: the target has no maxmemory' };
  if (maxmemory === 0) return report;
  const { bytes, estimate } = await datasetSize(source, options.databases);
  report.dataset = bytes;
  report.estimate = estimate;
  // What the target holds in the databases the copy replaces is freed (or is part of the data set
  // already): their share of the target's used_memory_dataset, by key count.
  const mapped = options.mapped ?? ((db: number) => db);
  if (options.replaceExisting || options.resumed) {
    const held = await keyspace(target);
    const total = [...held.values()].reduce((sum, keys) => sum + keys, 0);
    const replacedKeys = new Set(options.databases.map(mapped));
    const replaced = [...held].filter(([db]) => replacedKeys.has(db)).reduce((sum, [, keys]) => sum + keys, 0);
    if (total > 0) report.replaced = Math.round((limits.dataset * replaced) / total);
  }
  const room = maxmemory - (used - report.replaced);
  const evicts = policy !== 'noeviction';
  const needed = evicts ? bytes * (1 + EVICTING_MARGIN) : bytes;
  if (needed <= room) return report;
  const where = targetWhere(target);
  const numbers = `the data set is about ${mib(bytes)} (${estimate}); the target has ${mib(maxmemory)} maxmemory with ${mib(used)} used${report.replaced > 0 ? ` (about ${mib(report.replaced)} of it in databases the copy replaces)` : ''}`;
  const why = !evicts
    ? 'it would run out of memory part way (maxmemory-policy noeviction: the copy would fail on an OOM reply)'
    : bytes <= room
      ? `it fits only within the ${EVICTING_MARGIN * 100} % margin asked for under maxmemory-policy ${policy}, which would evict keys silently if the estimate is short`
      : `its maxmemory-policy ${policy} would evict ${policy.startsWith('volatile-') ? 'keys with a TTL' : 'keys'} to make room, and each evicted key is lost from the copy without an error`;
  throw new ValidationError(`The target Redis at ${where} cannot hold this copy: ${numbers}; ${why}.`, {
    issues: [
      {
        path: 'target.maxmemory',
        message: `${mib(maxmemory)} maxmemory, ${mib(used)} used, policy ${policy}; the data set needs about ${mib(bytes)}${evicts ? ` (plus ${EVICTING_MARGIN * 100} %)` : ''}`,
        fix: `raise the target's maxmemory to at least ${mib(used - report.replaced + needed)}, free memory on it, or copy fewer databases`,
      },
    ],
  });
}

async function evictedKeys(target: Redis): Promise<number> {
  return Number(infoFields(await target.info('stats')).get('evicted_keys') ?? 0);
}

/**
 * Watches the target's `evicted_keys` from now on: `check()` throws an ArmadaError as soon as it
 * has grown. The counter is server-wide: an eviction in any database fails the copy, since a
 * target evicting anything is one that may evict the copy's keys next. (CONFIG RESETSTAT sets it
 * back to 0: then the lower value is the new baseline.)
 */
export async function watchEvictions(target: Redis): Promise<{ check(): Promise<void> }> {
  let baseline = await evictedKeys(target);
  return {
    async check() {
      const now = await evictedKeys(target);
      if (now < baseline) baseline = now;
      if (now === baseline) return;
      const { maxmemory, policy, used } = await memoryLimits(target);
      const count = now - baseline;
      throw new ArmadaError(
        'Unknown',
        `The target Redis at ${targetWhere(target)} evicted ${count.toLocaleString('en-US')} key${count === 1 ? '' : 's'} during the copy: it reached its maxmemory (${mib(maxmemory)}, ${mib(used)} used) and its maxmemory-policy ${policy} dropped keys to make room, so the target does not hold the whole data set. Give the target more maxmemory (or set maxmemory-policy noeviction, to fail on the first key that does not fit) and copy again with replaceExisting.`,
      );
    },
  };
}
