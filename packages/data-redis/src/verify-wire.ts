/**
 * Verify's fastest path, for two servers that both have PEXPIRETIME (Redis 7): each batch is sent
 * as the same bytes to both servers over plain sockets (per key `PEXPIRETIME k` and
 * `GETRANGE k 0 4095`), and the replies are compared byte for byte, key by key, without decoding
 * them into objects. Equal bytes of a string shorter than 4096 bytes prove the key equal: its
 * whole value and its absolute expiry. Expiries are parsed only when their bytes differ (a scan
 * copy sets TTLs a few ms late) and compared within the tolerance then. Everything else (keys
 * whose replies differ, strings of 4096 bytes or more, and other types, which GETRANGE answers
 * with WRONGTYPE) the caller compares the other ways, which name each difference.
 *
 * Why: the per-key calls of a Lua script cost each server ~1.5-2 µs; the same reads as plain
 * commands cost a fraction of that, and this process only walks reply bytes. GETRANGE rather than
 * MGET: a batch's replies stay bounded (4 KiB a key) whatever size its strings are.
 *
 * PEXPIRETIME comes first for each key: on a master it reclaims a key whose TTL has passed (a
 * replica answers it as absent), so that GETRANGE then sees it absent too.
 */
import type { Socket } from 'node:net';
import { ArmadaError, type DataEndpoint } from '@armada/core';
import { connectRaw, copyInto, encodeCommand, writeBulk, writeDecimal } from './resp.js';

const CR = 13;
const EMPTY = Buffer.alloc(0);
/** GETRANGE's range: the whole value of a string shorter than PREFIX bytes. */
export const PREFIX = 4096;
const WRONGTYPE = Buffer.from('-WRONGTYPE');

/** The replies to a run of commands: their bytes and, per reply, where it starts and ends. */
export interface WireReplies {
  bytes: Buffer;
  /** [start, end) of reply i at 2i, 2i + 1. */
  bounds: Int32Array;
}

interface Waiting {
  /** Replies expected, and walked so far. */
  expected: number;
  walked: number;
  bounds: Int32Array;
  resolve: (replies: WireReplies) => void;
  reject: (error: Error) => void;
}

/** The decimal number between `start` (after the type byte) and `end`. */
export function decimal(buffer: Buffer, start: number, end: number): number {
  let negative = false;
  let value = 0;
  for (let at = start; at < end; at++) {
    const byte = buffer[at] as number;
    if (byte === 45) negative = true;
    else value = value * 10 + byte - 48;
  }
  return negative ? -value : value;
}

/** The end of the reply at `at` (arrays with their elements), or -1 when it is not all here yet. */
export function skip(buffer: Buffer, at: number): number {
  const eol = buffer.indexOf(CR, at);
  if (eol < 0 || eol + 1 >= buffer.length) return -1;
  const kind = buffer[at];
  let end = eol + 2;
  if (kind === 36) {
    const length = decimal(buffer, at + 1, eol);
    if (length >= 0) end += length + 2;
    return end > buffer.length ? -1 : end;
  }
  if (kind === 42) {
    const count = decimal(buffer, at + 1, eol);
    for (let element = 0; element < count && end >= 0; element++) end = skip(buffer, end);
  }
  return end;
}

function firstError(bytes: Buffer, bounds: Int32Array): string | undefined {
  for (let reply = 0; reply < bounds.length; reply += 2) {
    const start = bounds[reply] as number;
    if (bytes[start] === 45 && bytes.compare(WRONGTYPE, 0, WRONGTYPE.length, start, start + WRONGTYPE.length) !== 0) return bytes.toString('latin1', start + 1, (bounds[reply + 1] as number) - 2);
  }
  return undefined;
}

