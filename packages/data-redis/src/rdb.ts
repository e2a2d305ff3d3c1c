/**
 * A streaming RDB parser: fed the snapshot chunk by chunk as it arrives, it never holds the whole
 * file. For each key it hands over the key name (decoded: keys may be LZF-compressed or stored as
 * integers), its absolute expiry and the exact serialized value bytes (the RDB value encoding is
 * the one DUMP uses, so a RESTORE payload is those bytes plus a version and a CRC-64). Values are
 * walked per type only to find where they end; nothing but key names is decoded.
 *
 * A value larger than `maxValueBytes` is not buffered: its bytes are skipped (across chunks) and
 * only its name is reported, for the caller to copy it some other way.
 *
 * The parser is a generator that yields whenever the current chunk runs out; `push` resumes it.
 * Token headers (lengths, fixed-size fields) are read whole, so a header split across two chunks
 * is re-read once both are joined; string bodies are consumed piecewise.
 */
import { Crc64 } from './crc64.js';

/** The RDB holds something this parser cannot copy (module types, an unknown type or opcode). */
export class RdbUnsupportedError extends Error {
  override name = 'RdbUnsupportedError';
}

/** The RDB is malformed (or not an RDB at all). */
export class RdbFormatError extends Error {
  override name = 'RdbFormatError';
}

/**
 * One key as the parser hands it over. The object (and the chunk it points into) is reused: it is
 * valid only during the `onKey` call, so copy what you keep.
 */
export interface RdbRecord {
  db: number;
  /** Absolute expiry in ms since the epoch, 0 for none. */
  expireAt: number;
  /** The value's type byte. */
  type: number;
  /** The key name: `keyBuffer[keyStart, keyEnd)`. */
  keyBuffer: Buffer;
  keyStart: number;
  keyEnd: number;
  /** The value bytes after the type byte: `parts` (from earlier chunks), then `valueBuffer[valueStart, valueEnd)`. */
  parts: Buffer[];
  valueBuffer: Buffer;
  valueStart: number;
  valueEnd: number;
  /** Total value bytes (parts and the rest). */
  length: number;
  /**
   * The key's idle time in seconds (`RDB_OPCODE_IDLE`), or -1 when the RDB has none. Redis writes
   * it only when its maxmemory-policy is an LRU one (allkeys-lru, volatile-lru).
   */
  idle: number;
  /** The key's LFU counter, 0-255 (`RDB_OPCODE_FREQ`), or -1: written only under an LFU policy. */
  freq: number;
}

export interface RdbHandler {
  /** Whether keys of this database are wanted; others are walked over without being kept. */
  wants(db: number): boolean;
  /** One key, with its value bytes (see RdbRecord: valid only during the call). */
  onKey(record: RdbRecord): void;
  /** A wanted key whose value was larger than `maxValueBytes`: skipped, not kept. `key` is a copy. */
  onBigKey(db: number, key: Buffer, expireAt: number, type: number): void;
  /** The stream has left database `db` (a new SELECTDB, or the end of the file). */
  onDatabaseEnd?(db: number): void;
}

const OPCODE_SLOT_INFO = 0xf4;
const OPCODE_FUNCTION2 = 0xf5;
const OPCODE_FUNCTION_PRE_GA = 0xf6;
const OPCODE_MODULE_AUX = 0xf7;
const OPCODE_IDLE = 0xf8;
const OPCODE_FREQ = 0xf9;
const OPCODE_AUX = 0xfa;
const OPCODE_RESIZEDB = 0xfb;
const OPCODE_EXPIRETIME_MS = 0xfc;
const OPCODE_EXPIRETIME = 0xfd;
const OPCODE_SELECTDB = 0xfe;
const OPCODE_EOF = 0xff;

/** Value types whose whole value is one RDB string (a ziplist, listpack, intset or zipmap blob). */
const SINGLE_STRING_TYPES = new Set([0, 9, 10, 11, 12, 13, 16, 17, 20]);
const TYPE_NAMES: Record<number, string> = { 6: 'a module value (pre-GA format)', 7: 'a module value' };

/** Decompresses an LZF block (the format Redis uses for compressed RDB strings). */
export function lzfDecompress(input: Uint8Array, outputLength: number): Buffer {
  const output = Buffer.allocUnsafe(outputLength);
  lzfDecompressInto(input, 0, input.length, output, 0, outputLength);
  return output;
}

/**
 * Decompresses `input[start, end)` into `output` at `at`, `length` bytes: no allocation, and short
 * runs copied by hand (most compressed values are short), for the hot paths of verify.
 */
