/**
 * The `scan` strategy: SCAN + DUMP/RESTORE, database by database, resumable from its cursors. The
 * one a managed Redis that refuses PSYNC (ElastiCache, DigitalOcean) still allows.
 *
 * Both sides are plain sockets with RESP written and parsed by hand (no object or promise per
 * command), and everything is pipelined and overlapped: while one batch's DUMPs are being
 * answered, the next batch is SCANned and sized, and the RESTOREs of the keys already read are in
 * flight to the target. Per batch of keys:
 *
 * 1. `SCAN cursor COUNT n` (one at a time: the next cursor comes with the reply);
 * 2. `MEMORY USAGE key` per key (O(1)-ish: sampled, SAMPLES 5): a key over 4x `bigKeyBytes` in
 *    memory is copied in pieces (pieces.ts) on the two ioredis connections, beside the stream,
 *    never DUMPed; under it, its DUMP payload decides (over `bigKeyBytes`: in pieces), the
 *    serialized size the rdb strategy goes by too;
 * 3. for the others, `OBJECT IDLETIME key` (or `OBJECT FREQ` under an LFU policy; read first, as
 *    DUMP touches the key), `PEXPIRETIME key` and `DUMP key`, adjacent, so expiry and value agree;
 * 4. `RESTORE key <expire-at> payload ABSTTL REPLACE IDLETIME s | FREQ n` on the target: the
 *    source's absolute expiry (no drift from reading a relative TTL early) and its LRU/LFU data.
 *
 * Bytes in flight are bounded (`maxInFlightBytes`): DUMPs are requested while the estimated size
 * of those unanswered plus the RESTOREs unanswered stays under it, and the source is not read
 * while the target is behind. A batch is done once all its RESTOREs are answered and its big
 * keys copied; batches are done in SCAN order, and the checkpoint's cursor moves past each, so a
 * killed copy resumes after the last batch that is wholly on the target.
 */
import type { Socket } from 'node:net';
import { ArmadaError, CancelledError, type DataEndpoint } from '@armada/core';
import type { Redis } from 'ioredis';
import type { Checkpoint } from './checkpoint.js';
import { copyInPieces } from './pieces.js';
import { type Run, progress } from './run.js';
import { connectRaw, copyInto, encodeCommand, writeBulk, writeBulkInteger } from './resp.js';

type DatabaseState = Checkpoint['databases'][string];

const CHUNK = 1 << 20;
const FLUSH_BYTES = 256 * 1024;
/** Batches scanned and not done yet, at most (each holds only its key names once read). */
const MAX_OPEN_BATCHES = 8;
/**
 * A key is big when its DUMP payload (the serialized size, as the rdb strategy measures it) is
 * over `bigKeyBytes`. MEMORY USAGE, which is larger (a hash table's entries and pointers), tells
 * which keys cannot be under it: over this many times `bigKeyBytes` in memory, a key is copied in
 * pieces without DUMPing it; under, its DUMP decides (a hash table is some 3-4x its payload).
 */
const BIG_BY_MEMORY = 4;
/** Keys per run of requests (MEMORY USAGE, or the DUMPs), so the bounds are checked often. */
const DUMP_RUN = 256;
/**
 * Keys requested and not answered, at most, of each kind (sizes, DUMPs): enough to keep the source
 * busy over a round trip (and over a few ms of not being scheduled, on a busy machine), few enough
 * that a key's second visit (its DUMP, after its MEMORY USAGE) mostly finds it in the source's CPU
 * caches: INFO commandstats showed 1.5-2x the cost per command with a whole 2,000-key batch ahead.
 */
const DEPTH = 1024;

const encode = (text: string) => Buffer.from(text, 'latin1');
const OBJECT = encode('*3\r\n$6\r\nOBJECT\r\n');
const IDLETIME_ARG = encode('$8\r\nIDLETIME\r\n');
const FREQ_ARG = encode('$4\r\nFREQ\r\n');
const PEXPIRETIME = encode('*2\r\n$11\r\nPEXPIRETIME\r\n');
const PTTL = encode('*2\r\n$4\r\nPTTL\r\n');
const DUMP = encode('*2\r\n$4\r\nDUMP\r\n');
const MEMORY_USAGE = encode('*3\r\n$6\r\nMEMORY\r\n$5\r\nUSAGE\r\n');
/** `*<n>\r\n$7\r\nRESTORE\r\n` by argument count (5: key, ttl, payload, REPLACE; +1 ABSTTL; +2 IDLETIME|FREQ n). */
const RESTORE_HEAD = [5, 6, 7, 8].map((count) => encode(`*${count}\r\n$7\r\nRESTORE\r\n`));
const ABSTTL = encode('$6\r\nABSTTL\r\n');
const REPLACE = encode('$7\r\nREPLACE\r\n');
const IDLETIME_OPTION = encode('$8\r\nIDLETIME\r\n');
const FREQ_OPTION = encode('$4\r\nFREQ\r\n');
const TTL_NONE = encode('$1\r\n0\r\n');