/** A plain socket speaking RESP2 to one server, replies walked in place (see the module comment). */
export class WireConnection {
  /** The bytes received and not handed over: `store[0, buffer.length)`. */
  private buffer: Buffer = EMPTY;
  /** Where `buffer` lives, with room to grow: a chunk appended is copied once, not the whole buffer again. */
  private store: Buffer = EMPTY;
  /** Bytes of `buffer` walked: whole top-level replies of the batch at the head of `waiting`. */
  private parsed = 0;
  private readonly waiting: Waiting[] = [];
  private lost: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly role: 'source' | 'target',
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    const lose = (error: Error) => {
      this.lost ??= error;
      for (const waiting of this.waiting.splice(0)) waiting.reject(this.lost);
    };
    socket.on('error', (error) => lose(new ArmadaError('Unknown', `Redis verify: lost the connection to the ${role}: ${error.message}`, { cause: error })));
    socket.on('close', () => lose(new ArmadaError('Unknown', `Redis verify: the ${role} closed the connection.`)));
  }

  /** Connects and authenticates as the client verify opened already did (so the password is known to work). */
  static async open(endpoint: DataEndpoint, role: 'source' | 'target'): Promise<WireConnection> {
    return new WireConnection(await connectRaw(endpoint, role), role);
  }

  /** One command (SELECT); its error reply thrown. */
  async call(...args: string[]): Promise<void> {
    await this.send(encodeCommand(args), 1);
  }

  /**
   * Sends commands (see `Commands`) and resolves with their `replies` replies. An error reply
   * rejects, but for WRONGTYPE: the answer of a read of another type, which the caller expects.
   */
  send(commands: Buffer, replies: number): Promise<WireReplies> {
    if (this.lost) return Promise.reject(this.lost);
    this.socket.write(commands);
    return new Promise((resolve, reject) => {
      this.waiting.push({ expected: replies, walked: 0, bounds: new Int32Array(2 * replies), resolve, reject });
    });
  }

  private receive(chunk: Buffer): void {
    const size = this.buffer.length;
    if (size === 0) {
      this.store = chunk;
      this.buffer = chunk;
    } else {
      if (this.store.length - size < chunk.length) {
        const grown = Buffer.allocUnsafe(Math.max(2 * this.store.length, size + chunk.length));
        this.buffer.copy(grown, 0, 0, size);
        this.store = grown;
      }
      chunk.copy(this.store, size);
      this.buffer = this.store.subarray(0, size + chunk.length);
    }
    try {
      this.walk();
    } catch (error) {
      // Replies that do not fit what was asked: the connection is of no more use.
      this.socket.destroy(error as Error);
    }
  }

  /** Walks whole replies; a run complete is handed over with its bytes (which the buffer then drops). */
  private walk(): void {
    for (;;) {
      const head = this.waiting[0];
      if (!head) {
        if (this.buffer.length > 0) throw new ArmadaError('Unknown', `Redis verify: the ${this.role} answered more than was asked`);
        return;
      }
      while (head.walked < head.expected) {
        // A reply not all here yet is walked again, whole, with the next chunk.
        const end = skip(this.buffer, this.parsed);
        if (end < 0) return;
        head.bounds[2 * head.walked] = this.parsed;
        head.bounds[2 * head.walked + 1] = end;
        this.parsed = end;
        head.walked++;
      }
      this.waiting.shift();
      const bytes = this.buffer.subarray(0, this.parsed);
      // The rest moves to a store of its own: the bytes handed over stay the caller's.
      const rest = this.buffer.length - this.parsed;
      if (rest === 0) this.store = this.buffer = EMPTY;
      else {
        this.store = Buffer.allocUnsafe(Math.max(1 << 16, this.parsed + rest));
        this.buffer.copy(this.store, 0, this.parsed);
        this.buffer = this.store.subarray(0, rest);
      }
      this.parsed = 0;
      const error = firstError(bytes, head.bounds);
      if (error) head.reject(new ArmadaError('Unknown', `Redis verify: the ${this.role} answered ${error}`));
      else head.resolve({ bytes, bounds: head.bounds });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Commands for both servers, the same bytes, built in one buffer. */
export class Commands {
  private out = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  /** Commands written, and so replies to expect. */
  count = 0;

  /** Empties it for reuse, keeping its buffer. */
  reset(): void {
    this.used = 0;
    this.count = 0;
  }

  private room(bytes: number): void {
    if (this.out.length - this.used >= bytes) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.out.length, this.used + bytes));
    this.out.copy(grown, 0, 0, this.used);
    this.out = grown;
  }

  /** A command of constant head bytes (`*<n>\r\n$..\r\nNAME\r\n`), the key, and constant tail bytes. */
  add(head: Buffer, key: Buffer, tail: Buffer = EMPTY): void {
    this.room(head.length + key.length + tail.length + 16);
    // Byte by byte (copyInto, writeDecimal): cheaper than Buffer.write and copy for short parts.
    const out = this.out;
    const at = writeBulk(out, copyInto(out, this.used, head, 0, head.length), key, 0, key.length);
    this.used = copyInto(out, at, tail, 0, tail.length);
    this.count++;
  }

  /** A command of constant head bytes and the key `buffer[start, end)`. */
  addKey(head: Buffer, buffer: Buffer, start: number, end: number): void {
    this.room(head.length + end - start + 16);
    this.used = writeBulk(this.out, copyInto(this.out, this.used, head, 0, head.length), buffer, start, end);
    this.count++;
  }

  /** Bytes as they are (a command's further arguments, counted by the caller). */
  raw(bytes: Buffer, start = 0, end = bytes.length): void {
    this.room(end - start);
    this.used = copyInto(this.out, this.used, bytes, start, end);
  }

  /** `$<length>\r\n<bytes>\r\n` of `buffer[start, end)`, not counted as a command (an argument, or an expected reply). */
  bulk(buffer: Buffer, start = 0, end = buffer.length): void {
    this.room(end - start + 16);
    this.used = writeBulk(this.out, this.used, buffer, start, end);
  }

  /** One byte as it is. */
  byte(value: number): void {
    this.room(1);
    this.out[this.used++] = value;
  }

  /** An integer reply, `:<value>\r\n` (value >= 0): what a command answering it is expected to. */
  integerReply(value: number): void {
    this.room(24);
    this.out[this.used] = 58; // :
    this.used = writeDecimal(this.out, this.used + 1, value);
    this.out[this.used++] = 13;
    this.out[this.used++] = 10;
  }

  /** A bulk of `length` bytes for the caller to write into `buffer` at the offset returned. */
  reserveBulk(length: number): number {
    this.room(length + 16);
    this.out[this.used] = 36; // $
    let at = writeDecimal(this.out, this.used + 1, length);
    this.out[at++] = 13;
    this.out[at++] = 10;
    const body = at;
    at += length;
    this.out[at++] = 13;
    this.out[at++] = 10;
    this.used = at;
    return body;
  }

  /** The buffer written into (replaced when it grows: read it after writing). */
  get buffer(): Buffer {
    return this.out;
  }

  get length(): number {
    return this.used;
  }

  bytes(): Buffer {
    return this.out.subarray(0, this.used);
  }
}