export function lzfDecompressInto(input: Uint8Array, start: number, end: number, output: Uint8Array, at: number, length: number): void {
  const limit = at + length;
  let ip = start;
  let op = at;
  while (ip < end) {
    const control = input[ip++] as number;
    if (control < 32) {
      const run = control + 1;
      if (op + run > limit || ip + run > end) throw new RdbFormatError('Invalid LZF compressed string.');
      if (run > 16) {
        output.set(input.subarray(ip, ip + run), op);
        ip += run;
        op += run;
      } else for (let index = 0; index < run; index++) output[op++] = input[ip++] as number;
    } else {
      let run = control >> 5;
      let reference = op - ((control & 0x1f) << 8) - 1;
      if (run === 7) run += input[ip++] as number;
      reference -= input[ip++] as number;
      run += 2;
      if (reference < at || op + run > limit) throw new RdbFormatError('Invalid LZF compressed string.');
      const distance = op - reference;
      // A long run of one byte repeated (common: padding, runs of spaces), or a long copy that does
      // not overlap: natively. Short ones by hand (a native call costs more than a few bytes).
      if (distance === 1 && run > 16) {
        output.fill(output[reference] as number, op, op + run);
        op += run;
      } else if (distance >= run && run > 16) {
        output.copyWithin(op, reference, reference + run);
        op += run;
      } else for (let index = 0; index < run; index++) output[op++] = output[reference++] as number;
    }
  }
  if (op !== limit) throw new RdbFormatError('Invalid LZF compressed string.');
}

type Step = Generator<void, void, void>;

export class RdbParser {
  /** The RDB format version from the header (`REDIS0010` is 10). */
  version = 0;
  /** True once the EOF opcode and the checksum have been read. */
  done = false;
  /** Whether the file's own CRC-64 matched (undefined when the file carries none). */
  checksumOk: boolean | undefined;
  /** Bytes that came after the end of the RDB in the last chunk (the diskless EOF mark, say). */
  trailing: Buffer = Buffer.alloc(0);

  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private readonly steps: Step;
  // The string body being consumed piecewise: bytes left, or -1 between strings.
  private remaining = -1;
  // A key name being gathered across chunks.
  private keyParts: Buffer[] = [];
  private keyKind = 0; // 0 plain, 1 LZF
  private keyLength = 0;
  // The value being captured: parts from earlier chunks, and where it starts in this one.
  private capturing = false;
  private captureStart = 0;
  private parts: Buffer[] = [];
  private partsLength = 0;
  // The file checksum, over every byte up to and including the EOF opcode.
  private readonly crc = new Crc64();
  private crcFrom = 0;
  private db = -1;
  private readonly record: RdbRecord = {
    db: 0,
    expireAt: 0,
    type: 0,
    keyBuffer: Buffer.alloc(0),
    keyStart: 0,
    keyEnd: 0,
    parts: [],
    valueBuffer: Buffer.alloc(0),
    valueStart: 0,
    valueEnd: 0,
    length: 0,
    idle: -1,
    freq: -1,
  };

  /**
   * `checksum: false` skips the file's CRC-64 (a few % of the parse): for a reader that checks
   * every value against another copy anyway (verify), where a damaged byte can only show as a
   * difference, never hide one.
   */
  constructor(
    private readonly handler: RdbHandler,
    private readonly maxValueBytes = Number.POSITIVE_INFINITY,
    private readonly checksum = true,
  ) {
    this.steps = this.run();
  }

  /** Feeds the next chunk. Throws RdbFormatError or RdbUnsupportedError. */
  push(chunk: Buffer): void {
    if (this.done) {
      this.trailing = Buffer.concat([this.trailing, chunk]);
      return;
    }
    const { buf, pos } = this;
    if (this.checksum) this.crc.update(buf, this.crcFrom, pos);
    if (this.capturing && pos > this.captureStart) {
      this.parts.push(buf.subarray(this.captureStart, pos));
      this.partsLength += pos - this.captureStart;
      // Too large to keep: drop what was gathered and walk the rest of the value without it.
      if (this.partsLength > this.maxValueBytes) this.stopCapture();
    }
    this.buf = pos < buf.length ? Buffer.concat([buf.subarray(pos), chunk]) : chunk;
    this.pos = 0;
    this.crcFrom = 0;
    this.captureStart = 0;
    if (this.steps.next().done) this.done = true;
  }

