/**
 * Writes `RESTORE key ttl payload ABSTTL REPLACE [IDLETIME s | FREQ n]` commands to the target
 * over a plain socket, with RESP built by hand into large buffers (no per-command objects or
 * promises), pipelined without waiting. String keys with no TTL and no LRU/LFU metadata (most
 * keys, often) go instead 64 to an `MSET`, their values decoded from the RDB: that halves what
 * the target spends on each. Replies are counted as they come back; the first error reply fails
 * the copy, naming its key (an MSET's first). `inFlightBytes` (written, not yet answered) lets
 * the caller bound memory.
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
import { lzfDecompressInto, type RdbRecord } from './rdb.js';
import { StringSpan } from './rdb-values.js';
import { connectRaw, copyInto, decimalDigits, encodeCommand, writeBulk, writeBulkInteger, writeDecimal } from './resp.js';

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
 * each one's key sits in the output (for an error message), how many keys it writes (0 for a
 * SELECT, many for an MSET), the output offset of its end, and the keys written up to and with it
 * (so that a run of replies is accounted at once, by its last command).
 */
class PendingRing {
  private capacity = 1 << 16;
  keyAt = new Float64Array(this.capacity);
  keyLength = new Int32Array(this.capacity);
  keys = new Int32Array(this.capacity);
  db = new Int32Array(this.capacity);
  end = new Float64Array(this.capacity);
  keysUpTo = new Float64Array(this.capacity);
  head = 0;
  size = 0;
  private total = 0;

  push(keyAt: number, keyLength: number, keys: number, db: number, end: number): void {
    if (this.size === this.capacity) this.grow();
    const index = (this.head + this.size) & (this.capacity - 1);
    this.total += keys;
    this.keyAt[index] = keyAt;
    this.keyLength[index] = keyLength;
    this.keys[index] = keys;
    this.db[index] = db;
    this.end[index] = end;
    this.keysUpTo[index] = this.total;
    this.size++;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    const fields = ['keyAt', 'keyLength', 'keys', 'db', 'end', 'keysUpTo'] as const;
    for (const field of fields) {
      const old = this[field];
      const grown = new (old.constructor as Float64ArrayConstructor | Int32ArrayConstructor)(capacity);
      for (let offset = 0; offset < this.size; offset++) grown[offset] = old[(this.head + offset) & (this.capacity - 1)] as number;
      (this as Record<(typeof fields)[number], Float64Array | Int32Array>)[field] = grown;
    }
    this.capacity = capacity;
    this.head = 0;
  }

  /** Index of the command `offset` places after the oldest. */
  at(offset: number): number {
    return (this.head + offset) & (this.capacity - 1);
  }

  /** Drops the `count` oldest commands. */
  shift(count: number): void {
    this.head = (this.head + count) & (this.capacity - 1);
    this.size -= count;
  }
}