/** A plain socket to a Redis server: commands are built into large buffers and written in bulk. */
class RespSocket {
  out = Buffer.allocUnsafe(CHUNK);
  used = 0;
  /** Output bytes produced so far (all buffers), and handed to the socket. */
  produced = 0;
  private written = 0;
  private flushScheduled = false;
  closed = false;
  /** The first error or close, and who hears of it. */
  lost: Error | undefined;
  onLost: ((error: Error) => void) | undefined;

  private constructor(
    readonly socket: Socket,
    readonly where: string,
    role: 'source' | 'target',
  ) {
    const lose = (error: Error) => {
      if (this.lost) return;
      this.lost = error;
      this.onLost?.(error);
    };
    socket.on('error', (error) => lose(new ArmadaError('Unknown', `Lost the connection to the ${role} Redis at ${where}: ${error.message}`, { cause: error, retryable: true })));
    socket.on('close', () => lose(new ArmadaError('Unknown', `The ${role} Redis at ${where} closed the connection during the copy.`, { retryable: true })));
  }

  /** Connects, and authenticates if the endpoint has a password (before any other command). */
  static async open(endpoint: DataEndpoint, role: 'source' | 'target'): Promise<RespSocket> {
    return new RespSocket(await connectRaw(endpoint, role), `${endpoint.host}:${endpoint.port}`, role);
  }

  /** Room for `bytes` more in the output buffer (a new buffer when the current one is full). */
  ensure(bytes: number): void {
    if (this.out.length - this.used >= bytes) return;
    this.flush();
    this.out = Buffer.allocUnsafe(Math.max(CHUNK, bytes));
    this.used = 0;
    this.written = 0;
  }

  /** A whole command, from its arguments (for the rare ones: SELECT). */
  command(...args: Array<string | Buffer>): void {
    const encoded = encodeCommand(args);
    this.ensure(encoded.length);
    this.raw(encoded);
  }

  /** Writes `$<length>\r\n<bytes>\r\n` (room must have been ensured). */
  bulk(bytes: Buffer, start: number, end: number): void {
    const at = writeBulk(this.out, this.used, bytes, start, end);
    this.produced += at - this.used;
    this.used = at;
  }

  /** Writes a non-negative integer argument, `$<digits>\r\n<value>\r\n` (room must have been ensured). */
  bulkInteger(value: number): void {
    const at = writeBulkInteger(this.out, this.used, value);
    this.produced += at - this.used;
    this.used = at;
  }

  /** Writes constant bytes (room must have been ensured). */
  raw(bytes: Buffer): void {
    this.used = copyInto(this.out, this.used, bytes, 0, bytes.length);
    this.produced += bytes.length;
  }

