/**
 * Verify: every live key of the source compared with the target, by type, value, TTL and (streams)
 * consumer groups; keys only on the target; databases only on the target; FUNCTION libraries.
 * Every difference is listed by object (`db 0 key "user:1"`, `db 5`, `function library mylib`).
 *
 * How, per database (the source's index, mapped by `databaseMap` to the target's):
 *
 * - From the source's snapshot (`sourceSnapshot`, `verify-snapshot.ts`): the source is read from
 *   its own RDB over PSYNC and only the target key by key; what does not match the snapshot is
 *   compared live the exact way below, and the target's keys the snapshot had not are found as
 *   below too. Taken by default for large sources that serve PSYNC without a long sync delay.
 * - Fastest path (both sides have PEXPIRETIME): each batch is sent as the same bytes to both
 *   servers over plain sockets, and their replies (each key's expiry and first 4 KiB) compared
 *   byte for byte (`verify-wire.ts`): that settles the short strings, most keys. Keys whose
 *   replies differ are then compared the exact way below, which names each difference; other
 *   types and long strings by the batch digest (next). Why: per-key calls inside a Lua script
 *   cost the servers several times what the same reads cost as plain commands (and DEBUG
 *   DIGEST-VALUE, SHA-1 per element, more still).
 * - Fast path (both sides run scripts and have PEXPIRETIME): each batch is first digested whole
 *   on each server by one script (`verify-script.ts`: types, expiries to within the tolerance,
 *   strings and small collections), which answers a 40-byte SHA-1 instead of thousands of
 *   elements. Equal digests prove the batch equal; its few keys the script leaves out (long
 *   strings, large collections, streams) are then compared as below. Unequal digests send the
 *   whole batch the exact way below, which names each differing key. Why: decoding thousands of
 *   per-key replies per batch (and the GC after) was most of this process's time; the script's
 *   own per-key calls remain the servers' cost.
 * - The source is SCANned in batches. For each batch both servers are read at once, each in one
 *   round trip: a Lua script returns the server's clock and each key's TYPE and absolute expiry
 *   (PEXPIRETIME; before Redis 7, TIME + PTTL), and `DEBUG DIGEST-VALUE k1 k2 ...` the value
 *   digests (encoding-independent, order-independent for hashes, sets and sorted sets). The next
 *   SCAN is already on its way, and a few batches are in flight at once, so neither server waits
 *   for the other or for this process.
 * - Without DEBUG (a managed Redis refuses it), values are digested here instead, the same way on
 *   both sides: strings hashed on the server by Lua's `redis.sha1hex` (or read with GET when
 *   scripts are refused), small collections read whole in one pipeline, large ones in pages
 *   (HSCAN, SSCAN, ZSCAN, LRANGE, XRANGE); hashes, sets and sorted sets as the XOR of their
 *   elements' hashes, since two servers holding the same data return them in different orders.
 * - Streams also by `XINFO STREAM key FULL` (their PELs paged by XPENDING when longer): length,
 *   last-generated-id, max-deleted-entry-id, entries-added, recorded-first-entry-id, and each
 *   consumer group's last-delivered-id, entries-read, pending entries (id, consumer, delivery
 *   count) and consumers with their pending counts. Idle, seen and delivery times are not
 *   compared: they are clocks, not data.
 * - Keys only on the target: the keys SCAN returned on the source are remembered; when the
 *   target's DBSIZE is larger than the number of them it holds, the target is SCANned too and
 *   every key the source did not return is compared (so it is `extra` unless the source has it).
 *
 * Expiry: a key whose TTL has passed is absent, whatever INFO keyspace still counts (SCAN and
 * TYPE never return it). A key present on one side only whose expiry is within the tolerance of
 * that side's clock is expiring during verify: skipped on both sides and counted in a note.
 *
 * Databases only on the target (when the source endpoint lists no databases, so that everything
 * is in scope): each that holds live keys is one `extra` difference, `db N`.
 *
 * Nothing compared is never ok: a source and a target that both hold nothing is an error.
 */
import { createHash } from 'node:crypto';
import { ArmadaError, CancelledError, ValidationError, type DataEndpoint, type VerifyDifference, type VerifyReport } from '@armada/core';
import type { Redis } from 'ioredis';
import { keyspace, open } from './connection.js';
import { compareFunctions, listFunctions } from './functions.js';
import { KeyHashSet } from './key-set.js';
import { PsyncRefusedError } from './psync.js';
import { RdbUnsupportedError } from './rdb.js';
import { compareWithSnapshot, type SnapshotComparison, type SnapshotDatabase } from './verify-snapshot.js';
import { BATCH_DIGEST_SCRIPT, packKeys } from './verify-script.js';
import { batchCommands, COLLECTION_READS, Commands, compareKey, complete, same, status, TYPE, WireConnection } from './verify-wire.js';

export interface RedisVerifyOptions {
  /** Compare up to this many random keys per database (RANDOMKEY) instead of every key; said so in the notes. */
  sample?: number;
  signal?: AbortSignal;
  /** Source database index → target database index, as given to the copy. */
  databaseMap?: Record<number, number>;
  /**
   * How far two absolute expiry times may differ (default 2000 ms): a scan copy sets relative
   * TTLs a little after reading them, and two servers' clocks differ a little.
   */
  ttlToleranceMs?: number;
  /** Stop listing differences after this many (default 100); the rest are counted in a note. */
  maxDifferences?: number;
  /** Keys per SCAN batch (default 1000). */
  batchSize?: number;
  /**
   * Whether the source is read from its own RDB snapshot (PSYNC, as the rdb copy does) while the
   * target is read key by key, instead of both sides key by key. `auto` (default): when the
   * source serves a snapshot, holds 50,000 keys or more, and its repl-diskless-sync-delay (a
   * diskless snapshot waits it out first) costs less than the reads saved. `always`: an error
   * when the source refuses PSYNC; `never`: always live. Keys that do not match the snapshot are
   * compared live on both sides, so a key written since is not reported from the snapshot.
   */
  sourceSnapshot?: 'auto' | 'always' | 'never';
}

/** Batches read at once per side: enough that neither server waits on a round trip. */
const IN_FLIGHT = 4;
/** With the wire path: its batches take up to three round trips each, so more are under way. */
const WIRE_IN_FLIGHT = 12;
/** Values the snapshot path buffers; larger ones are compared live (the bigKeyBytes of the copy). */
const SNAPSHOT_MAX_VALUE = 8 * 1024 * 1024;
/** PEL entries XINFO STREAM FULL returns per group; a longer PEL is paged with XPENDING. */
const STREAM_COUNT = 100;
/** Collections up to this many elements are read whole in the batch's pipeline (client digests only). */
const SMALL_COLLECTION = 1000;
/** Strings up to this size are read with GET in the batch's pipeline (client digests without Lua). */
const SMALL_STRING = 1 << 20;
/** A key name that is never written: the capability probes read it. */
const PROBE_KEY = '__armada_verify_probe__';
const ZERO_DIGEST = '0'.repeat(40);
/** Strings shorter than this come whole with their metadata, and are compared as they are. */
const PREFIX = 4096;
/**
 * DEBUG DIGEST-VALUE XORs SHA-1("!!expire!!") into the digest of a key that has a TTL: XORed out
 * again, so that a TTL removed shows as a TTL difference only, not as a value difference too.
 */