/** Keys per MSET: enough that the per-command cost is spread thin, few enough that one reply is quick. */
const MSET_KEYS = 64;
/** Strings up to this size go in an MSET; longer ones are RESTOREd (an MSET's arguments stay small). */
const MSET_VALUE = 16 * 1024;

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
  // String keys gathered for the next MSET: their arguments, how many, and where the first key lies (for an error).
  private strings = Buffer.allocUnsafe(64 * 1024);
  private stringsUsed = 0;
  private stringKeys = 0;
  private firstKeyAt = 0;
  private firstKeyLength = 0;
  private readonly span = new StringSpan();
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
    this.pending.push(0, -1, 0, db, this.outStart + this.used);
  }

  select(db: number): void {
    if (db === this.db) return;
    this.flushStrings();
    this.db = db;
    this.command(['SELECT', String(db)], db);
  }

  /**
   * A string key with no TTL and no LRU/LFU metadata: gathered into an MSET (many keys per
   * command: a target spends about half on an MSET's key what it spends on a RESTORE's, and this
   * process builds no CRC for it). Its value is decoded from the RDB string (LZF-compressed or an
   * integer, often) straight into the MSET's arguments.
   */
  private setString(record: RdbRecord): void {
    const whole = record.parts.length === 0;
    const buffer = whole ? record.valueBuffer : Buffer.concat([...record.parts, record.valueBuffer.subarray(record.valueStart, record.valueEnd)]);
    const span = this.span.read(buffer, whole ? record.valueStart : 0);
    const digits = span.kind === 2 ? String(span.integer) : '';
    const valueLength = span.kind === 2 ? digits.length : span.length;
    const keyLength = record.keyEnd - record.keyStart;
    const room = keyLength + valueLength + 48;
    if (this.strings.length - this.stringsUsed < room) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.strings.length, this.stringsUsed + room));
      this.strings.copy(grown, 0, 0, this.stringsUsed);
      this.strings = grown;
    }
    const out = this.strings;
    if (this.stringKeys === 0) {
      this.firstKeyAt = this.stringsUsed + 3 + decimalDigits(keyLength);
      this.firstKeyLength = keyLength;
    }
    let at = writeBulk(out, this.stringsUsed, record.keyBuffer, record.keyStart, record.keyEnd);
    out[at++] = 36; // $
    at = writeDecimal(out, at, valueLength);
    out[at++] = 13;
    out[at++] = 10;
    if (span.kind === 0) at = copyInto(out, at, buffer, span.start, span.end);
    else if (span.kind === 1) {
      lzfDecompressInto(buffer, span.start, span.end, out, at, valueLength);
      at += valueLength;
    } else at += out.write(digits, at, 'latin1');
    out[at++] = 13;
    out[at++] = 10;
    this.stringsUsed = at;
    this.stringKeys++;
    if (this.stringKeys >= MSET_KEYS || this.stringsUsed >= FLUSH_BYTES) this.flushStrings();
  }

  /** The strings gathered so far, as one MSET. */
  private flushStrings(): void {
    const keys = this.stringKeys;
    if (keys === 0) return;
    this.stringKeys = 0;
    const bytes = this.stringsUsed;
    this.stringsUsed = 0;
    const head = Buffer.from(`*${2 * keys + 1}\r\n$4\r\nMSET\r\n`);
    this.ensure(head.length + bytes);
    let at = copyInto(this.out, this.used, head, 0, head.length);
    const keyAt = this.outStart + at + this.firstKeyAt;
    this.strings.copy(this.out, at, 0, bytes);
    at += bytes;
    this.used = at;
    this.commands++;
    this.pending.push(keyAt, this.firstKeyLength, keys, this.db, this.outStart + at);
  }

  /** RESTORE of one key from its RDB record (copied at once: the record may be reused after). */
  restore(record: RdbRecord): void {
    if (this.failure) throw this.failure;
    if (record.type === 0 && record.expireAt <= 0 && record.idle < 0 && record.freq < 0 && record.length <= MSET_VALUE) {
      this.setString(record);
      return;
    }
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
    this.pending.push(keyAt, keyLength, 1, this.db, this.outStart + at);
  }

  /** Runs `run` once every command written so far has been answered. */
  mark(run: () => void): void {
    this.flushStrings();
    if (this.replies === this.commands) run();
    else this.markers.push({ after: this.commands, run });
  }

  /**
   * Hands what is buffered to the socket soon: at once past 256 KiB, else once the chunks that
   * arrived together have all been parsed (fewer, larger writes).
   */
  flushSoon(): void {
    this.flushStrings();
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
    this.flushStrings();
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
    const length = buffer.length;
    let position = 0;
    // Replies answered in this chunk; the ring is advanced once, by the last of them.
    let answered = 0;
    while (position < length) {
      // The common reply, +OK\r\n, without searching.
      if (buffer[position] === 43 && position + 4 < length && buffer[position + 3] === 13 && buffer[position + 4] === 10) {
        position += 5;
        answered++;
        continue;
      }
      const end = buffer.indexOf(10, position);
      if (end < 0) {
        this.partial = buffer.subarray(position);
        break;
      }
      if (buffer[position] !== 43) {
        this.account(answered);
        this.failed(buffer.toString('utf8', position + 1, end - 1));
        return;
      }
      position = end + 1;
      answered++;
    }
    this.account(answered);
    // Output blocks wholly answered can go.
    while (this.blocks.length > 1 && (this.blocks[1] as { start: number }).start <= this.acknowledged) this.blocks.shift();
    while (this.markers.length > 0 && (this.markers[0] as { after: number }).after <= this.replies) this.markers.shift()?.run();
    if (this.replies === this.commands) for (const waiter of this.idle.splice(0)) waiter.resolve();
    this.onReplies?.(this.restored);
  }

  /** `count` more commands answered: keys restored and bytes acknowledged, read off the last of them. */
  private account(count: number): void {
    if (count === 0) return;
    const last = this.pending.at(count - 1);
    this.restored = this.pending.keysUpTo[last] as number;
    this.acknowledged = this.pending.end[last] as number;
    this.pending.shift(count);
    this.replies += count;
  }

  /** The oldest pending command was answered with an error: the copy fails, naming its key. */
  private failed(reply: string): void {
    const pending = this.pending;
    const index = pending.at(0);
    const key = this.keyOf(index);
    const keys = pending.keys[index] as number;
    const where = `(target db ${pending.db[index]})`;
    const what = !key ? 'A command' : keys > 1 ? `MSET of ${keys} keys, the first ${JSON.stringify(key.toString())} ${where},` : `RESTORE of key ${JSON.stringify(key.toString())} ${where}`;
    const oom = /^OOM\b/.test(reply);
    const hint = /payload version or checksum/i.test(reply)
      ? ' (the target may be an older Redis than the source, which cannot read its RDB format)'
      : oom
        ? ` (the target reached its maxmemory and its maxmemory-policy would not evict to make room). ${this.restored.toLocaleString('en-US')} keys (${mebibytes(this.acknowledged)} of commands) had been written before it (a few pipelined after it may have been applied too, as the target's memory use moved); give the target more maxmemory, or copy fewer databases`
        : '';
    this.fail(new ArmadaError('Unknown', `${what} failed on the target Redis at ${this.where}: ${reply}${hint}`));
  }
}