/** A command's constant bytes: its argument count (the key included) and its arguments before the key. */
const head = (count: number, ...args: string[]) => Buffer.from(`*${count}\r\n${args.map((arg) => `$${arg.length}\r\n${arg}\r\n`).join('')}`);
/** Constant arguments after the key. */
const tail = (...args: string[]) => Buffer.from(args.map((arg) => `$${arg.length}\r\n${arg}\r\n`).join(''));

export const PEXPIRETIME = head(2, 'PEXPIRETIME');
export const GETRANGE = head(4, 'GETRANGE');
export const GETRANGE_TAIL = tail('0', String(PREFIX - 1));
export const TYPE = head(2, 'TYPE');
export const DUMP = head(2, 'DUMP');

/** Round 1: per key PEXPIRETIME, then GETRANGE of its first PREFIX bytes (WRONGTYPE for other types). */
export function batchCommands(keys: Buffer[]): Commands {
  const commands = new Commands();
  for (const key of keys) {
    commands.add(PEXPIRETIME, key);
    commands.add(GETRANGE, key, GETRANGE_TAIL);
  }
  return commands;
}

/** Elements up to which a collection is read whole and compared by its reply bytes. */
export const WHOLE = 128;

/**
 * The read of a collection that answers it whole when it has at most WHOLE elements (and says
 * so: `complete`). Lists and sorted sets have one order; a hash's or set's *SCAN order is its
 * encoding's, the same on both sides when copied alike (else the bytes differ and the caller
 * digests it), and one call that ends with cursor 0 has walked all of it.
 */