const EXPIRE_MARK = createHash('sha1').update('!!expire!!').digest();

function withoutExpireMark(digest: string): string {
  const bytes = Buffer.from(digest, 'hex');
  for (let index = 0; index < EXPIRE_MARK.length; index++) bytes[index] = (bytes[index] as number) ^ (EXPIRE_MARK[index] as number);
  return bytes.toString('hex');
}

/** What a side can do; probed once, since a managed Redis refuses DEBUG and some refuse scripts. */
interface Capabilities {
  debug: boolean;
  lua: boolean;
  /** PEXPIRETIME (Redis 7); otherwise TIME + PTTL. */
  expireTime: boolean;
  /** The batch digest script runs (scripts allowed, its `struct` library there, PEXPIRETIME). */
  batchDigest: boolean;
}

interface Side {
  client: Redis;
  role: 'source' | 'target';
  capabilities: Capabilities;
}

/** One key on one side. `expireAt`: absolute ms, -1 without a TTL; `type` 'none' when absent. */
interface KeyState {
  type: string;
  expireAt: number;
  /** Elements (or bytes, for strings); only read for client-side digests. */
  length: number;
  /** A string's first PREFIX bytes, when read with the metadata. */
  prefix?: Buffer;
  digest?: string;
}

interface BatchRead {
  /** The server's clock when it read the batch, in ms. */
  now: number;
  keys: KeyState[];
}

/** How values are digested: the same way on both sides, or they could never agree. */
interface DigestMode {
  debug: boolean;
  /** Both sides run scripts: short strings come whole with the metadata, long ones are hashed on the server by Lua (without DEBUG). */
  luaStrings: boolean;
}

const LENGTH_COMMANDS = "local lengths = { string = 'STRLEN', hash = 'HLEN', list = 'LLEN', set = 'SCARD', zset = 'ZCARD', stream = 'XLEN' }\n";

/**
 * The batch's metadata in one script: the clock, then per key TYPE, the expiry, and a third
 * value: a string's first PREFIX bytes (its whole value when shorter: most strings are compared
 * right there, with no digest at all), or (for client digests) a collection's length. Lua numbers
 * become integer replies, and ms since 1970 fit a double exactly.
 */
function metaScript(expireTime: boolean, lengths: boolean): string {
  return [
    lengths ? LENGTH_COMMANDS : '',
    "local now = redis.call('TIME')",
    'local out = { tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) }',
    'for i = 1, #KEYS do',
    "  local kind = redis.call('TYPE', KEYS[i])['ok']",
    '  out[#out + 1] = kind',
    `  out[#out + 1] = redis.call('${expireTime ? 'PEXPIRETIME' : 'PTTL'}', KEYS[i])`,
    `  if kind == 'string' then out[#out + 1] = redis.call('GETRANGE', KEYS[i], 0, ${PREFIX - 1})`,
    lengths ? '  elseif lengths[kind] then out[#out + 1] = redis.call(lengths[kind], KEYS[i])' : '',
    '  else out[#out + 1] = 0 end',
    'end',
    'return out',
  ].join('\n');
}

/** SHA-1 of each string key's value, computed on the server: big values never cross the network. */
const STRING_DIGEST_SCRIPT = [
  'local out = {}',
  'for i = 1, #KEYS do',
  "  local value = redis.call('GET', KEYS[i])",
  "  out[i] = value and redis.sha1hex(value) or ''",
  'end',
  'return out',
].join('\n');

async function probe(client: Redis): Promise<Capabilities> {
  const works = (promise: Promise<unknown>) =>
    promise.then(
      () => true,
      () => false,
    );
  const [debug, expireTime] = await Promise.all([works(client.call('DEBUG', 'DIGEST-VALUE', PROBE_KEY)), works(client.call('PEXPIRETIME', PROBE_KEY))]);
  const lua = await works(client.eval(metaScript(expireTime, true), 1, PROBE_KEY));
  const batchDigest = lua && expireTime && (await works(client.call('EVAL', BATCH_DIGEST_SCRIPT, '0', packKeys([Buffer.from(PROBE_KEY)]), '1')));
  return { debug, lua, expireTime, batchDigest };
}

/** Replies of a pipeline, the first error reply thrown (naming the side). */
async function execute(side: Side, pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([error, value]) => {
    if (error) throw new ArmadaError('Unknown', `Redis verify: the ${side.role} answered ${error.message}`, { cause: error });
    return value;
  });
}

/**
 * Metadata and digests of a batch of keys: with scripts, one round trip for the metadata (and the
 * short strings' values), a second only for the keys that need a digest; without scripts, TYPE and
 * the expiry of each key in one pipeline (with the DEBUG digests, when allowed).
 */
async function readBatch(side: Side, keys: Buffer[], mode: DigestMode): Promise<BatchRead> {
  const lengths = !mode.debug;
  const { expireTime, lua } = side.capabilities;
  const pipeline = side.client.pipeline();
  if (lua) pipeline.callBuffer('EVAL', metaScript(expireTime, lengths), keys.length, ...keys);
  else {
    pipeline.time();
    for (const key of keys) {
      pipeline.type(key);
      if (expireTime) pipeline.pexpiretime(key);
      else pipeline.pttl(key);
    }
    if (mode.debug) pipeline.call('DEBUG', 'DIGEST-VALUE', ...keys);
  }
  const replies = await execute(side, pipeline);
  let now: number;
  const states: KeyState[] = [];
  if (lua) {
    const meta = replies[0] as Array<Buffer | number>;
    now = Number(meta[0]);
    for (let index = 0; index < keys.length; index++) {
      const at = 1 + index * 3;
      const type = String(meta[at]);
      const third = meta[at + 2];
      states.push({ type, expireAt: Number(meta[at + 1]), length: typeof third === 'number' ? third : 0, ...(type === 'string' ? { prefix: third as Buffer } : {}) });
    }
  } else {
    const [seconds, micros] = replies[0] as [string, string];
    now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    for (let index = 0; index < keys.length; index++) states.push({ type: String(replies[1 + index * 2]), expireAt: Number(replies[2 + index * 2]), length: 0 });
  }
  for (const state of states) {
    if (state.type === 'none') state.expireAt = -2;
    // PTTL is relative: made absolute on the same server's clock.
    else if (!expireTime && state.expireAt >= 0) state.expireAt += now;
    // A string read whole: its value is its digest (when both sides read them so, else DEBUG's digests would meet values).
    if (mode.luaStrings && state.prefix && state.prefix.length < PREFIX) state.digest = `value:${state.prefix.toString('latin1')}`;
  }
  if (mode.debug) {
    const digested = lua ? states.flatMap((state, index) => (state.type !== 'none' && state.digest === undefined ? [index] : [])) : states.map((_, index) => index);
    if (digested.length === 0) return { now, keys: states };
    const digests = lua ? ((await side.client.call('DEBUG', 'DIGEST-VALUE', ...digested.map((index) => keys[index] as Buffer))) as string[]) : (replies.at(-1) as string[]);
    for (const [at, index] of digested.entries()) {
      const state = states[index] as KeyState;
      const digest = String(digests[at]);
      if (state.type === 'none') continue;
      // All zeros: the key went (expired, deleted) between TYPE and the digest.
      if (digest === ZERO_DIGEST) Object.assign(state, { type: 'none', expireAt: -2 });
      else state.digest = state.expireAt >= 0 ? withoutExpireMark(digest) : digest;
    }
  } else {
    if (!lua) await readLengths(side, keys, states);
    await clientDigests(side, keys, states, mode);
  }
  return { now, keys: states };
}