  private stopCapture(): void {
    this.capturing = false;
    this.parts = [];
    this.partsLength = Number.POSITIVE_INFINITY;
  }

  private has(count: number): boolean {
    return this.pos + count <= this.buf.length;
  }

  /** A length (6, 14, 32 or 64 bits), or -1 if the chunk ends inside it. */
  private len(): number {
    const { buf, pos } = this;
    if (pos >= buf.length) return -1;
    const first = buf[pos] as number;
    switch (first >> 6) {
      case 0:
        this.pos = pos + 1;
        return first & 0x3f;
      case 1:
        if (pos + 2 > buf.length) return -1;
        this.pos = pos + 2;
        return ((first & 0x3f) << 8) | (buf[pos + 1] as number);
      case 2:
        if (first === 0x80) {
          if (pos + 5 > buf.length) return -1;
          this.pos = pos + 5;
          return buf.readUInt32BE(pos + 1);
        }
        if (first === 0x81) {
          if (pos + 9 > buf.length) return -1;
          this.pos = pos + 9;
          return buf.readUInt32BE(pos + 1) * 2 ** 32 + buf.readUInt32BE(pos + 5);
        }
        throw new RdbFormatError(`Unknown RDB length encoding 0x${first.toString(16)}.`);
      default:
        throw new RdbFormatError('An encoded value where the RDB should hold a length.');
    }
  }

  /**
   * The header of a string: how many body bytes follow (the LZF-compressed bytes for a
   * compressed string, 1, 2 or 4 for an integer), or -1 if the chunk ends inside the header.
   * `kind` is set to 0 plain, 1 LZF (with `keyLength` the uncompressed length), 2-4 int8/16/32.
   */
  private stringHeader(): number {
    const { buf, pos } = this;
    if (pos >= buf.length) return -1;
    const first = buf[pos] as number;
    if (first >> 6 !== 3) {
      const length = this.len();
      if (length >= 0) this.keyKind = 0;
      return length;
    }
    const encoding = first & 0x3f;
    if (encoding <= 2) {
      this.pos = pos + 1;
      this.keyKind = 2 + encoding;
      return 1 << encoding;
    }
    if (encoding !== 3) throw new RdbFormatError(`Unknown RDB string encoding ${encoding}.`);
    this.pos = pos + 1;
    const compressed = this.len();
    const length = compressed < 0 ? -1 : this.len();
    if (length < 0) {
      this.pos = pos;
      return -1;
    }
    this.keyKind = 1;
    this.keyLength = length;
    return compressed;
  }

  /** Skips one string, piecewise across chunks: true when its end is reached. */
  private skipString(): boolean {
    if (this.remaining < 0) {
      const length = this.stringHeader();
      if (length < 0) return false;
      this.remaining = length;
    }
    const available = this.buf.length - this.pos;
    if (available >= this.remaining) {
      this.pos += this.remaining;
      this.remaining = -1;
      return true;
    }
    this.remaining -= available;
    this.pos = this.buf.length;
    return false;
  }

  /** Reads a key name whole (decoded) into the record: false until it is complete. */
  private readKey(): boolean {
    const record = this.record;
    if (this.remaining < 0) {
      const length = this.stringHeader();
      if (length < 0) return false;
      if (this.has(length)) {
        const start = this.pos;
        this.pos += length;
        if (this.keyKind === 0) {
          record.keyBuffer = this.buf;
          record.keyStart = start;
          record.keyEnd = this.pos;
        } else this.setKey(this.decode(this.buf.subarray(start, this.pos)));
        return true;
      }
      this.remaining = length;
      this.keyParts = [];
    }
    const take = Math.min(this.remaining, this.buf.length - this.pos);
    this.keyParts.push(this.buf.subarray(this.pos, this.pos + take));
    this.pos += take;
    this.remaining -= take;
    if (this.remaining > 0) return false;
    this.remaining = -1;
    const body = Buffer.concat(this.keyParts);
    this.keyParts = [];
    this.setKey(this.decode(body));
    return true;
  }

  private setKey(key: Buffer): void {
    this.record.keyBuffer = key;
    this.record.keyStart = 0;
    this.record.keyEnd = key.length;
  }

  private decode(body: Buffer): Buffer {
    switch (this.keyKind) {
      case 0:
        return body;
      case 1:
        return lzfDecompress(body, this.keyLength);
      case 2:
        return Buffer.from(String(body.readInt8(0)));
      case 3:
        return Buffer.from(String(body.readInt16LE(0)));
      default:
        return Buffer.from(String(body.readInt32LE(0)));
    }
  }

