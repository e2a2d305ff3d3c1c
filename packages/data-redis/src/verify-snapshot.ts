/**
 * Verify's snapshot path: the source is read from its own RDB snapshot (PSYNC, as the rdb copy
 * does), and only the target is read per key. Why: reading a key costs a server about a
 * microsecond per command, and the live comparison reads every key on both sides (SCAN, expiry,
 * value); a snapshot costs the source one fork and a serialization in the child, off its main
 * thread, and this process parses it at tens of MB/s.
 *
 * Per batch of snapshot keys the target is sent, over one plain socket: `PEXPIRETIME` of each key,
 * one `MGET` of its strings, and `DUMP` of its other keys. The replies are compared with what the
 * snapshot says they must be, built as bytes: the expiries (`:<ms>` or `:-1`) and the MGET reply as
 * one region each (one compare proves a whole batch), each DUMP payload with the snapshot's value
 * bytes (the RDB value encoding is DUMP's). A hashtable-encoded set, hash or sorted set is
 * serialized in its dict's order, which two servers do not share: its elements are compared as a
 * set (`rdb-values.ts`).
 *
 * A key that does not match the snapshot at once (expiry apart by more than the tolerance, value
 * different, absent, a stream, a key too big to buffer) is handed back for the exact comparison,
 * which reads it live on both sides and names the difference. So the snapshot can only prove keys
 * equal: a key written on the source after the snapshot is compared live, and a difference is
 * never reported from the snapshot alone. What it cannot see, a key the target holds and the
 * snapshot has not, the caller finds the usual way (the target's DBSIZE, then its SCAN).
 *
 * A key the snapshot holds with its expiry passed is not compared (the source will not serve it);
 * a target that still holds it alive is found by that DBSIZE check.
 */
import { CancelledError, type DataEndpoint } from '@armada/core';
import { KeyHashSet } from './key-set.js';
import { RdbSnapshot } from './psync.js';
import { RdbParser } from './rdb.js';
import { lzfDecompressInto } from './rdb.js';
import { sameElements, StringSpan, UNORDERED_TYPES } from './rdb-values.js';
import { Commands, decimal, DUMP, integer, PEXPIRETIME, skip, type WireConnection, type WireReplies } from './verify-wire.js';

/** Batches sent to the target and not answered yet, before the snapshot is paused. */
const WINDOW = 8;
/** Value bytes per batch, so that a batch of large values stays bounded too. */
const BATCH_BYTES = 4 * 1024 * 1024;
/**
 * The types DUMP compares as bytes. Not streams (15, 19, 21): their groups and PELs carry clocks
 * (delivery and seen times), so they are compared the exact way. Module values (6, 7) stop the parser.
 */
const DUMPED_TYPES = new Set([1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 16, 17, 18, 20]);

export interface SnapshotScope {
  source: DataEndpoint;
  target: WireConnection;
  /** Source databases compared; the others are walked over. */
  wants(db: number): boolean;
  /** The target database a source database is copied to. */
  mapped(db: number): number;
  /** How many keys the source said a database holds (INFO keyspace): a size hint. */
  keysOf(db: number): number;
  tolerance: number;
  batchSize: number;
  /** Values larger than this are not buffered, only named (compared the exact way). */
  maxValueBytes: number;
  signal?: AbortSignal | undefined;
}

/** One source database as the snapshot saw it. */
export interface SnapshotDatabase {
  /** Its live keys, to tell the target's keys the snapshot did not have. */
  seen: KeyHashSet;
  /**
   * Keys proven equal to the snapshot (all present on the target), their TTLs too if they have
   * one; that those without have none on the target is for the caller to prove.
   */
  equal: number;
  /** Its keys with a TTL, and how many of them were proven equal, TTL included (none of them in `exact`). */
  ttlKeys: KeyHashSet;
  withTtl: number;
  /** The earliest absolute expiry among those (ms): a key expiring before they are counted would upset the count. */
  earliestExpiry: number;
  /** Keys for the exact comparison, live on both sides. */
  exact: Buffer[];
}

/** The snapshot's start, and what it saw per wanted database. */
export interface SnapshotComparison {
  startedAt: Date;
  databases: Map<number, SnapshotDatabase>;
}