/** Lengths when scripts are refused: a second pipeline, once the types are known. */
async function readLengths(side: Side, keys: Buffer[], states: KeyState[]): Promise<void> {
  const pipeline = side.client.pipeline();
  const asked: number[] = [];
  states.forEach((state, index) => {
    const key = keys[index] as Buffer;
    const command = { string: 'STRLEN', hash: 'HLEN', list: 'LLEN', set: 'SCARD', zset: 'ZCARD', stream: 'XLEN' }[state.type];
    if (!command) return;
    pipeline.call(command, key);
    asked.push(index);
  });
  if (asked.length === 0) return;
  // A key deleted between the two pipelines answers 0 (or WRONGTYPE if replaced): then it is read as it is.
  const replies = (await pipeline.exec()) ?? [];
  asked.forEach((index, at) => {
    (states[index] as KeyState).length = Number(replies[at]?.[1] ?? 0);
  });
}

/** Hashes of framed parts: each part's length first, so that ["ab", "c"] and ["a", "bc"] differ. */
class OrderedDigest {
  private readonly hash = createHash('sha256');
  add(...parts: Array<Buffer | string>): void {
    for (const part of parts) {
      const bytes = typeof part === 'string' ? Buffer.from(part) : part;
      this.hash.update(`${bytes.length}:`).update(bytes);
    }
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** XOR of each element's hash: the same whatever order the elements come in. Elements must be distinct. */
class UnorderedDigest {
  private readonly sum = Buffer.alloc(32);
  count = 0;
  add(...parts: Array<Buffer | string>): void {
    const element = new OrderedDigest();
    element.add(...parts);
    const digest = Buffer.from(element.digest(), 'hex');
    for (let index = 0; index < 32; index++) this.sum[index] = (this.sum[index] as number) ^ (digest[index] as number);
    this.count++;
  }
  digest(): string {
    return `${this.count}:${this.sum.toString('hex')}`;
  }
}

/** A score as Redis means it: listpack and skiplist sorted sets print the same double differently. */
function score(text: Buffer | string): string {
  const value = text.toString().toLowerCase();
  if (value === 'inf' || value === '+inf') return 'inf';
  if (value === '-inf') return '-inf';
  return String(Number(value));
}

/** Digests of values read by this process, the same on both sides (see the module comment). */
async function clientDigests(side: Side, keys: Buffer[], states: KeyState[], mode: DigestMode): Promise<void> {
  const { client } = side;
  const pipeline = client.pipeline();
  const reads: Array<{ index: number; how: string }> = [];
  const large: number[] = [];
  const strings: number[] = [];
  for (const [index, state] of states.entries()) {
    const key = keys[index] as Buffer;
    if (state.type === 'none' || state.digest !== undefined) continue;
    if (state.type === 'string') {
      // Read whole with the metadata already (when the other side has no scripts).
      if (state.prefix && state.prefix.length < PREFIX) state.digest = digestOfValue('string', state.prefix);
      else if (mode.luaStrings) strings.push(index);
      else if (state.prefix === undefined && state.length <= SMALL_STRING) {
        pipeline.getBuffer(key);
        reads.push({ index, how: 'string' });
      } else large.push(index);
      continue;
    }
    if (state.length > SMALL_COLLECTION) {
      large.push(index);
      continue;
    }
    // HGETALL by name in capitals: ioredis then leaves the reply a flat array of buffers, not an object keyed by text (binary fields would collide).
    if (state.type === 'hash') pipeline.callBuffer('HGETALL', key);
    else if (state.type === 'set') pipeline.smembersBuffer(key);
    else if (state.type === 'zset') pipeline.zrangeBuffer(key, '0', '-1', 'WITHSCORES');
    else if (state.type === 'list') pipeline.lrangeBuffer(key, 0, -1);
    else if (state.type === 'stream') pipeline.xrangeBuffer(key, '-', '+');
    // Module types and anything newer: their serialized value, without the RDB version and CRC trailer.
    else pipeline.dumpBuffer(key);
    reads.push({ index, how: state.type });
  }
  if (strings.length > 0) pipeline.eval(STRING_DIGEST_SCRIPT, strings.length, ...strings.map((index) => keys[index] as Buffer));
  const replies = reads.length + strings.length > 0 ? ((await pipeline.exec()) ?? []) : [];
  for (const [at, { index, how }] of reads.entries()) {
    const state = states[index] as KeyState;
    const [error, value] = replies[at] ?? [null, null];
    // WRONGTYPE or nil: the key changed since its TYPE was read; a digest that matches nothing.
    state.digest = error || value === null ? `changed: ${error?.message ?? 'gone'}` : digestOfValue(how, value);
  }
  if (strings.length > 0) {
    const [error, value] = replies[reads.length] ?? [null, null];
    if (error) throw new ArmadaError('Unknown', `Redis verify: the ${side.role} answered ${error.message}`, { cause: error });
    strings.forEach((index, at) => {
      (states[index] as KeyState).digest = `sha1:${String((value as string[])[at])}`;
    });
  }
  for (const index of large) (states[index] as KeyState).digest = await digestInPieces(client, keys[index] as Buffer, (states[index] as KeyState).type);
}

function digestOfValue(type: string, value: unknown): string {
  // Short strings as the metadata script returns them, so that a side without scripts agrees with one with.
  if (type === 'string') return (value as Buffer).length < PREFIX ? `value:${(value as Buffer).toString('latin1')}` : createHash('sha256').update(value as Buffer).digest('hex');
  if (type === 'hash' || type === 'set' || type === 'zset') {
    const digest = new UnorderedDigest();
    const items = value as Buffer[];
    if (type === 'set') for (const member of items) digest.add(member);
    else for (let index = 0; index < items.length; index += 2) digest.add(items[index] as Buffer, type === 'zset' ? score(items[index + 1] as Buffer) : (items[index + 1] as Buffer));
    return digest.digest();
  }
  const digest = new OrderedDigest();
  if (type === 'list') for (const item of value as Buffer[]) digest.add(item);
  else if (type === 'stream') for (const [id, fields] of value as Array<[Buffer, Buffer[]]>) digest.add(id, String(fields.length), ...fields);
  else digest.add((value as Buffer).subarray(0, Math.max(0, (value as Buffer).length - 10)));
  return digest.digest();
}

/** A large value's digest, read page by page so memory stays bounded; the same digest as digestOfValue. */
async function digestInPieces(client: Redis, key: Buffer, type: string): Promise<string> {
  const page = 1000;
  if (type === 'string') {
    const hash = createHash('sha256');
    for (let start = 0; ; start += SMALL_STRING) {
      const part = await client.getrangeBuffer(key, start, start + SMALL_STRING - 1);
      // A short value (it changed since its length was read): in the form digestOfValue gives it.
      if (start === 0 && part.length < PREFIX) return digestOfValue('string', part);
      hash.update(part);
      if (part.length < SMALL_STRING) break;
    }
    return hash.digest('hex');
  }
  if (type === 'list') {
    const digest = new OrderedDigest();
    for (let start = 0; ; start += page) {
      const items = await client.lrangeBuffer(key, start, start + page - 1);
      for (const item of items) digest.add(item);
      if (items.length < page) break;
    }
    return digest.digest();
  }
  if (type === 'stream') {
    const digest = new OrderedDigest();
    let start = '-';
    for (;;) {
      const entries = (await client.xrangeBuffer(key, start, '+', 'COUNT', page)) as Array<[Buffer, Buffer[]]>;
      for (const [id, fields] of entries) digest.add(id, String(fields.length), ...fields);
      if (entries.length < page) break;
      start = `(${(entries.at(-1) as [Buffer, Buffer[]])[0].toString()}`;
    }
    return digest.digest();
  }
  const digest = new UnorderedDigest();
  // *SCAN may return an element twice: each counted once (XOR would cancel a repeat).
  const seen = new Set<string>();
  let cursor = '0';
  do {
    const [next, items] =
      type === 'hash'
        ? await client.hscanBuffer(key, cursor, 'COUNT', page)
        : type === 'set'
          ? await client.sscanBuffer(key, cursor, 'COUNT', page)
          : await client.zscanBuffer(key, cursor, 'COUNT', page);
    cursor = String(next);
    const step = type === 'set' ? 1 : 2;
    for (let index = 0; index < items.length; index += step) {
      const element = items[index] as Buffer;
      const id = element.toString('latin1');
      if (seen.has(id)) continue;
      seen.add(id);
      if (type === 'set') digest.add(element);
      else if (type === 'zset') digest.add(element, score(items[index + 1] as Buffer));
      else digest.add(element, items[index + 1] as Buffer);
    }
  } while (cursor !== '0');
  return digest.digest();
}

/** What a stream holds besides its entries, normalized for comparing. */
interface StreamState {
  fields: Map<string, string>;
  groups: Map<string, { fields: Map<string, string>; pending: string[]; consumers: Map<string, number> }>;
}

const STREAM_FIELDS = ['length', 'last-generated-id', 'max-deleted-entry-id', 'entries-added', 'recorded-first-entry-id'];
const GROUP_FIELDS = ['last-delivered-id', 'entries-read'];

/** A RESP2 map (field, value, field, value, ...) as a Map. */
function pairs(reply: unknown): Map<string, unknown> {
  const items = reply as unknown[];
  const map = new Map<string, unknown>();
  for (let index = 0; index + 1 < items.length; index += 2) map.set(String(items[index]), items[index + 1]);
  return map;
}

async function streamState(client: Redis, key: Buffer): Promise<StreamState> {
  const info = pairs(await client.call('XINFO', 'STREAM', key, 'FULL', 'COUNT', String(STREAM_COUNT)));
  const fields = new Map<string, string>();
  for (const field of STREAM_FIELDS) if (info.has(field)) fields.set(field, String(info.get(field)));
  const groups: StreamState['groups'] = new Map();
  for (const raw of (info.get('groups') as unknown[] | null) ?? []) {
    const group = pairs(raw);
    const name = String(group.get('name'));
    const groupFields = new Map<string, string>();
    for (const field of GROUP_FIELDS) if (group.has(field)) groupFields.set(field, String(group.get(field)));
    // Each pending entry: id, consumer, delivery count (its delivery time is a clock, not compared).
    let pending = ((group.get('pending') as unknown[][] | null) ?? []).map((entry) => `${entry[0]} ${entry[1]} ${entry[3]}`);
    if (Number(group.get('pel-count')) > pending.length) pending = await pagedPending(client, key, name);
    const consumers = new Map<string, number>();
    for (const consumer of (group.get('consumers') as unknown[] | null) ?? []) {
      const entry = pairs(consumer);
      consumers.set(String(entry.get('name')), Number(entry.get('pel-count')));
    }
    groups.set(name, { fields: groupFields, pending, consumers });
  }
  return { fields, groups };
}

/** A group's whole PEL, 1,000 entries per XPENDING: id, consumer, delivery count. */
async function pagedPending(client: Redis, key: Buffer, group: string): Promise<string[]> {
  const pending: string[] = [];
  let start = '-';
  for (;;) {
    const entries = (await client.call('XPENDING', key, group, start, '+', '1000')) as Array<[string, string, number, number]>;
    for (const [id, consumer, , count] of entries) pending.push(`${id} ${consumer} ${count}`);
    if (entries.length < 1000) return pending;
    start = `(${(entries.at(-1) as [string, string, number, number])[0]}`;
  }
}

function streamDifferences(source: StreamState, target: StreamState): string[] {
  const found: string[] = [];
  for (const field of STREAM_FIELDS) {
    const [left, right] = [source.fields.get(field), target.fields.get(field)];
    if (left !== right) found.push(`${field} ${left ?? 'absent'} on the source, ${right ?? 'absent'} on the target`);
  }
  for (const name of [...new Set([...source.groups.keys(), ...target.groups.keys()])].sort()) {
    const [left, right] = [source.groups.get(name), target.groups.get(name)];
    const label = `consumer group ${JSON.stringify(name)}`;
    if (!right) {
      found.push(`${label} missing on the target`);
      continue;
    }
    if (!left) {
      found.push(`${label} only on the target`);
      continue;
    }
    for (const field of GROUP_FIELDS) {
      const [a, b] = [left.fields.get(field), right.fields.get(field)];
      if (a !== b) found.push(`${label}: ${field} ${a ?? 'absent'} on the source, ${b ?? 'absent'} on the target`);
    }
    const at = left.pending.findIndex((entry, index) => entry !== right.pending[index]);
    if (at >= 0 || left.pending.length !== right.pending.length) {
      const where = at >= 0 ? at : left.pending.length;
      found.push(
        `${label}: pending entries differ (${left.pending.length} on the source, ${right.pending.length} on the target; first at ${JSON.stringify(left.pending[where] ?? null)} on the source, ${JSON.stringify(right.pending[where] ?? null)} on the target)`,
      );
    }
    for (const consumer of [...new Set([...left.consumers.keys(), ...right.consumers.keys()])].sort()) {
      const [a, b] = [left.consumers.get(consumer), right.consumers.get(consumer)];
      const who = `${label}: consumer ${JSON.stringify(consumer)}`;
      if (b === undefined) found.push(`${who} missing on the target`);
      else if (a === undefined) found.push(`${who} only on the target`);
      else if (a !== b) found.push(`${who}: ${a} pending on the source, ${b} on the target`);
    }
  }
  return found;
}

/** A difference, and where it sorts: databases by index (libraries after them), then by object. */
interface Found {
  order: number;
  difference: VerifyDifference;
}

/** State shared by the comparison of one verify. */
interface Context {
  source: Side;
  target: Side;
  mode: DigestMode;
  tolerance: number;
  signal: AbortSignal | undefined;
  batchSize: number;
  /** Both sides run the batch digest script: batches are compared by digest first. */
  batchDigest: boolean;
  /** Both sides have PEXPIRETIME: batches are compared by their reply bytes first. */
  wire: { source: WireConnection; target: WireConnection } | undefined;
  findings: Found[];
  compared: number;
  /** Keys present on one side only, expiring within the tolerance: not compared. */
  expiring: number;
}

const keyObject = (db: number, key: Buffer) => `db ${db} key ${JSON.stringify(key.toString())}`;

function describeExpiry(state: KeyState, now: number): string {
  return state.expireAt < 0 ? 'no TTL' : `TTL ${state.expireAt - now} ms`;
}

/** Present on one side only, but its expiry is (nearly) here: the other side has expired it already. */
const expiringSoon = (state: KeyState, now: number, tolerance: number) => state.expireAt >= 0 && state.expireAt - now <= tolerance;

/**
 * One batch of keys, read on both sides at once and compared. Returns how many of them the target
 * holds (for the DBSIZE check that says whether the target has keys the source has not).
 */
async function compareBatch(context: Context, db: number, keys: Buffer[]): Promise<number> {
  if (keys.length === 0) return 0;
  if (context.signal?.aborted) throw new CancelledError('Redis verify cancelled.');
  const [left, right] = await Promise.all([readBatch(context.source, keys, context.mode), readBatch(context.target, keys, context.mode)]);
  let onTarget = 0;
  const streams: number[] = [];
  const found = (key: Buffer, kind: VerifyDifference['kind'], detail: string) => context.findings.push({ order: db, difference: { object: keyObject(db, key), kind, detail } });
  for (const [index, key] of keys.entries()) {
    const a = left.keys[index] as KeyState;
    const b = right.keys[index] as KeyState;
    if (b.type !== 'none') onTarget++;
    if (a.type === 'none' && b.type === 'none') continue;
    if (a.type === 'none' || b.type === 'none') {
      const [present, now] = a.type === 'none' ? [b, right.now] : [a, left.now];
      if (expiringSoon(present, now, context.tolerance)) {
        context.expiring++;
        continue;
      }
      context.compared++;
      if (a.type === 'none') found(key, 'extra', `${b.type} on the target only, not on the source`);
      else found(key, 'missing', `${a.type} not on the target`);
      continue;
    }
    context.compared++;
    const details: string[] = [];
    if (a.type !== b.type) details.push(`${a.type} on the source, ${b.type} on the target`);
    else if (a.digest !== b.digest) details.push('values differ');
    // Absolute expiry on each side: equal for a copy, but for the time between reading and setting a relative TTL.
    if (a.expireAt < 0 !== b.expireAt < 0 || Math.abs(a.expireAt - b.expireAt) > context.tolerance) {
      details.push(`${describeExpiry(a, left.now)} on the source, ${describeExpiry(b, right.now)} on the target (tolerance ${context.tolerance} ms)`);
    }
    if (details.length > 0) found(key, 'different', details.join('; '));
    else if (a.type === 'stream') streams.push(index);
  }
  // Streams: their groups and counters, which no digest covers (a few calls per stream key).
  for (const index of streams) {
    const key = keys[index] as Buffer;
    const [a, b] = await Promise.all([streamState(context.source.client, key), streamState(context.target.client, key)]);
    const details = streamDifferences(a, b);
    if (details.length > 0) found(key, 'different', details.join('; '));
  }
  return onTarget;
}

/** One side's answer to the batch digest script. */
interface BatchDigest {
  present: number;
  digest: string;
  /** Indexes (0-based) of the keys the digest leaves out. */
  special: number[];
}

async function batchDigest(side: Side, packed: Buffer, width: number): Promise<BatchDigest> {
  let reply: [number, string, string];
  try {
    reply = (await side.client.call('EVAL', BATCH_DIGEST_SCRIPT, '0', packed, String(width))) as [number, string, string];
  } catch (error) {
    throw new ArmadaError('Unknown', `Redis verify: the ${side.role} answered ${(error as Error).message}`, { cause: error });
  }
  const [present, digest, special] = reply;
  return { present: Number(present), digest: String(digest), special: special ? String(special).split(',').map((index) => Number(index) - 1) : [] };
}

/**
 * A batch by reply bytes first (see the module comment and `verify-wire.ts`). Round 1: each key's
 * expiry and first 4 KiB, which settle short strings. Round 2, for the other keys: TYPE. Round 3,
 * for collections: a read that answers a small one whole. The rest by digest (compareDigested);
 * keys whose replies differ the exact way (compareBatch), which names each difference. Returns
 * how many of the keys the target holds.
 */
async function compareWire(context: Context, db: number, keys: Buffer[], wire: NonNullable<Context['wire']>): Promise<number> {
  const both = (commands: Commands) => Promise.all([wire.source.send(commands.bytes(), commands.count), wire.target.send(commands.bytes(), commands.count)]);
  let equal = 0;
  const exact: Buffer[] = [];
  const digested: Buffer[] = [];
  const [left, right] = await both(batchCommands(keys));
  const others: Buffer[] = [];
  for (let index = 0; index < keys.length; index++) {
    const verdict = compareKey(left, right, index, context.tolerance);
    if (verdict === 'equal') equal++;
    else if (verdict === 'differs') exact.push(keys[index] as Buffer);
    else if (verdict === 'other') others.push(keys[index] as Buffer);
  }
  if (others.length > 0) {
    const types = new Commands();
    for (const key of others) types.add(TYPE, key);
    const [leftTypes, rightTypes] = await both(types);
    const reads = new Commands();
    const collections: Array<{ key: Buffer; type: string }> = [];
    others.forEach((key, index) => {
      const type = status(leftTypes, index);
      const read = COLLECTION_READS[type];
      // Streams: their groups and counters are compared the exact way; a type changed (or gone) too.
      if (!same(leftTypes, rightTypes, index) || type === 'stream' || type === 'none') exact.push(key);
      else if (read) {
        reads.add(read.head, key, read.tail);
        collections.push({ key, type });
      } else digested.push(key);
    });
    if (collections.length > 0) {
      const [leftReads, rightReads] = await both(reads);
      collections.forEach(({ key, type }, index) => {
        if (complete(leftReads, index, type) && same(leftReads, rightReads, index)) equal++;
        else digested.push(key);
      });
    }
  }
  context.compared += equal;
  const [fromDigests, fromExact] = await Promise.all([compareDigested(context, db, digested), compareBatch(context, db, exact)]);
  return equal + fromDigests + fromExact;
}

/**
 * A batch by digest first (see the module comment), the exact way (compareBatch) only for what
 * the digest leaves out or finds different. Returns how many of the keys the target holds.
 */
async function compareDigested(context: Context, db: number, keys: Buffer[]): Promise<number> {
  if (!context.batchDigest || keys.length === 0) return compareBatch(context, db, keys);
  const packed = packKeys(keys);
  // Expiries are hashed in buckets this wide: equal buckets are within the tolerance (0: exact).
  const width = Math.max(1, context.tolerance);
  const [left, right] = await Promise.all([batchDigest(context.source, packed, width), batchDigest(context.target, packed, width)]);
  const sameSpecial = left.special.length === right.special.length && left.special.every((index, at) => index === right.special[at]);
  if (left.digest !== right.digest || !sameSpecial) return compareBatch(context, db, keys);
  // Equal: every key present on one side is present on the other, with the same type, value and expiry.
  context.compared += left.present - left.special.length;
  const special = left.special.map((index) => keys[index] as Buffer);
  return right.present - special.length + (special.length > 0 ? await compareBatch(context, db, special) : 0);
}

/** A batch the fastest way both sides allow. Returns how many of the keys the target holds. */
async function compareKeys(context: Context, db: number, keys: Buffer[]): Promise<number> {
  if (keys.length === 0) return 0;
  if (context.signal?.aborted) throw new CancelledError('Redis verify cancelled.');
  return context.wire ? compareWire(context, db, keys, context.wire) : compareDigested(context, db, keys);
}

/** Runs batch comparisons with a few in flight; waits for all before returning. */
class Window {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  constructor(private readonly size: number) {}
  async add(work: Promise<void>): Promise<void> {
    const tracked = work.catch((error: unknown) => {
      this.failure ??= { error };
    });
    const done = tracked.finally(() => this.running.delete(done));
    this.running.add(done);
    if (this.running.size >= this.size) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
  }
  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}

/** SCANs a database in batches, the next SCAN sent before the batch it returned is compared. */
async function scanAll(client: Redis, batchSize: number, each: (keys: Buffer[]) => Promise<void>): Promise<void> {
  let pending = client.scanBuffer('0', 'COUNT', batchSize);
  for (;;) {
    const [next, keys] = await pending;
    const cursor = String(next);
    if (cursor !== '0') pending = client.scanBuffer(cursor, 'COUNT', batchSize);
    await each(keys);
    if (cursor === '0') return;
  }
}

/** Both sides' clients (and plain sockets) on the database; false, with a difference, when the target has no such database. */
async function selectDatabase(context: Context, db: number, mapped: number): Promise<boolean> {
  const { source, target, wire } = context;
  await Promise.all([source.client.select(db), wire?.source.call('SELECT', String(db))]);
  try {
    await Promise.all([target.client.select(mapped), wire?.target.call('SELECT', String(mapped))]);
    return true;
  } catch (error) {
    context.findings.push({ order: db, difference: { object: `db ${db}`, kind: 'missing', detail: `the target has no database ${mapped}: ${(error as Error).message}` } });
    return false;
  }
}

/** Keys not seen before (SCAN may return a key twice), each remembered in `seen`. */
const freshKeys = (seen: KeyHashSet, keys: Buffer[]) => keys.filter((key) => seen.add(key));

/**
 * The keys only on the target: none unless the target holds more keys than the `onTarget` of
 * the source's it was found to hold (DBSIZE also counts keys expired but not yet reclaimed: then
 * the SCAN, which skips them, decides). Every key of the target not in `seen` is compared.
 */
async function compareTargetOnly(context: Context, db: number, seen: KeyHashSet, onTarget: number): Promise<void> {
  if (Number(await context.target.client.dbsize()) <= onTarget) return;
  const window = new Window(context.wire ? WIRE_IN_FLIGHT : IN_FLIGHT);
  await scanAll(context.target.client, context.batchSize, (keys) => window.add(compareKeys(context, db, freshKeys(seen, keys)).then(() => undefined)));
  await window.drain();
}

/** One source database against its target database: every key, then the keys only on the target. */
async function compareDatabase(context: Context, db: number, mapped: number, sample: number | undefined, notes: string[]): Promise<void> {
  const { source } = context;
  if (!(await selectDatabase(context, db, mapped))) return;
  const window = new Window(context.wire ? WIRE_IN_FLIGHT : IN_FLIGHT);
  if (sample !== undefined) {
    const pipeline = source.client.pipeline();
    for (let index = 0; index < sample; index++) pipeline.randomkeyBuffer();
    const picked = new Map<string, Buffer>();
    for (const key of await execute(source, pipeline)) if (key) picked.set((key as Buffer).toString('latin1'), key as Buffer);
    const keys = [...picked.values()];
    for (let start = 0; start < keys.length; start += context.batchSize) {
      await window.add(compareKeys(context, db, keys.slice(start, start + context.batchSize)).then(() => undefined));
    }
    await window.drain();
    notes.push(`db ${db}: a sample of ${keys.length} random keys compared (sample: ${sample}), not every key; keys only on the target not looked for`);
    return;
  }
  const seen = new KeyHashSet();
  let onTarget = 0;
  await scanAll(source.client, context.batchSize, (keys) =>
    window.add(
      compareKeys(context, db, freshKeys(seen, keys)).then((count) => {
        onTarget += count;
      }),
    ),
  );
  await window.drain();
  await compareTargetOnly(context, db, seen, onTarget);
}

/** Source keys below which the live comparison is cheap anyway (well under a second): no snapshot. */
const SNAPSHOT_MIN_KEYS = 50_000;
/**
 * What a key costs the snapshot path, in seconds, against the live path's ~6 µs (measured on the
 * bench's data, `pnpm bench`): the snapshot pays off once the saving covers the source's
 * repl-diskless-sync-delay, which a diskless snapshot waits out first.
 */
const SNAPSHOT_SAVING_PER_KEY = 3e-6;

/** Whether to read the source from its snapshot: see RedisVerifyOptions.sourceSnapshot. */
async function snapshotPays(source: Redis, keys: number): Promise<boolean> {
  if (keys < SNAPSHOT_MIN_KEYS) return false;
  let delay = 5; // Redis 7's default, when CONFIG is refused
  try {
    const [diskless, seconds] = await Promise.all([source.config('GET', 'repl-diskless-sync'), source.config('GET', 'repl-diskless-sync-delay')]);
    delay = (diskless as string[])[1] === 'no' ? 0 : Number((seconds as string[])[1] ?? 5);
  } catch {
    // CONFIG not allowed: the default assumed.
  }
  return keys * SNAPSHOT_SAVING_PER_KEY > delay;
}

/** How many of `keys` have a TTL on the target (its client on the database), and the earliest of those. */
async function countWithTtl(context: Context, keys: Buffer[]): Promise<{ count: number; earliest: number }> {
  let count = 0;
  let earliest = Number.POSITIVE_INFINITY;
  for (let start = 0; start < keys.length; start += context.batchSize) {
    const pipeline = context.target.client.pipeline();
    for (const key of keys.slice(start, start + context.batchSize)) pipeline.pexpiretime(key);
    for (const reply of await execute(context.target, pipeline)) {
      const expiry = Number(reply);
      if (expiry < 0) continue;
      count++;
      earliest = Math.min(earliest, expiry);
    }
  }
  return { count, earliest };
}

/** The target's count of keys with a TTL in a database (INFO keyspace `expires=`). */
async function expiresOf(client: Redis, db: number): Promise<number> {
  const info = await client.info('keyspace');
  return Number(new RegExp(`^db${db}:keys=\\d+,expires=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

/**
 * The snapshot path asks the target for the TTLs of the keys the snapshot gives one, not for the
 * others': that those have none on the target is proven here by counting. The target's keys with
 * a TTL (INFO keyspace) must be those proven equal with theirs, plus those of the keys compared
 * live, none of them about to expire. If not (a key has a TTL it should not, one expired there
 * and is not reclaimed yet, or one of them may expire while they are counted),
 * the target is SCANned for the keys with a TTL, and each snapshot key among them that was taken
 * as equal without its TTL read is compared live instead.
 */
async function proveNoOtherTtls(context: Context, mapped: number, state: SnapshotDatabase): Promise<void> {
  const live = await countWithTtl(context, state.exact);
  const expires = await expiresOf(context.target.client, mapped);
  // A counted key that may have expired (and gone) by the time of the count would let another's stray TTL through: then read them all.
  const settled = Math.min(state.earliestExpiry, live.earliest) > Date.now() + context.tolerance;
  if (settled && expires === state.withTtl + live.count) return;
  const exact = new KeyHashSet();
  for (const key of state.exact) exact.add(key);
  const found: Buffer[] = [];
  await scanAll(context.target.client, context.batchSize, async (keys) => {
    const pipeline = context.target.client.pipeline();
    for (const key of keys) pipeline.pexpiretime(key);
    const expiries = await execute(context.target, pipeline);
    keys.forEach((key, index) => {
      // With a TTL, one of the snapshot's, not one whose TTL was read, and not already to be compared live (nor twice).
      if (Number(expiries[index]) >= 0 && state.seen.has(key) && !state.ttlKeys.has(key) && exact.add(key)) found.push(key);
    });
  });
  // They were counted equal: they are compared (and counted) live instead.
  state.equal -= found.length;
  state.exact.push(...found);
}

/**
 * The source from its RDB snapshot, the target key by key (`verify-snapshot.ts`); keys that do
 * not match the snapshot, then the target's keys the snapshot did not have, compared live.
 * False when the source serves no snapshot, or one the parser cannot read (and not `required`):
 * nothing is recorded then, and the caller compares live.
 */
async function compareFromSnapshot(
  context: Context,
  endpoint: DataEndpoint,
  databases: number[],
  keyCounts: Map<number, number>,
  mapped: (db: number) => number,
  notes: string[],
  required: boolean,
): Promise<boolean> {
  const wire = context.wire as NonNullable<Context['wire']>;
  // The target databases must exist before the snapshot's batches SELECT them.
  const usable = new Set<number>();
  const absent: Found[] = [];
  for (const db of databases) {
    try {
      await context.target.client.select(mapped(db));
      usable.add(db);
    } catch (error) {
      absent.push({ order: db, difference: { object: `db ${db}`, kind: 'missing', detail: `the target has no database ${mapped(db)}: ${(error as Error).message}` } });
    }
  }
  let comparison: SnapshotComparison;
  try {
    comparison = await compareWithSnapshot({
      source: endpoint,
      target: wire.target,
      wants: (db) => usable.has(db),
      mapped,
      keysOf: (db) => keyCounts.get(db) ?? 0,
      tolerance: context.tolerance,
      batchSize: context.batchSize,
      maxValueBytes: SNAPSHOT_MAX_VALUE,
      signal: context.signal,
    });
  } catch (error) {
    if (!required && (error instanceof PsyncRefusedError || error instanceof RdbUnsupportedError)) {
      notes.push(`the source's snapshot could not be used (${error.message}): every key compared live on both sides`);
      return false;
    }
    if (error instanceof PsyncRefusedError || error instanceof RdbUnsupportedError) {
      throw new ArmadaError('Unsupported', `Redis verify with sourceSnapshot 'always': ${error.message}. Use 'auto' or 'never'.`, { cause: error });
    }
    throw error;
  }
  context.findings.push(...absent);
  for (const db of [...usable].sort((a, b) => a - b)) {
    const state = comparison.databases.get(db) ?? { seen: new KeyHashSet(), equal: 0, exact: [], ttlKeys: new KeyHashSet(), withTtl: 0, earliestExpiry: Number.POSITIVE_INFINITY };
    await selectDatabase(context, db, mapped(db));
    await proveNoOtherTtls(context, mapped(db), state);
    context.compared += state.equal;
    let onTarget = state.equal;
    const window = new Window(IN_FLIGHT);
    for (let start = 0; start < state.exact.length; start += context.batchSize) {
      await window.add(
        compareBatch(context, db, state.exact.slice(start, start + context.batchSize)).then((count) => {
          onTarget += count;
        }),
      );
    }
    await window.drain();
    // Keys the snapshot had were compared; a key SCAN returns twice is compared once.
    await compareTargetOnly(context, db, state.seen, onTarget);
  }
  notes.push(
    `the source was read from its RDB snapshot (PSYNC, ${comparison.startedAt.toISOString()}) and each key compared with it on the target; keys that did not match it, and keys only on the target, compared live on both sides`,
  );
  return true;
}

/** A target database no source database maps to: one difference when it holds live keys. */
async function compareStrayDatabase(context: Context, db: number): Promise<void> {
  const { client } = context.target;
  await client.select(db);
  let count = 0;
  const examples: string[] = [];
  // SCAN returns no key whose TTL has passed; a key may come twice, so they are counted once each.
  const seen = new KeyHashSet();
  await scanAll(client, context.batchSize, async (keys) => {
    for (const key of keys) {
      if (!seen.add(key)) continue;
      count++;
      if (examples.length < 3) examples.push(JSON.stringify(key.toString()));
    }
  });
  if (count === 0) return;
  context.compared += count;
  context.findings.push({
    order: db,
    difference: { object: `db ${db}`, kind: 'extra', detail: `${count} key${count === 1 ? '' : 's'} on the target only (${examples.join(', ')}${count > examples.length ? ', ...' : ''}); no source database is copied there` },
  });
}

/**
 * Compares the target with the source: see the module comment. Differences are listed in a
 * stable order (databases by index, keys by name within them, libraries last), whatever order
 * the batches finished in.
 */
export async function verifyRedis(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint, options: RedisVerifyOptions = {}): Promise<VerifyReport> {
  const maxDifferences = Math.max(1, options.maxDifferences ?? 100);
  const source = await open(sourceEndpoint, 'source');
  let target: Redis | undefined;
  let wire: Context['wire'];
  try {
    target = await open(targetEndpoint, 'target');
    const [sourceCapabilities, targetCapabilities] = await Promise.all([probe(source), probe(target)]);
    if (sourceCapabilities.expireTime && targetCapabilities.expireTime) {
      const connections = await Promise.allSettled([WireConnection.open(sourceEndpoint, 'source'), WireConnection.open(targetEndpoint, 'target')]);
      const [left, right] = connections.map((connection) => (connection.status === 'fulfilled' ? connection.value : undefined));
      if (left && right) wire = { source: left, target: right };
      else {
        left?.close();
        right?.close();
        throw (connections.find((connection) => connection.status === 'rejected') as PromiseRejectedResult).reason;
      }
    }
    const context: Context = {
      source: { client: source, role: 'source', capabilities: sourceCapabilities },
      target: { client: target, role: 'target', capabilities: targetCapabilities },
      mode: { debug: sourceCapabilities.debug && targetCapabilities.debug, luaStrings: sourceCapabilities.lua && targetCapabilities.lua },
      tolerance: Math.max(0, options.ttlToleranceMs ?? 2000),
      signal: options.signal,
      batchSize: Math.max(1, options.batchSize ?? 1000),
      batchDigest: sourceCapabilities.batchDigest && targetCapabilities.batchDigest,
      wire,
      findings: [],
      compared: 0,
      expiring: 0,
    };
    const notes: string[] = [];
    if (!context.mode.debug) {
      const refused = [sourceCapabilities.debug ? undefined : 'source', targetCapabilities.debug ? undefined : 'target'].filter(Boolean).join(' and ');
      notes.push(`DEBUG DIGEST-VALUE is not allowed on the ${refused}: values were read and digested by the verify${context.mode.luaStrings ? ' (strings hashed on the servers by Lua)' : ''}`);
    }
    if (!sourceCapabilities.expireTime || !targetCapabilities.expireTime) notes.push('PEXPIRETIME is not available (Redis before 7): TTLs compared by PTTL');

    const [sourceKeys, targetKeys] = await Promise.all([keyspace(source), keyspace(target)]);
    const databases = [...new Set(sourceEndpoint.databases?.map(Number) ?? [...sourceKeys.keys()])].sort((a, b) => a - b);
    const invalid = databases.filter((db) => !Number.isInteger(db) || db < 0);
    if (invalid.length > 0) {
      throw new ValidationError(`Cannot verify: ${invalid.join(', ')} ${invalid.length > 1 ? 'are not database indexes' : 'is not a database index'}.`, {
        issues: [{ path: 'source.databases', message: 'Redis databases are numbered from 0', fix: 'list database indexes, such as [0, 3]' }],
      });
    }
    const mapped = (db: number) => options.databaseMap?.[db] ?? db;
    const total = [...sourceKeys.values()].reduce((sum, count) => sum + count, 0);
    const snapshotMode = options.sourceSnapshot ?? 'auto';
    // The snapshot path needs the target's plain socket (PEXPIRETIME on the target); a sample reads a few keys live.
    const trySnapshot = options.sample === undefined && wire !== undefined && (snapshotMode === 'always' || (snapshotMode === 'auto' && (await snapshotPays(source, total))));
    if (snapshotMode === 'always' && !trySnapshot) {
      throw new ValidationError("Redis verify with sourceSnapshot 'always' needs PEXPIRETIME (Redis 7) on both sides and no sample.", {
        issues: [{ path: 'sourceSnapshot', message: wire ? 'a sample is read live' : 'PEXPIRETIME is missing on a side', fix: "use sourceSnapshot 'auto'" }],
      });
    }
    const viaSnapshot = trySnapshot && (await compareFromSnapshot(context, sourceEndpoint, databases, sourceKeys, mapped, notes, snapshotMode === 'always'));
    if (!viaSnapshot) for (const db of databases) await compareDatabase(context, db, mapped(db), options.sample, notes);
    if (sourceEndpoint.databases === undefined) {
      // Everything is in scope: a target database no source database maps to must hold nothing.
      const images = new Set(databases.map(mapped));
      for (const db of [...targetKeys.keys()].sort((a, b) => a - b)) if (!images.has(db)) await compareStrayDatabase(context, db);
    } else notes.push(`only database${databases.length === 1 ? '' : 's'} ${databases.join(', ')} compared (source.databases)`);
    if (context.expiring > 0) notes.push(`${context.expiring} key${context.expiring === 1 ? '' : 's'} expiring during verify (present on one side only, within ${context.tolerance} ms of expiry) not compared`);

    // FUNCTION libraries (Redis 7): every library on either side is one compared object.
    try {
      const [sourceLibraries, targetLibraries] = await Promise.all([listFunctions(source, 'source'), listFunctions(target, 'target')]);
      const libraries = new Set([...(sourceLibraries?.keys() ?? []), ...(targetLibraries?.keys() ?? [])]);
      if (libraries.size > 0) {
        context.compared += libraries.size;
        for (const difference of await compareFunctions(source, target)) context.findings.push({ order: Number.MAX_SAFE_INTEGER, difference });
      }
    } catch (error) {
      // FUNCTION LIST refused (ACL): the keys are still compared, and the report says what was not.
      if (!ArmadaError.isInstance(error)) throw error;
      notes.push(`function libraries not compared: ${error.message}`);
    }

    if (context.compared === 0 && context.findings.length === 0) {
      const named = databases.length === 0 ? 'the source holds no keys' : `database${databases.length === 1 ? '' : 's'} ${databases.join(', ')} hold${databases.length === 1 ? 's' : ''} no live keys`;
      throw new ValidationError(`Nothing to verify: ${named}, the target none either, and neither has FUNCTION libraries.`, {
        issues: [{ path: 'source', message: 'no keys or libraries to compare', fix: 'check that the endpoints name the servers (and databases) that were copied' }],
      });
    }
    const findings = context.findings.sort((a, b) => a.order - b.order || (a.difference.object < b.difference.object ? -1 : a.difference.object > b.difference.object ? 1 : 0));
    const differences = findings.slice(0, maxDifferences).map((finding) => finding.difference);
    if (findings.length > maxDifferences) notes.push(`${findings.length - maxDifferences} more differences not listed (maxDifferences ${maxDifferences})`);
    const first = differences[0];
    return {
      ok: findings.length === 0,
      compared: context.compared,
      ...(first ? { firstDifference: `${first.object}: ${first.detail}` } : {}),
      differences,
      ...(notes.length > 0 ? { notes } : {}),
    };
  } catch (error) {
    // Ours (ValidationError, CancelledError) as they are; a client's wrapped.
    if (ArmadaError.isInstance(error)) throw error;
    throw new ArmadaError('Unknown', `Redis verify failed: ${(error as Error).message}`, { cause: error });
  } finally {
    source.disconnect();
    target?.disconnect();
    wire?.source.close();
    wire?.target.close();
  }
}