  private *run(): Step {
    while (!this.has(9)) yield;
    const magic = this.buf.toString('latin1', this.pos, this.pos + 9);
    if (!/^REDIS\d{4}$/.test(magic)) throw new RdbFormatError(`Not an RDB stream (it starts with ${JSON.stringify(magic.slice(0, 5))}).`);
    this.version = Number(magic.slice(5));
    this.pos += 9;
    let expireAt = 0;
    // IDLE and FREQ come before the key they belong to, like the expiry.
    let idle = -1;
    let freq = -1;
    let n: number;
    for (;;) {
      while (!this.has(1)) yield;
      const opcode = this.buf[this.pos++] as number;
      switch (opcode) {
        case OPCODE_AUX:
          while (!this.skipString()) yield;
          while (!this.skipString()) yield;
          break;
        case OPCODE_RESIZEDB:
          while (this.len() < 0) yield;
          while (this.len() < 0) yield;
          break;
        case OPCODE_EXPIRETIME_MS:
          while (!this.has(8)) yield;
          expireAt = this.buf.readUInt32LE(this.pos) + this.buf.readInt32LE(this.pos + 4) * 2 ** 32;
          this.pos += 8;
          break;
        case OPCODE_EXPIRETIME:
          while (!this.has(4)) yield;
          expireAt = this.buf.readInt32LE(this.pos) * 1000;
          this.pos += 4;
          break;
        case OPCODE_SELECTDB:
          while ((n = this.len()) < 0) yield;
          if (this.db >= 0 && this.db !== n) this.handler.onDatabaseEnd?.(this.db);
          this.db = n;
          break;
        case OPCODE_IDLE:
          while ((n = this.len()) < 0) yield;
          idle = n;
          break;
        case OPCODE_FREQ:
          while (!this.has(1)) yield;
          freq = this.buf[this.pos++] as number;
          break;
        case OPCODE_MODULE_AUX:
          while (this.len() < 0) yield; // module id
          yield* this.moduleOpcodes();
          break;
        case OPCODE_FUNCTION2:
          // A function library's code. Functions are not data: they are not copied.
          while (!this.skipString()) yield;
          break;
        case OPCODE_FUNCTION_PRE_GA:
          throw new RdbUnsupportedError('The RDB holds functions in the pre-release (7.0 RC) format.');
        case OPCODE_SLOT_INFO:
          throw new RdbUnsupportedError('The RDB holds slot information (a newer RDB format than this parser knows).');
        case OPCODE_EOF: {
          if (this.checksum) this.crc.update(this.buf, this.crcFrom, this.pos);
          this.crcFrom = this.pos;
          if (this.db >= 0) this.handler.onDatabaseEnd?.(this.db);
          if (this.version >= 5) {
            while (!this.has(8)) yield;
            const stored = this.buf.subarray(this.pos, this.pos + 8);
            this.pos += 8;
            if (this.checksum && stored.some((byte) => byte !== 0)) {
              const computed = Buffer.alloc(8);
              this.crc.writeLE(computed, 0);
              this.checksumOk = computed.equals(stored);
              if (!this.checksumOk) throw new RdbFormatError('The RDB checksum does not match its contents: the snapshot was damaged on its way.');
            }
          }
          this.crcFrom = this.pos;
          this.trailing = this.buf.subarray(this.pos);
          this.buf = Buffer.alloc(0);
          this.pos = 0;
          return;
        }
        default: {
          // A key: its type, its name, its value.
          const type = opcode;
          if (!SINGLE_STRING_TYPES.has(type) && !(type >= 1 && type <= 5) && type !== 14 && type !== 15 && type !== 18 && type !== 19 && type !== 21) {
            throw new RdbUnsupportedError(`The RDB holds ${TYPE_NAMES[type] ?? `a value of unknown type ${type}`} (key type byte ${type}), which cannot be copied from the stream.`);
          }
          while (!this.readKey()) yield;
          const wanted = this.db >= 0 && this.handler.wants(this.db);
          if (wanted) {
            this.capturing = true;
            this.captureStart = this.pos;
            if (this.parts.length > 0) this.parts = [];
            this.partsLength = 0;
          }
          if (SINGLE_STRING_TYPES.has(type)) {
            while (!this.skipString()) yield;
          } else yield* this.value(type);
          if (wanted) {
            const record = this.record;
            const tail = this.capturing ? this.pos - this.captureStart : 0;
            if (this.capturing && this.partsLength + tail <= this.maxValueBytes) {
              record.db = this.db;
              record.expireAt = expireAt;
              record.type = type;
              record.parts = this.parts;
              record.valueBuffer = this.buf;
              record.valueStart = this.captureStart;
              record.valueEnd = this.pos;
              record.length = this.partsLength + tail;
              record.idle = idle;
              record.freq = freq;
              this.handler.onKey(record);
            } else this.handler.onBigKey(this.db, Buffer.from(record.keyBuffer.subarray(record.keyStart, record.keyEnd)), expireAt, type);
            this.capturing = false;
            if (this.parts.length > 0) this.parts = [];
            this.partsLength = 0;
          }
          expireAt = 0;
          idle = -1;
          freq = -1;
        }
      }
    }
  }

