/**
 * Writes `RESTORE key ttl payload ABSTTL REPLACE [IDLETIME s | FREQ n]` commands to the target over a plain socket, with
 * RESP built by hand into large buffers (no per-command objects or promises), pipelined without
 * waiting. Replies are counted as they come back; the first error reply fails the copy, naming
 * its key. `inFlightBytes` (written, not yet answered) lets the caller bound memory.
 *
 * The payload is the RDB value bytes (type byte first), the RDB version (2 bytes, little-endian)
 * and the CRC-64 of both (8 bytes, little-endian): exactly what DUMP returns. IDLETIME / FREQ
 * carry the LRU idle time / LFU counter the snapshot holds for the key (Redis writes them only
 * under an LRU / LFU maxmemory-policy). The target applies FREQ only if its own policy is LFU,
 * and IDLETIME only if it is not (Redis keeps one of the two per key): otherwise it is ignored.
 */
import type { Socket } from 'node:net';
import { ArmadaError, type DataEndpoint } from '@armada/core';
import { Crc64 } from './crc64.js';
import type { RdbRecord } from './rdb.js';
import { connectRaw, copyInto, encodeCommand, writeBulkInteger, writeDecimal } from './resp.js';

const CHUNK = 1 << 20;
const FLUSH_BYTES = 256 * 1024;
const RESTORE_HEAD = Buffer.from('*6\r\n$7\r\nRESTORE\r\n$');
// With IDLETIME or FREQ: two arguments more.
const RESTORE_HEAD_8 = Buffer.from('*8\r\n$7\r\nRESTORE\r\n$');
const RESTORE_TAIL = Buffer.from('\r\n$6\r\nABSTTL\r\n$7\r\nREPLACE\r\n');
const IDLETIME = Buffer.from('$8\r\nIDLETIME\r\n');
const FREQ = Buffer.from('$4\r\nFREQ\r\n');
const TTL_NONE = Buffer.from('$1\r\n0\r\n');

const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * The commands written and not answered yet, in rings of numbers (no object per command): where
 * each one's key sits in the output (for an error message), and the output offset of its end.
 */
class PendingRing {
  private capacity = 1 << 16;
  keyAt = new Float64Array(this.capacity);
  keyLength = new Int32Array(this.capacity);
  db = new Int32Array(this.capacity);
  end = new Float64Array(this.capacity);
  head = 0;
  size = 0;

  push(keyAt: number, keyLength: number, db: number, end: number): void {
    if (this.size === this.capacity) this.grow();
    const index = (this.head + this.size) & (this.capacity - 1);
    this.keyAt[index] = keyAt;
    this.keyLength[index] = keyLength;
    this.db[index] = db;
    this.end[index] = end;
    this.size++;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    const order = Array.from({ length: this.size }, (_, offset) => (this.head + offset) & (this.capacity - 1));
    const keyAt = new Float64Array(capacity);
    const keyLength = new Int32Array(capacity);
    const db = new Int32Array(capacity);
    const end = new Float64Array(capacity);
    order.forEach((from, to) => {
      keyAt[to] = this.keyAt[from] as number;
      keyLength[to] = this.keyLength[from] as number;
      db[to] = this.db[from] as number;
      end[to] = this.end[from] as number;
    });
    Object.assign(this, { capacity, keyAt, keyLength, db, end, head: 0 });
  }

  /** Index of the oldest command. */
  first(): number {
    return this.head;
  }

  shift(): void {
    this.head = (this.head + 1) & (this.capacity - 1);
    this.size--;
  }
}