export const COLLECTION_READS: Record<string, { head: Buffer; tail: Buffer }> = {
  hash: { head: head(5, 'HSCAN'), tail: tail('0', 'COUNT', String(WHOLE)) },
  set: { head: head(5, 'SSCAN'), tail: tail('0', 'COUNT', String(WHOLE)) },
  list: { head: head(4, 'LRANGE'), tail: tail('0', String(WHOLE)) },
  zset: { head: head(5, 'ZRANGE'), tail: tail('0', String(WHOLE), 'WITHSCORES') },
};

const SCAN_DONE = Buffer.from('*2\r\n$1\r\n0\r\n*');

/** Whether reply `index` (of a COLLECTION_READS read) holds the whole collection. */
export function complete(replies: WireReplies, index: number, type: string): boolean {
  const start = replies.bounds[2 * index] as number;
  const { bytes } = replies;
  if (type === 'hash' || type === 'set') {
    if (bytes.compare(SCAN_DONE, 0, SCAN_DONE.length, start, start + SCAN_DONE.length) !== 0) return false;
    const at = start + SCAN_DONE.length;
    return decimal(bytes, at, bytes.indexOf(CR, at)) <= (type === 'hash' ? 2 : 1) * WHOLE;
  }
  if (bytes[start] !== 42) return false;
  // Asked for WHOLE + 1 elements (0..WHOLE): fewer came, so none is left out.
  return decimal(bytes, start + 1, bytes.indexOf(CR, start)) <= (type === 'zset' ? 2 : 1) * WHOLE;
}

/** Whether reply `index` is equal on both sides, byte for byte (short ones by hand: cheaper than a native call). */
export function same(a: WireReplies, b: WireReplies, index: number): boolean {
  const start = a.bounds[2 * index] as number;
  const length = (a.bounds[2 * index + 1] as number) - start;
  const other = b.bounds[2 * index] as number;
  if ((b.bounds[2 * index + 1] as number) - other !== length) return false;
  if (length >= 48) return a.bytes.compare(b.bytes, other, other + length, start, start + length) === 0;
  for (let at = 0; at < length; at++) if (a.bytes[start + at] !== b.bytes[other + at]) return false;
  return true;
}

/** An integer reply's value. */
export const integer = (replies: WireReplies, index: number) => decimal(replies.bytes, (replies.bounds[2 * index] as number) + 1, (replies.bounds[2 * index + 1] as number) - 2);

/** A simple-string reply (`+string\r\n`) as text: TYPE's. */
export const status = (replies: WireReplies, index: number) => replies.bytes.toString('latin1', (replies.bounds[2 * index] as number) + 1, (replies.bounds[2 * index + 1] as number) - 2);

/** A string shorter than PREFIX: its reply `$<length>\r\n...` with a length under PREFIX. */
function shortString(replies: WireReplies, index: number): boolean {
  const start = replies.bounds[2 * index] as number;
  return replies.bytes[start] === 36 && decimal(replies.bytes, start + 1, replies.bytes.indexOf(CR, start)) < PREFIX;
}

/**
 * One key's round-1 replies compared: absent on both sides; equal (a string shorter than PREFIX,
 * expiries within the tolerance); `other` (another type or a longer string on both sides, expiries
 * within the tolerance: read further); or `differs` (for the exact way).
 */
export type KeyVerdict = 'absent' | 'equal' | 'other' | 'differs';

/** Key `index` of a round-1 batch (see the module comment). */
export function compareKey(a: WireReplies, b: WireReplies, index: number, tolerance: number): KeyVerdict {
  const expiry = 2 * index;
  const value = expiry + 1;
  const left = integer(a, expiry);
  if (!same(a, b, expiry)) {
    // Expiries parsed only when their bytes differ: a scan copy sets TTLs a few ms late.
    const right = integer(b, expiry);
    if (left < 0 || right < 0 || Math.abs(left - right) > tolerance) return 'differs';
  }
  if (left === -2) return 'absent';
  const short = shortString(a, value);
  if (short !== shortString(b, value)) return 'differs';
  if (!short) return 'other';
  return same(a, b, value) ? 'equal' : 'differs';
}