  private *fixed(count: number): Step {
    while (!this.has(count)) yield;
    this.pos += count;
  }

  /** A module's opcode-tagged values up to their EOF opcode (module aux data). */
  private *moduleOpcodes(): Step {
    let opcode: number;
    for (;;) {
      while ((opcode = this.len()) < 0) yield;
      if (opcode === 0) return;
      if (opcode === 1 || opcode === 2) while (this.len() < 0) yield;
      else if (opcode === 3) yield* this.fixed(4);
      else if (opcode === 4) yield* this.fixed(8);
      else if (opcode === 5) while (!this.skipString()) yield;
      else throw new RdbFormatError(`Unknown module opcode ${opcode} in the RDB.`);
    }
  }

  /** Walks a value made of several parts (the single-string types are handled by the caller). */
  private *value(type: number): Step {
    let n: number;
    switch (type) {
      case 1: // list of strings (old)
      case 2: // set (hashtable)
      case 14: // quicklist of ziplists
        while ((n = this.len()) < 0) yield;
        for (let index = 0; index < n; index++) while (!this.skipString()) yield;
        return;
      case 3: // sorted set, scores as strings
        while ((n = this.len()) < 0) yield;
        for (let index = 0; index < n; index++) {
          while (!this.skipString()) yield;
          while (!this.has(1)) yield;
          const length = this.buf[this.pos] as number;
          yield* this.fixed(length >= 253 ? 1 : 1 + length); // 253-255: nan, +inf, -inf
        }
        return;
      case 4: // hash (hashtable)
        while ((n = this.len()) < 0) yield;
        for (let index = 0; index < 2 * n; index++) while (!this.skipString()) yield;
        return;
      case 5: // sorted set (skiplist), binary scores
        while ((n = this.len()) < 0) yield;
        for (let index = 0; index < n; index++) {
          while (!this.skipString()) yield;
          yield* this.fixed(8);
        }
        return;
      case 18: // quicklist of listpacks: container kind, then the node
        while ((n = this.len()) < 0) yield;
        for (let index = 0; index < n; index++) {
          while (this.len() < 0) yield;
          while (!this.skipString()) yield;
        }
        return;
      default:
        yield* this.stream(type);
    }
  }

  /** Streams: listpacks, metadata, then consumer groups with their PELs and consumers. */
  private *stream(type: number): Step {
    let n: number;
    while ((n = this.len()) < 0) yield;
    for (let index = 0; index < 2 * n; index++) while (!this.skipString()) yield; // node key, listpack
    // Length and last id; from v2 also first id, max deleted id and entries added.
    const counters = type >= 19 ? 8 : 3;
    for (let index = 0; index < counters; index++) while (this.len() < 0) yield;
    let groups: number;
    while ((groups = this.len()) < 0) yield;
    for (let group = 0; group < groups; group++) {
      while (!this.skipString()) yield; // name
      const ids = type >= 19 ? 3 : 2; // last id (ms, seq), entries read
      for (let index = 0; index < ids; index++) while (this.len() < 0) yield;
      let pending: number;
      while ((pending = this.len()) < 0) yield;
      for (let index = 0; index < pending; index++) {
        yield* this.fixed(16 + 8); // id, delivery time
        while (this.len() < 0) yield; // delivery count
      }
      let consumers: number;
      while ((consumers = this.len()) < 0) yield;
      for (let consumer = 0; consumer < consumers; consumer++) {
        while (!this.skipString()) yield; // name
        yield* this.fixed(type >= 21 ? 16 : 8); // seen time (and active time from v3)
        let owned: number;
        while ((owned = this.len()) < 0) yield;
        for (let index = 0; index < owned; index++) yield* this.fixed(16);
      }
    }
  }
}