export class RestoreWriter {
  private out = Buffer.allocUnsafe(CHUNK);
  private outStart = 0; // output offset of out[0]
  private used = 0;
  private written = 0; // output bytes handed to the socket
  private acknowledged = 0; // output bytes of the commands answered
  // Output blocks still unanswered, kept to name the key of a failed command.
  private readonly blocks: Array<{ buffer: Buffer; start: number }> = [];
  private readonly pending = new PendingRing();
  private readonly markers: Array<{ after: number; run: () => void }> = [];
  private commands = 0;
  private replies = 0;
  private partial: Buffer | undefined;
  private failure: Error | undefined;
  private db = -1;
  private flushScheduled = false;
  private readonly crc = new Crc64();
  private readonly footer = Buffer.alloc(10);
  private readonly idle: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  /** Called after replies arrive, with the number of RESTOREs answered so far. */
  onReplies: ((restored: number) => void) | undefined;
  /** Called once on the first failure (an error reply, or the connection lost). */
  onError: ((error: Error) => void) | undefined;
  restored = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly where: string,
  ) {
    this.blocks.push({ buffer: this.out, start: 0 });
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('error', (error) => this.fail(new ArmadaError('Unknown', `Lost the connection to the target Redis at ${where}: ${error.message}`, { cause: error, retryable: true })));
    socket.on('close', () => this.fail(new ArmadaError('Unknown', `The target Redis at ${where} closed the connection during the copy.`, { retryable: true })));
  }

  /** Connects (and authenticates) to the target. */
  static async open(endpoint: DataEndpoint): Promise<RestoreWriter> {
    return new RestoreWriter(await connectRaw(endpoint, 'target'), `${endpoint.host}:${endpoint.port}`);
  }

  /** The RDB version the payloads carry (the source's, from its RDB header). */
  set rdbVersion(version: number) {
    this.footer.writeUInt16LE(version, 0);
  }

  /** Bytes written and not answered yet. */
  get inFlightBytes(): number {
    return this.outStart + this.used - this.acknowledged;
  }

  private ensure(bytes: number): void {
    if (this.out.length - this.used >= bytes) return;
    this.flush();
    this.out = Buffer.allocUnsafe(Math.max(CHUNK, bytes));
    this.used = 0;
    this.outStart = this.written;
    this.blocks.push({ buffer: this.out, start: this.outStart });
  }

  /** A plain command (SELECT), answered by +OK. */
  private command(args: string[], db: number): void {
    const encoded = encodeCommand(args);
    this.ensure(encoded.length);
    this.used = copyInto(this.out, this.used, encoded, 0, encoded.length);
    this.commands++;
    this.pending.push(0, -1, db, this.outStart + this.used);
  }

  select(db: number): void {
    if (db === this.db) return;
    this.db = db;
    this.command(['SELECT', String(db)], db);
  }

  /** RESTORE of one key from its RDB record (copied at once: the record may be reused after). */
  restore(record: RdbRecord): void {
    if (this.failure) throw this.failure;
    const keyLength = record.keyEnd - record.keyStart;
    const payload = 1 + record.length + 10;
    // The snapshot holds one of the two at most (FREQ under an LFU policy, IDLE under an LRU one).
    const lfu = record.freq >= 0;
    const meta = lfu ? record.freq : record.idle;
    this.ensure(RESTORE_HEAD.length + 80 + keyLength + payload + RESTORE_TAIL.length + 48);
    const out = this.out;
    const head = meta >= 0 ? RESTORE_HEAD_8 : RESTORE_HEAD;
    let at = copyInto(out, this.used, head, 0, head.length);
    at = writeDecimal(out, at, keyLength);
    out[at++] = 13;
    out[at++] = 10;
    const keyAt = this.outStart + at;
    at = copyInto(out, at, record.keyBuffer, record.keyStart, record.keyEnd);
    out[at++] = 13;
    out[at++] = 10;
    const ttl = Math.max(record.expireAt, 0);
    at = ttl === 0 ? copyInto(out, at, TTL_NONE, 0, TTL_NONE.length) : writeBulkInteger(out, at, ttl);
    out[at++] = 36;
    at = writeDecimal(out, at, payload);
    out[at++] = 13;
    out[at++] = 10;
    const start = at;
    out[at++] = record.type;
    for (const part of record.parts) at = copyInto(out, at, part, 0, part.length);
    at = copyInto(out, at, record.valueBuffer, record.valueStart, record.valueEnd);
    out[at++] = this.footer[0] as number;
    out[at++] = this.footer[1] as number;
    const crc = this.crc;
    crc.lo = 0;
    crc.hi = 0;
    crc.update(out, start, at);
    crc.writeLE(out, at);
    at += 8;
    at = copyInto(out, at, RESTORE_TAIL, 0, RESTORE_TAIL.length);
    if (meta >= 0) {
      const name = lfu ? FREQ : IDLETIME;
      at = copyInto(out, at, name, 0, name.length);
      at = writeBulkInteger(out, at, meta);
    }
    this.used = at;
    this.commands++;
    this.pending.push(keyAt, keyLength, this.db, this.outStart + at);
  }

  /** Runs `run` once every command written so far has been answered. */
  mark(run: () => void): void {
    if (this.replies === this.commands) run();
    else this.markers.push({ after: this.commands, run });
  }

  /**
   * Hands what is buffered to the socket soon: at once past 256 KiB, else once the chunks that
   * arrived together have all been parsed (fewer, larger writes).
   */
  flushSoon(): void {
    if (this.outStart + this.used - this.written >= FLUSH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (!this.failure) this.flush();
      });
    }
  }

  /** Hands what is buffered to the socket. */
  flush(): void {
    const from = this.written - this.outStart;
    if (this.used === from) return;
    this.socket.write(this.out.subarray(from, this.used));
    this.written = this.outStart + this.used;
  }

  /** Flushes, and resolves when every command has been answered. */
  drain(): Promise<void> {
    this.flush();
    if (this.failure) return Promise.reject(this.failure);
    if (this.replies === this.commands) return Promise.resolve();
    return new Promise((resolve, reject) => this.idle.push({ resolve, reject }));
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.socket.destroy();
    for (const waiter of this.idle.splice(0)) waiter.reject(error);
    this.onError?.(error);
  }

  /** The key of a pending command, read back from the output. */
  private keyOf(index: number): Buffer | undefined {
    const length = this.pending.keyLength[index] as number;
    if (length < 0) return undefined;
    const at = this.pending.keyAt[index] as number;
    const block = this.blocks.findLast((candidate) => candidate.start <= at);
    return block ? Buffer.from(block.buffer.subarray(at - block.start, at - block.start + length)) : undefined;
  }

  private data(chunk: Buffer): void {
    if (this.failure) return;
    const buffer = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    const pending = this.pending;
    let position = 0;
    let restored = 0;
    while (position < buffer.length) {
      const first = buffer[position];
      // The common reply, +OK\r\n, without searching.
      let next: number;
      if (first === 43 && buffer[position + 3] === 13 && buffer[position + 4] === 10) next = position + 5;
      else {
        const end = buffer.indexOf(10, position);
        if (end < 0) {
          this.partial = buffer.subarray(position);
          break;
        }
        next = end + 1;
        if (first !== 43) {
          const index = pending.first();
          const key = this.keyOf(index);
          const reply = buffer.toString('utf8', position + 1, end - 1);
          const what = key ? `RESTORE of key ${JSON.stringify(key.toString())} (target db ${pending.db[index]})` : 'A command';
          const oom = /^OOM\b/.test(reply);
          const hint = /payload version or checksum/i.test(reply)
            ? ' (the target may be an older Redis than the source, which cannot read its RDB format)'
            : oom
              ? ` (the target reached its maxmemory and its maxmemory-policy would not evict to make room). ${(this.restored + restored).toLocaleString('en-US')} keys (${mebibytes(this.acknowledged)} of RESTORE commands) had been written before it (a few pipelined after it may have been applied too, as the target's memory use moved); give the target more maxmemory, or copy fewer databases`
              : '';
          this.fail(new ArmadaError('Unknown', `${what} failed on the target Redis at ${this.where}: ${reply}${hint}`));
          return;
        }
      }
      position = next;
      const index = pending.first();
      if ((pending.keyLength[index] as number) >= 0) restored++;
      this.acknowledged = pending.end[index] as number;
      pending.shift();
      this.replies++;
    }
    // Output blocks wholly answered can go.
    while (this.blocks.length > 1 && (this.blocks[1] as { start: number }).start <= this.acknowledged) this.blocks.shift();
    this.restored += restored;
    while (this.markers.length > 0 && (this.markers[0] as { after: number }).after <= this.replies) this.markers.shift()?.run();
    if (this.replies === this.commands) for (const waiter of this.idle.splice(0)) waiter.resolve();
    this.onReplies?.(this.restored);
  }
}