/** One batch being gathered: the target's commands and the replies the snapshot expects. */
class Batch {
  /**
   * Where each key's name lies: in the MGET's arguments (`strings`) or the DUMP commands
   * (`dumps`), as `inDumps` says. Read back only for the keys compared live.
   */
  readonly keyStarts: number[] = [];
  readonly keyEnds: number[] = [];
  readonly inDumps: boolean[] = [];
  /** PEXPIRETIME of each key the snapshot gives a TTL, and the reply each must get. */
  readonly expiries = new Commands();
  readonly expectedExpiries = new Commands();
  /** Per key with a TTL: its index and absolute expiry. */
  readonly ttlKeys: number[] = [];
  readonly expireAt: number[] = [];
  readonly strings = new Commands();
  readonly expectedStrings = new Commands();
  /** Per string key: its key index, and where its expected element ends in expectedStrings. */
  readonly stringKeys: number[] = [];
  readonly stringEnds: number[] = [];
  readonly dumps = new Commands();
  /** Each dumped key's value bytes (type byte first), one after the other. */
  readonly expectedDumps = new Commands();
  /** Per dumped key: its key index, and where its value bytes end in expectedDumps. */
  readonly dumpKeys: number[] = [];
  readonly dumpEnds: number[] = [];
  bytes = 0;
  db = -1;

  /** Empties it for the next batch, keeping its buffers: a batch is reused once checked. */
  reset(db: number): this {
    for (const commands of [this.expiries, this.expectedExpiries, this.strings, this.expectedStrings, this.dumps, this.expectedDumps]) commands.reset();
    for (const list of [this.keyStarts, this.keyEnds, this.inDumps, this.ttlKeys, this.expireAt, this.stringKeys, this.stringEnds, this.dumpKeys, this.dumpEnds]) list.length = 0;
    this.bytes = 0;
    this.db = db;
    return this;
  }
}

/** The batch's replies checked against the snapshot: keys proven equal counted, the others listed for the exact way. */
function check(batch: Batch, replies: WireReplies, tolerance: number, state: SnapshotDatabase): void {
  const { bytes, bounds } = replies;
  const count = batch.keyStarts.length;
  const differing = new Set<number>();
  // The TTLs: all as the snapshot says, in one compare, or key by key.
  const ttls = batch.ttlKeys.length;
  if (ttls > 0) {
    const expected = batch.expectedExpiries.bytes();
    const expiriesEnd = bounds[2 * ttls - 1] as number;
    if (expiriesEnd - (bounds[0] as number) !== expected.length || bytes.compare(expected, 0, expected.length, bounds[0] as number, expiriesEnd) !== 0) {
      for (let at = 0; at < ttls; at++) {
        const actual = integer(replies, at);
        // Absent (-2), no TTL (-1), or apart by more than the tolerance (a scan copy sets TTLs a little late).
        if (actual < 0 || Math.abs(actual - (batch.expireAt[at] as number)) > tolerance) differing.add(batch.ttlKeys[at] as number);
      }
    }
  }
  let reply = ttls;
  if (batch.stringKeys.length > 0) {
    const start = bounds[2 * reply] as number;
    const end = bounds[2 * reply + 1] as number;
    const wanted = batch.expectedStrings.bytes();
    const header = Buffer.from(`*${batch.stringKeys.length}\r\n`);
    const whole =
      end - start === header.length + wanted.length && bytes.compare(header, 0, header.length, start, start + header.length) === 0 && bytes.compare(wanted, 0, wanted.length, start + header.length, end) === 0;
    if (!whole) {
      // Element by element: each MGET element against its expected bytes.
      let at = bytes.indexOf(13, start) + 2;
      let from = 0;
      for (const [position, index] of batch.stringKeys.entries()) {
        const next = skip(bytes, at);
        const to = batch.stringEnds[position] as number;
        if (next - at !== to - from || bytes.compare(wanted, from, to, at, next) !== 0) differing.add(index);
        at = next;
        from = to;
      }
    }
    reply++;
  }
  const values = batch.expectedDumps.bytes();
  let from = 0;
  for (const [position, index] of batch.dumpKeys.entries()) {
    const start = bounds[2 * reply] as number;
    reply++;
    const to = batch.dumpEnds[position] as number;
    const value = from;
    from = to;
    if (bytes[start] !== 36) {
      differing.add(index); // nil: gone since its expiry was read
      continue;
    }
    const eol = bytes.indexOf(13, start);
    const length = decimal(bytes, start + 1, eol);
    const payload = eol + 2;
    // The payload: value bytes, then the RDB version (2 bytes) and a CRC-64 (8), which are not data.
    if (length === to - value + 10 && bytes.compare(values, value, to, payload, payload + to - value) === 0) continue;
    const type = values[value] as number;
    if (length > 10 && bytes[payload] === type && UNORDERED_TYPES.has(type) && sameElements(type, values, value + 1, to, bytes, payload + 1, payload + length - 10)) continue;
    differing.add(index);
  }
  // The keys proven equal with their TTL: what the caller's count of the target's TTLs starts from.
  for (const [at, index] of batch.ttlKeys.entries()) {
    if (differing.has(index)) continue;
    state.withTtl++;
    state.earliestExpiry = Math.min(state.earliestExpiry, batch.expireAt[at] as number);
  }
  for (const index of differing) {
    const names = batch.inDumps[index] ? batch.dumps.buffer : batch.strings.buffer;
    state.exact.push(Buffer.from(names.subarray(batch.keyStarts[index] as number, batch.keyEnds[index] as number)));
  }
  state.equal += count - differing.size;
}

