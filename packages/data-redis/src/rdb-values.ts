/**
 * Reading RDB value bytes (a snapshot record's, or a DUMP payload's) as values: a string's bytes,
 * and the elements of the hashtable-encoded set, hash and sorted set. Verify needs these where
 * two servers hold the same data in different bytes: a string is compared with what MGET answers,
 * and a hashtable collection is serialized in its dict's order, which differs between two servers
 * (each seeds its hash function at random), so its elements are compared as a multiset.
 */
import { finishA, finishB, PRIME_A, PRIME_B, SEED_A, SEED_B } from './hash.js';
import { lzfDecompressInto, RdbFormatError } from './rdb.js';

/** Value types whose elements come in dict order: set (2), hash (4), sorted set with binary scores (5). */
export const UNORDERED_TYPES = new Set([2, 4, 5]);

/** A position in a buffer being read. */
interface Cursor {
  at: number;
}

function need(buffer: Buffer, cursor: Cursor, count: number): void {
  if (cursor.at + count > buffer.length) throw new RdbFormatError('An RDB value ends inside a field.');
}

/** A length (6, 14, 32 or 64 bits). */
function readLength(buffer: Buffer, cursor: Cursor): number {
  need(buffer, cursor, 1);
  const first = buffer[cursor.at] as number;
  switch (first >> 6) {
    case 0:
      cursor.at += 1;
      return first & 0x3f;
    case 1:
      need(buffer, cursor, 2);
      cursor.at += 2;
      return ((first & 0x3f) << 8) | (buffer[cursor.at - 1] as number);
    case 2:
      if (first === 0x80) {
        need(buffer, cursor, 5);
        cursor.at += 5;
        return buffer.readUInt32BE(cursor.at - 4);
      }
      if (first === 0x81) {
        need(buffer, cursor, 9);
        cursor.at += 9;
        return buffer.readUInt32BE(cursor.at - 8) * 2 ** 32 + buffer.readUInt32BE(cursor.at - 4);
      }
      throw new RdbFormatError(`Unknown RDB length encoding 0x${first.toString(16)}.`);
    default:
      throw new RdbFormatError('An encoded value where the RDB should hold a length.');
  }
}

/** Where one RDB string lies, read in place: `kind` 0 plain (`start, end` its bytes), 1 LZF (`start, end` the compressed bytes, `length` the value's), 2 an integer (`integer`). */
export class StringSpan {
  kind = 0;
  start = 0;
  end = 0;
  length = 0;
  integer = 0;
  /** Where the next field starts. */
  next = 0;

  read(buffer: Buffer, at: number): this {
    const first = buffer[at] as number;
    if (first === undefined) throw new RdbFormatError('An RDB value ends inside a field.');
    if (first >> 6 === 0) {
      // The common case, a plain string under 64 bytes: no cursor to allocate.
      this.kind = 0;
      this.length = first;
      this.start = at + 1;
      this.end = this.next = at + 1 + first;
      if (this.end > buffer.length) throw new RdbFormatError('An RDB value ends inside a field.');
      return this;
    }
    const cursor = { at };
    if (first >> 6 !== 3) {
      this.length = readLength(buffer, cursor);
      this.kind = 0;
    } else {
      cursor.at += 1;
      const encoding = first & 0x3f;
      if (encoding <= 2) {
        const size = 1 << encoding;
        need(buffer, cursor, size);
        this.integer = encoding === 0 ? buffer.readInt8(cursor.at) : encoding === 1 ? buffer.readInt16LE(cursor.at) : buffer.readInt32LE(cursor.at);
        this.kind = 2;
        this.start = this.end = this.next = cursor.at + size;
        return this;
      }
      if (encoding !== 3) throw new RdbFormatError(`Unknown RDB string encoding ${encoding}.`);
      const compressed = readLength(buffer, cursor);
      this.length = readLength(buffer, cursor);
      this.kind = 1;
      need(buffer, cursor, compressed);
      this.start = cursor.at;
      this.end = this.next = cursor.at + compressed;
      return this;
    }
    need(buffer, cursor, this.length);
    this.start = cursor.at;
    this.end = this.next = cursor.at + this.length;
    return this;
  }
}