  /** Hands what is buffered to the socket: at once past 256 KiB, else on the next turn. */
  flushSoon(): void {
    if (this.used - this.written >= FLUSH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    if (this.closed || this.used === this.written) return;
    this.socket.write(this.out.subarray(this.written, this.used));
    this.written = this.used;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** One SCAN batch: its keys, and what of it is still under way. */
interface Batch {
  db: number;
  /** The cursor after this batch. */
  next: string;
  /** MEMORY USAGE replies still to come. */
  sizing: number;
  /** Keys read for DUMP but not requested yet, requested and not answered, RESTOREs unanswered, big keys not copied. */
  queued: number;
  dumping: number;
  restoring: number;
  big: number;
  /** Keys and bytes on the target. */
  written: number;
  bytes: number;
  /** Whether its keys are still being read or written (not only waiting for its big keys). */
  flowing: boolean;
}

/** What the source's replies answer, in order. */
type Expected =
  | { kind: 'ok'; what: string }
  | { kind: 'scan'; db: number }
  | { kind: 'size'; batch: Batch; keys: Buffer[]; at: number }
  | { kind: 'dump'; batch: Batch; keys: Buffer[]; sizes: number[]; at: number; step: number; meta: number; expireAt: number };

/** The keys of one batch sized small enough to DUMP, not requested yet. */
interface Queued {
  batch: Batch;
  keys: Buffer[];
  sizes: number[];
  at: number;
}

/** Thrown inside the reply parser when a reply is not what the copy asked for. */
class ReplyError extends Error {}

class ScanCopier {
  private readonly batchSize: number;
  private readonly bigKeyBytes: number;
  private readonly maxInFlight: number;

  // Source side: what its replies answer (a queue with a head index), the parser's partial input.
  private readonly expected: Expected[] = [];
  private expectedHead = 0;
  private partial: Buffer[] = [];
  private partialLength = 0;
  private need = 0;
  // The reply just parsed: its type byte, integer (or bulk length), and bulk bounds (-1: null).
  private kind = 0;
  private value = 0;
  private start = 0;
  private end = 0;

  // Target side: each RESTORE unanswered (its key and batch; undefined for SELECT), its output end.
  private readonly pendingKey: Array<Buffer | undefined> = [];
  private readonly pendingBatch: Array<Batch | undefined> = [];
  private readonly pendingEnd: number[] = [];
  private pendingHead = 0;
  private acknowledged = 0;
  private targetPartial: Buffer | undefined;

  // The database being copied.
  private db = -1;
  private state: DatabaseState = { cursor: '0', done: false, keys: 0, bytes: 0 };
  private cursor = '0';
  private scanning = false;
  private scanned = false;
  private readonly batches: Batch[] = [];
  private flowing = 0; // batches whose keys are still being read or written
  private readonly queue: Queued[] = [];
  private queuedKeys = 0; // sized small, DUMP not requested yet
  private readonly unsized: Queued[] = []; // scanned, MEMORY USAGE not requested yet
  private unsizedKeys = 0;
  private sizingKeys = 0; // MEMORY USAGE requested, not answered
  private dumpingKeys = 0; // DUMP requested, not answered
  private estimated = 0; // MEMORY USAGE of the keys whose DUMP is requested and not answered
  private readonly bigKeys: Array<{ batch: Batch; key: Buffer }> = [];
  private bigRunning = false;
  private throttledUntil = 0;
  private throttleTimer: NodeJS.Timeout | undefined;
  private unthrottled = 0; // bytes written since the throttle was last asked
  private checking = false;
  private checkAgain = false;
  private checks: Promise<void> = Promise.resolve();
  private saves: Promise<void> = Promise.resolve();
  private sourcePaused = false;
  private failure: Error | undefined;
  private finish: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(
    private readonly run: Run,
    private readonly reader: RespSocket,
    private readonly writer: RespSocket,
    /** `FREQ` under an LFU policy, else `IDLETIME`; undefined: neither can be read. */
    private readonly meta: 'IDLETIME' | 'FREQ' | undefined,
    /** PEXPIRETIME (Redis 7); without it PTTL, made absolute on arrival. */
    private readonly absolute: boolean,
  ) {
    const { options } = run;
    this.batchSize = options.batchSize ?? 1000;
    this.bigKeyBytes = options.bigKeyBytes ?? 8 * 1024 * 1024;
    this.maxInFlight = options.maxInFlightBytes ?? 32 * 1024 * 1024;
    reader.socket.on('data', (chunk: Buffer) => this.sourceData(chunk));
    writer.socket.on('data', (chunk: Buffer) => this.targetData(chunk));
    for (const side of [reader, writer]) {
      side.onLost = (error) => this.fail(error);
      if (side.lost) this.fail(side.lost);
    }
    options.signal?.addEventListener('abort', this.cancel, { once: true });
  }

  private readonly cancel = () => this.fail(new CancelledError(`Redis copy cancelled at db ${this.db}, cursor ${this.state.cursor}; resume with the same checkpoint.`));

  dispose(): void {
    this.run.options.signal?.removeEventListener('abort', this.cancel);
    this.reader.close();
    this.writer.close();
  }

  /** Copies database `db` from the state's cursor on; resolves once all of it is on the target. */
  copyDatabase(db: number, state: DatabaseState): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.db = db;
    this.state = state;
    this.cursor = state.cursor;
    this.scanning = false;
    this.scanned = false;
    this.reader.command('SELECT', String(db));
    this.expect({ kind: 'ok', what: `SELECT ${db}` });
    this.writer.command('SELECT', String(this.run.mapped(db)));
    this.pend(undefined, undefined);
    const done = new Promise<void>((resolve, reject) => {
      this.finish = { resolve, reject };
    });
    this.pump();
    return done;
  }

  /** Resolves after the last eviction check and checkpoint save asked for. */
  async settle(): Promise<void> {
    await this.checks;
    await this.saves;
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    this.reader.close();
    this.writer.close();
    this.finish?.reject(error);
  }

  private expect(entry: Expected): void {
    this.expected.push(entry);
  }

  private pend(key: Buffer | undefined, batch: Batch | undefined): void {
    this.pendingKey.push(key);
    this.pendingBatch.push(batch);
    this.pendingEnd.push(this.writer.produced);
  }

  private get inFlight(): number {
    return this.writer.produced - this.acknowledged;
  }

  /** Requests what the bounds allow: DUMPs of sized keys, and the next SCAN. */
  private pump(): void {
    if (this.failure) return;
    const { options, throttle } = this.run;
    if (options.signal?.aborted) {
      this.cancel();
      return;
    }
    const source = this.reader;
    // DUMPs first (their MEMORY USAGE was just read: the keys are still in the source's caches).
    while (this.queue.length > 0 && this.dumpingKeys < DEPTH && (this.estimated === 0 || this.estimated + this.inFlight < this.maxInFlight)) {
      const head = this.queue[0] as Queued;
      const count = Math.min(DUMP_RUN, head.keys.length - head.at);
      const keys = head.keys.slice(head.at, head.at + count);
      const sizes = head.sizes.slice(head.at, head.at + count);
      head.at += count;
      if (head.at === head.keys.length) this.queue.shift();
      for (const [index, key] of keys.entries()) {
        source.ensure(3 * key.length + 160);
        if (this.meta) {
          source.raw(OBJECT);
          source.raw(this.meta === 'FREQ' ? FREQ_ARG : IDLETIME_ARG);
          source.bulk(key, 0, key.length);
        }
        source.raw(this.absolute ? PEXPIRETIME : PTTL);
        source.bulk(key, 0, key.length);
        source.raw(DUMP);
        source.bulk(key, 0, key.length);
        this.estimated += sizes[index] as number;
      }
      this.queuedKeys -= count;
      this.dumpingKeys += count;
      head.batch.queued -= count;
      head.batch.dumping += count;
      this.expect({ kind: 'dump', batch: head.batch, keys, sizes, at: 0, step: this.meta ? 0 : 1, meta: -1, expireAt: 0 });
    }
    // Then the sizes of the next keys, a few runs ahead of the DUMPs.
    while (this.unsized.length > 0 && this.sizingKeys < DEPTH && this.queuedKeys < DEPTH) {
      const head = this.unsized[0] as Queued;
      const count = Math.min(DUMP_RUN, head.keys.length - head.at);
      const keys = head.keys.slice(head.at, head.at + count);
      head.at += count;
      if (head.at === head.keys.length) this.unsized.shift();
      for (const key of keys) {
        source.ensure(key.length + 48);
        source.raw(MEMORY_USAGE);
        source.bulk(key, 0, key.length);
      }
      this.unsizedKeys -= count;
      this.sizingKeys += count;
      this.expect({ kind: 'size', batch: head.batch, keys, at: 0 });
    }
    if (throttle && this.unthrottled > 0) {
      const wait = throttle.delayFor(this.unthrottled);
      this.unthrottled = 0;
      if (wait > 0) this.throttledUntil = Math.max(this.throttledUntil, performance.now() + wait);
    }
    const canScan =
      !this.scanning &&
      !this.scanned &&
      this.unsizedKeys < this.batchSize &&
      this.flowing < MAX_OPEN_BATCHES &&
      this.estimated + this.inFlight < this.maxInFlight;
    if (canScan) {
      const wait = this.throttledUntil - performance.now();
      if (wait > 0) {
        this.throttleTimer ??= setTimeout(() => {
          this.throttleTimer = undefined;
          this.pump();
        }, wait);
      } else {
        this.scanning = true;
        source.command('SCAN', this.cursor, 'COUNT', String(this.batchSize));
        this.expect({ kind: 'scan', db: this.db });
      }
    }
    source.flushSoon();
  }

  // ---- Source replies ----

  private sourceData(chunk: Buffer): void {
    if (this.failure) return;
    let buffer = chunk;
    if (this.partialLength > 0) {
      this.partial.push(chunk);
      this.partialLength += chunk.length;
      if (this.partialLength < this.need) return; // a large reply, still arriving: concatenated once whole
      buffer = Buffer.concat(this.partial, this.partialLength);
      this.partial = [];
      this.partialLength = 0;
    }
    let position: number;
    try {
      position = this.replies(buffer);
    } catch (error) {
      this.fail(error instanceof ReplyError ? new ArmadaError('Unknown', error.message) : (error as Error));
      return;
    }
    if (position < buffer.length) {
      this.partial = [buffer.subarray(position)];
      this.partialLength = buffer.length - position;
    }
    this.writer.flushSoon();
    this.pump();
    if (this.inFlight > this.maxInFlight && !this.sourcePaused) {
      this.sourcePaused = true;
      this.reader.socket.pause();
    }
  }

  /** Parses one reply at `position`: its end, or -1 if it is not all there yet (`need`: its length, when known). */
  private reply(buffer: Buffer, position: number): number {
    const length = buffer.length;
    if (position >= length) return -1;
    const kind = buffer[position] as number;
    if (kind === 43 || kind === 45) {
      const end = buffer.indexOf(10, position);
      if (end < 0) return -1;
      this.kind = kind;
      this.start = position + 1;
      this.end = end - 1;
      return end + 1;
    }
    let at = position + 1;
    let negative = false;
    if (buffer[at] === 45) {
      negative = true;
      at++;
    }
    let value = 0;
    for (; at < length; at++) {
      const byte = buffer[at] as number;
      if (byte === 13) break;
      value = value * 10 + byte - 48;
    }
    if (at + 1 >= length) return -1;
    this.kind = kind;
    this.value = negative ? -value : value;
    if (kind === 36) {
      if (negative) {
        this.start = -1;
        return at + 2;
      }
      const start = at + 2;
      const end = start + value;
      if (end + 2 > length) {
        this.need = end + 2 - position;
        return -1;
      }
      this.start = start;
      this.end = end;
      return end + 2;
    }
    if (kind !== 58 && kind !== 42) throw new ReplyError(`The source Redis at ${this.reader.where} sent a reply the copy cannot read (type ${String.fromCharCode(kind)}).`);
    return at + 2;
  }

  private errorText(buffer: Buffer): string {
    return buffer.toString('utf8', this.start, this.end);
  }

  /** Handles every whole reply in `buffer`: where the first incomplete one starts. */
  private replies(buffer: Buffer): number {
    let position = 0;
    this.need = 0;
    for (;;) {
      const entry = this.expected[this.expectedHead];
      if (entry === undefined) {
        if (position < buffer.length) throw new ReplyError(`The source Redis at ${this.reader.where} sent a reply nobody asked for.`);
        break;
      }
      if (entry.kind === 'dump') {
        // The hot loop: OBJECT IDLETIME|FREQ (optional), PEXPIRETIME|PTTL and DUMP of each key.
        const end = this.reply(buffer, position);
        if (end < 0) break;
        position = end;
        if (entry.step === 0) {
          entry.meta = this.kind === 58 ? this.value : -1; // null (gone) or an error (policy changed): none
          entry.step = 1;
        } else if (entry.step === 1) {
          if (this.kind !== 58) throw new ReplyError(`${this.absolute ? 'PEXPIRETIME' : 'PTTL'} of key ${JSON.stringify((entry.keys[entry.at] as Buffer).toString())} failed on the source Redis at ${this.reader.where}: ${this.errorText(buffer)}`);
          entry.expireAt = this.absolute || this.value < 0 ? this.value : Date.now() + this.value;
          entry.step = 2;
        } else {
          const key = entry.keys[entry.at] as Buffer;
          if (this.kind === 45) throw new ReplyError(`DUMP of key ${JSON.stringify(key.toString())} (db ${entry.batch.db}) failed on the source Redis at ${this.reader.where}: ${this.errorText(buffer)}`);
          this.estimated -= entry.sizes[entry.at] as number;
          this.dumpingKeys--;
          const expireAt = entry.expireAt;
          // Gone since SCAN (-2, or a null DUMP), or expired: RESTORE would not create it anyway.
          if (this.start >= 0 && expireAt !== -2 && !(expireAt > 0 && expireAt <= Date.now())) {
            if (this.end - this.start > this.bigKeyBytes) this.big(entry.batch, key); // serialized, it is big after all
            else this.restore(entry.batch, key, expireAt, buffer, entry.meta);
          }
          entry.batch.dumping--;
          entry.at++;
          entry.step = this.meta ? 0 : 1;
          if (entry.at === entry.keys.length) {
            this.expectedHead++;
            this.done(entry.batch);
          }
        }
      } else if (entry.kind === 'size') {
        const end = this.reply(buffer, position);
        if (end < 0) break;
        position = end;
        this.sized(entry, buffer);
      } else if (entry.kind === 'scan') {
        const end = this.scanReply(buffer, position, entry.db);
        if (end < 0) break;
        position = end;
        this.expectedHead++;
      } else {
        const end = this.reply(buffer, position);
        if (end < 0) break;
        position = end;
        if (this.kind === 45) throw new ReplyError(`${entry.what} failed on the source Redis at ${this.reader.where}: ${this.errorText(buffer)}`);
        this.expectedHead++;
      }
    }
    if (this.expectedHead > 4096) {
      this.expected.splice(0, this.expectedHead);
      this.expectedHead = 0;
    }
    return position;
  }

  /** A SCAN reply, whole: the batch it starts (and its MEMORY USAGE requests). */
  private scanReply(buffer: Buffer, position: number, db: number): number {
    let at = this.reply(buffer, position);
    if (at < 0) return -1;
    if (this.kind === 45) throw new ReplyError(`SCAN failed on the source Redis at ${this.reader.where}: ${this.errorText(buffer)}`);
    at = this.reply(buffer, at);
    if (at < 0) return -1;
    const next = buffer.toString('latin1', this.start, this.end);
    at = this.reply(buffer, at);
    if (at < 0) return -1;
    const count = this.value;
    const bounds: number[] = [];
    for (let index = 0; index < count; index++) {
      at = this.reply(buffer, at);
      if (at < 0) return -1;
      bounds.push(this.start, this.end);
    }
    // One copy of the reply's bytes; the key names are views of it.
    const names = Buffer.from(buffer.subarray(position, at));
    const keys: Buffer[] = new Array(count);
    for (let index = 0; index < count; index++) keys[index] = names.subarray((bounds[2 * index] as number) - position, (bounds[2 * index + 1] as number) - position);
    this.scanning = false;
    this.cursor = next;
    if (next === '0') this.scanned = true;
    const batch: Batch = { db, next, sizing: count, queued: 0, dumping: 0, restoring: 0, big: 0, written: 0, bytes: 0, flowing: true };
    this.batches.push(batch);
    this.flowing++;
    if (count === 0) {
      this.done(batch);
      return at;
    }
    this.unsized.push({ batch, keys, sizes: [], at: 0 });
    this.unsizedKeys += count;
    return at;
  }

  /** A MEMORY USAGE reply: the key is queued for DUMP, or for the piecewise copy, or was gone. */
  private sized(entry: Extract<Expected, { kind: 'size' }>, buffer: Buffer): void {
    const { batch } = entry;
    const key = entry.keys[entry.at] as Buffer;
    entry.at++;
    batch.sizing--;
    this.sizingKeys--;
    if (this.kind === 45) throw new ReplyError(`MEMORY USAGE of key ${JSON.stringify(key.toString())} failed on the source Redis at ${this.reader.where}: ${this.errorText(buffer)}`);
    if (this.kind === 58) {
      if (this.value > BIG_BY_MEMORY * this.bigKeyBytes) this.big(batch, key);
      else {
        let queued = this.queue.at(-1);
        if (queued?.batch !== batch) {
          queued = { batch, keys: [], sizes: [], at: 0 };
          this.queue.push(queued);
        }
        queued.keys.push(key);
        queued.sizes.push(this.value);
        batch.queued++;
        this.queuedKeys++;
      }
    } // else null: gone since SCAN
    if (entry.at === entry.keys.length) {
      this.expectedHead++;
      this.done(batch);
    }
  }

  private big(batch: Batch, key: Buffer): void {
    batch.big++;
    this.bigKeys.push({ batch, key });
    this.copyBigKeys();
  }

  // ---- Target side ----

  private restore(batch: Batch, key: Buffer, expireAt: number, buffer: Buffer, meta: number): void {
    const out = this.writer;
    const payload = this.end - this.start;
    out.ensure(key.length + payload + 160);
    // ABSTTL only with an expiry, IDLETIME only when idle (RESTORE makes a key fresh): fewer bytes.
    // FREQ always (without it a key starts at LFU_INIT_VAL, 5). -1: the source gave none.
    const withMeta = this.meta === 'FREQ' ? meta >= 0 : this.meta !== undefined && meta > 0;
    out.raw(RESTORE_HEAD[(expireAt > 0 ? 1 : 0) + (withMeta ? 2 : 0)] as Buffer);
    out.bulk(key, 0, key.length);
    if (expireAt > 0) out.bulkInteger(expireAt);
    else out.raw(TTL_NONE);
    out.bulk(buffer, this.start, this.end);
    out.raw(REPLACE);
    if (expireAt > 0) out.raw(ABSTTL);
    if (withMeta) {
      out.raw(this.meta === 'FREQ' ? FREQ_OPTION : IDLETIME_OPTION);
      out.bulkInteger(meta);
    }
    this.pend(key, batch);
    batch.restoring++;
    batch.bytes += payload;
    this.unthrottled += payload;
  }

  private targetData(chunk: Buffer): void {
    if (this.failure) return;
    const buffer = this.targetPartial ? Buffer.concat([this.targetPartial, chunk]) : chunk;
    this.targetPartial = undefined;
    let position = 0;
    const length = buffer.length;
    while (position < length) {
      let next: number;
      // The common reply, +OK\r\n, without searching.
      if (buffer[position] === 43 && buffer[position + 3] === 13 && buffer[position + 4] === 10) next = position + 5;
      else {
        const end = buffer.indexOf(10, position);
        if (end < 0) {
          this.targetPartial = buffer.subarray(position);
          break;
        }
        next = end + 1;
        if (buffer[position] !== 43) {
          this.restoreFailed(buffer.toString('utf8', position + 1, end - 1));
          return;
        }
      }
      position = next;
      const index = this.pendingHead++;
      this.acknowledged = this.pendingEnd[index] as number;
      const batch = this.pendingBatch[index];
      if (batch) {
        batch.restoring--;
        batch.written++;
        if (batch.restoring === 0) this.done(batch);
      }
    }
    if (this.pendingHead > 65536) {
      this.pendingKey.splice(0, this.pendingHead);
      this.pendingBatch.splice(0, this.pendingHead);
      this.pendingEnd.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    if (this.sourcePaused && this.inFlight < this.maxInFlight / 2) {
      this.sourcePaused = false;
      this.reader.socket.resume();
    }
    this.pump();
  }

  private restoreFailed(reply: string): void {
    const key = this.pendingKey[this.pendingHead];
    const batch = this.pendingBatch[this.pendingHead];
    const what = key && batch ? `RESTORE of key ${JSON.stringify(key.toString())} (target db ${this.run.mapped(batch.db)})` : 'A command';
    const written = this.run.items + this.batches.reduce((sum, open) => sum + open.written, 0);
    const hint = /^OOM/.test(reply)
      ? ' The target is out of memory (its maxmemory, with noeviction): give it more memory, or copy fewer databases.'
      : /payload version or checksum/i.test(reply)
        ? ' The target may be an older Redis than the source, which cannot read its DUMP format.'
        : '';
    this.fail(
      new ArmadaError('Unknown', `${what} failed on the target Redis at ${this.writer.where}: ${reply}.${hint} ${written} keys (${this.run.bytes} bytes) had been written before it; resume with the same checkpoint.`),
    );
  }

  // ---- Big keys, beside the stream, on the ioredis connections ----

  private copyBigKeys(): void {
    if (this.bigRunning) return;
    this.bigRunning = true;
    const { source, target, throttle, options } = this.run;
    const loop = async () => {
      for (let item = this.bigKeys.shift(); item; item = this.bigKeys.shift()) {
        if (this.failure) return;
        const { batch, key } = item;
        // With its absolute expiry (pieces.ts reads PEXPIRETIME itself); -1: gone meanwhile.
        const copied = await copyInPieces(source, target, key);
        if (copied >= 0) {
          batch.written++;
          batch.bytes += copied;
          this.run.bigKeys++;
          await throttle?.take(copied, options.signal);
        }
        batch.big--;
        this.done(batch);
      }
    };
    loop().then(
      () => {
        this.bigRunning = false;
        if (this.bigKeys.length > 0) this.copyBigKeys();
      },
      (error: Error) => this.fail(error),
    );
  }

  // ---- Batches done, in order ----

  private done(changed: Batch): void {
    if (changed.sizing > 0 || changed.queued > 0 || changed.dumping > 0 || changed.restoring > 0) return;
    if (changed.flowing) {
      changed.flowing = false;
      this.flowing--;
    }
    if (changed.big > 0) return;
    const { run } = this;
    let moved = false;
    for (let head = this.batches[0]; head; head = this.batches[0]) {
      if (head.sizing > 0 || head.queued > 0 || head.dumping > 0 || head.restoring > 0 || head.big > 0) break;
      this.batches.shift();
      moved = true;
      const state = this.state;
      state.cursor = head.next;
      state.keys += head.written;
      state.bytes += head.bytes;
      run.items += head.written;
      run.bytes += head.bytes;
      progress(run, `db ${head.db}`);
    }
    if (!moved) return;
    this.checkEvictions();
    const dbDone = this.scanned && this.batches.length === 0;
    if (dbDone) this.state.done = true;
    this.save();
    if (dbDone) {
      const finish = this.finish;
      this.finish = undefined;
      // Done once the eviction checks and the checkpoint say so.
      this.settle().then(
        () => (this.failure ? finish?.reject(this.failure) : finish?.resolve()),
        (error: Error) => finish?.reject(error),
      );
    } else this.pump();
  }

  private save(): void {
    const saved = this.run.saveCheckpoint(this.run.checkpoint);
    this.saves = saved.catch((error: Error) => this.fail(error));
  }

  /** `run.evictions.check()` after each batch; one at a time, the last one after the last batch. */
  private checkEvictions(): void {
    const evictions = this.run.evictions;
    if (!evictions) return;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    this.checks = evictions.check().then(
      () => {
        this.checking = false;
        if (this.checkAgain) {
          this.checkAgain = false;
          this.checkEvictions();
          return this.checks;
        }
      },
      (error: Error) => {
        this.checking = false;
        this.fail(error);
      },
    );
  }
}

/** `FREQ` under an LFU policy (OBJECT IDLETIME fails there), else `IDLETIME`: from INFO, which managed services allow. */
async function metadataToRead(source: Redis): Promise<'IDLETIME' | 'FREQ'> {
  const info = await source.info('memory');
  return /^maxmemory_policy:.*lfu/m.test(info) ? 'FREQ' : 'IDLETIME';
}

/** Whether the source has PEXPIRETIME (Redis 7+). */
async function hasPexpiretime(source: Redis): Promise<boolean> {
  try {
    await source.call('PEXPIRETIME', '__armada_probe__');
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies with SCAN, DUMP and RESTORE, database by database, saving the SCAN cursor after every
 * batch that is wholly on the target, so a killed copy resumes where it stopped.
 */
export async function copyByScan(run: Run): Promise<void> {
  const { source, target, options, checkpoint } = run;
  const [meta, absolute] = await Promise.all([metadataToRead(source), hasPexpiretime(source)]);
  const reader = await RespSocket.open(run.sourceEndpoint, 'source');
  let writer: RespSocket | undefined;
  let copier: ScanCopier | undefined;
  try {
    writer = await RespSocket.open(run.targetEndpoint, 'target');
    copier = new ScanCopier(run, reader, writer, meta, absolute);
    for (const db of run.databases) {
      const state = (checkpoint.databases[db] ??= { cursor: '0', done: false, keys: 0, bytes: 0 });
      if (state.done) continue;
      if (options.signal?.aborted) throw new CancelledError(`Redis copy cancelled at db ${db}, cursor ${state.cursor}; resume with the same checkpoint.`);
      // The ioredis connections copy the big keys of this database.
      await source.select(db);
      await target.select(run.mapped(db));
      if (run.occupied.includes(db) && options.replaceExisting && state.cursor === '0') await target.flushdb();
      try {
        await copier.copyDatabase(db, state);
      } catch (error) {
        await copier.settle().catch(() => undefined);
        throw error;
      }
    }
    // What socket buffers took in at once still counts: the copy ends when the rate says so.
    await run.throttle?.take(0, options.signal);
    await run.saveCheckpoint(checkpoint);
  } finally {
    copier?.dispose();
    reader.close();
    writer?.close();
  }
}