/**
 * Reads the source's snapshot and compares the target with it (see the module comment). Throws
 * PsyncRefusedError when the source serves no snapshot, RdbUnsupportedError when it holds what
 * the parser cannot read: the caller then compares live.
 */
export async function compareWithSnapshot(scope: SnapshotScope): Promise<SnapshotComparison> {
  const { target, tolerance } = scope;
  const snapshot = new RdbSnapshot(scope.source);
  const databases = new Map<number, SnapshotDatabase>();
  let current: { db: number; state: SnapshotDatabase } | undefined;
  const stateOf = (db: number) => {
    if (current?.db === db) return current.state;
    let state = databases.get(db);
    if (!state) {
      // Sized for the keys the source said it holds: no growing while the snapshot streams.
      state = { seen: new KeyHashSet(scope.keysOf(db)), equal: 0, exact: [], ttlKeys: new KeyHashSet(), withTtl: 0, earliestExpiry: Number.POSITIVE_INFINITY };
      databases.set(db, state);
    }
    current = { db, state };
    return state;
  };
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    snapshot.fail(error);
  };
  let batch: Batch | undefined;
  /** Batches checked, for reuse. */
  const spare: Batch[] = [];
  let targetDb = -1;

  const send = () => {
    const sending = batch;
    batch = undefined;
    if (!sending || sending.keyStarts.length === 0) return;
    const state = stateOf(sending.db);
    const parts = [sending.expiries.bytes()];
    let count = sending.expiries.count;
    if (sending.stringKeys.length > 0) {
      parts.push(Buffer.from(`*${sending.stringKeys.length + 1}\r\n$4\r\nMGET\r\n`), sending.strings.bytes());
      count++;
    }
    parts.push(sending.dumps.bytes());
    count += sending.dumps.count;
    const work = target.send(Buffer.concat(parts), count).then(
      (replies) => {
        check(sending, replies, tolerance, state);
        spare.push(sending);
      },
      (error: Error) => fail(error),
    );
    const tracked = work
      .catch((error: Error) => fail(error))
      .finally(() => {
        inFlight.delete(tracked);
        if (inFlight.size < WINDOW / 2) snapshot.resume();
      });
    inFlight.add(tracked);
    if (inFlight.size >= WINDOW) snapshot.pause();
  };

  let now = Date.now();
  const span = new StringSpan();
  const parser = new RdbParser(
    {
      wants: (db) => scope.wants(db),
      onKey(record) {
        if (record.expireAt > 0 && record.expireAt <= now) return; // expired: the source serves it no more
        const state = stateOf(record.db);
        state.seen.add(record.keyBuffer, record.keyStart, record.keyEnd);
        const type = record.type;
        if (type !== 0 && !DUMPED_TYPES.has(type)) {
          // Streams (their groups, PELs and counters) and anything newer: the exact way.
          state.exact.push(Buffer.from(record.keyBuffer.subarray(record.keyStart, record.keyEnd)));
          return;
        }
        if (batch && (batch.db !== record.db || batch.keyStarts.length >= scope.batchSize || batch.bytes >= BATCH_BYTES)) send();
        if (record.db !== targetDb) {
          targetDb = record.db;
          // In order on the socket: the batches after it read the mapped database.
          target.call('SELECT', String(scope.mapped(record.db))).catch((error: Error) => fail(error));
        }
        batch ??= (spare.pop() ?? new Batch()).reset(record.db);
        const index = batch.keyStarts.length;
        const keyLength = record.keyEnd - record.keyStart;
        // Only keys with a TTL are asked for theirs; that the others have none on the target
        // either is proven per database by the target's count of keys with a TTL (the caller's).
        if (record.expireAt > 0) {
          state.ttlKeys.add(record.keyBuffer, record.keyStart, record.keyEnd);
          batch.expiries.addKey(PEXPIRETIME, record.keyBuffer, record.keyStart, record.keyEnd);
          batch.ttlKeys.push(index);
          batch.expireAt.push(record.expireAt);
          batch.expectedExpiries.integerReply(record.expireAt);
        }
        // The value bytes, joined only when they came in more than one chunk.
        const whole = record.parts.length === 0;
        const buffer = whole ? record.valueBuffer : Buffer.concat([...record.parts, record.valueBuffer.subarray(record.valueStart, record.valueEnd)]);
        const start = whole ? record.valueStart : 0;
        const end = whole ? record.valueEnd : buffer.length;
        batch.bytes += end - start + 16;
        if (type === 0) {
          batch.strings.bulk(record.keyBuffer, record.keyStart, record.keyEnd);
          // The name sits just before the argument's closing CRLF.
          batch.keyEnds.push(batch.strings.length - 2);
          batch.keyStarts.push(batch.strings.length - 2 - keyLength);
          batch.inDumps.push(false);
          span.read(buffer, start);
          if (span.kind === 0) batch.expectedStrings.bulk(buffer, span.start, span.end);
          else if (span.kind === 1) {
            const at = batch.expectedStrings.reserveBulk(span.length);
            lzfDecompressInto(buffer, span.start, span.end, batch.expectedStrings.buffer, at, span.length);
          }
          else batch.expectedStrings.bulk(Buffer.from(String(span.integer)));
          batch.stringKeys.push(index);
          batch.stringEnds.push(batch.expectedStrings.length);
        } else {
          batch.dumps.addKey(DUMP, record.keyBuffer, record.keyStart, record.keyEnd);
          batch.keyEnds.push(batch.dumps.length - 2);
          batch.keyStarts.push(batch.dumps.length - 2 - keyLength);
          batch.inDumps.push(true);
          batch.dumpKeys.push(index);
          batch.expectedDumps.byte(type);
          batch.expectedDumps.raw(buffer, start, end);
          batch.dumpEnds.push(batch.expectedDumps.length);
        }
      },
      onBigKey(db, key, expireAt) {
        if (expireAt > 0 && expireAt <= now) return;
        const state = stateOf(db);
        state.seen.add(key);
        if (expireAt > 0) state.ttlKeys.add(key);
        state.exact.push(key);
      },
    },
    scope.maxValueBytes,
    // Every value is checked against the target: a damaged byte can only show as a difference (compared live then).
    false,
  );
  const cancel = () => fail(new CancelledError('Redis verify cancelled.'));
  if (scope.signal?.aborted) throw new CancelledError('Redis verify cancelled.');
  scope.signal?.addEventListener('abort', cancel, { once: true });
  try {
    await snapshot.start();
    const startedAt = new Date();
    await snapshot.read({
      push(chunk) {
        now = Date.now();
        parser.push(chunk);
      },
      get done() {
        return parser.done;
      },
      get trailing() {
        return parser.trailing;
      },
    });
    send();
    while (inFlight.size > 0) await Promise.all(inFlight);
    if (failure) throw failure;
    return { startedAt, databases };
  } finally {
    scope.signal?.removeEventListener('abort', cancel);
    snapshot.close();
  }
}