/**
 * A digest of a multiset of elements, the same whatever order they are added in: per element the
 * two 32-bit hashes of `hash.ts` over its framed parts, summed and XORed over the elements, and the element count. Not
 * cryptographic (verify compares copies, not adversaries), and computed in place: no object per
 * element, which is what made comparing a 200,000-field hash expensive.
 */
export class MultisetDigest {
  count = 0;
  private sumA = 0;
  private sumB = 0;
  private xorA = 0;
  private xorB = 0;
  private a = 0;
  private b = 0;
  private scratch = Buffer.allocUnsafe(256);

  begin(): void {
    this.a = SEED_A;
    this.b = SEED_B;
  }

  /** One part of the element: its length first, so that ["ab", "c"] and ["a", "bc"] differ. */
  part(bytes: Uint8Array, start: number, end: number): void {
    let a = Math.imul(this.a ^ (end - start), PRIME_A);
    let b = Math.imul(this.b ^ (end - start), PRIME_B);
    for (let at = start; at < end; at++) {
      const byte = bytes[at] as number;
      a = Math.imul(a ^ byte, PRIME_A);
      b = Math.imul(b ^ byte, PRIME_B);
    }
    this.a = a;
    this.b = b;
  }

  /** One RDB string as a part, decoded: the same value hashes alike however it was encoded. */
  string(buffer: Buffer, span: StringSpan): void {
    if (span.kind === 0) this.part(buffer, span.start, span.end);
    else if (span.kind === 2) {
      const digits = Buffer.from(String(span.integer));
      this.part(digits, 0, digits.length);
    } else {
      if (this.scratch.length < span.length) this.scratch = Buffer.allocUnsafe(Math.max(span.length, 2 * this.scratch.length));
      lzfDecompressInto(buffer, span.start, span.end, this.scratch, 0, span.length);
      this.part(this.scratch, 0, span.length);
    }
  }

  end(): void {
    const a = finishA(this.a);
    const b = finishB(this.b);
    this.sumA = (this.sumA + a) >>> 0;
    this.sumB = (this.sumB + b) >>> 0;
    this.xorA = (this.xorA ^ a) >>> 0;
    this.xorB = (this.xorB ^ b) >>> 0;
    this.count++;
  }

  equals(other: MultisetDigest): boolean {
    return this.count === other.count && this.sumA === other.sumA && this.sumB === other.sumB && this.xorA === other.xorA && this.xorB === other.xorB;
  }
}

/**
 * The multiset digest of a set (2), hash (4) or sorted set (5) value: `bytes[start, end)` are the
 * value bytes after the type byte. A hash's element is its field and value, a sorted set's its
 * member and the score's 8 bytes (equal doubles, equal bytes: Redis stores no NaN).
 */
export function unorderedDigest(type: number, bytes: Buffer, start: number, end: number): MultisetDigest {
  const cursor = { at: start };
  const count = readLength(bytes, cursor);
  const digest = new MultisetDigest();
  const span = new StringSpan();
  let at = cursor.at;
  for (let index = 0; index < count; index++) {
    digest.begin();
    digest.string(bytes, span.read(bytes, at));
    at = span.next;
    if (type === 4) {
      digest.string(bytes, span.read(bytes, at));
      at = span.next;
    } else if (type === 5) {
      if (at + 8 > end) throw new RdbFormatError('An RDB value ends inside a field.');
      digest.part(bytes, at, at + 8);
      at += 8;
    }
    digest.end();
  }
  if (at !== end) throw new RdbFormatError('An RDB value has bytes after its last element.');
  return digest;
}

/** Whether two values of one unordered type hold the same elements, whatever their order. */
export function sameElements(type: number, left: Buffer, leftStart: number, leftEnd: number, right: Buffer, rightStart: number, rightEnd: number): boolean {
  return unorderedDigest(type, left, leftStart, leftEnd).equals(unorderedDigest(type, right, rightStart, rightEnd));
}
