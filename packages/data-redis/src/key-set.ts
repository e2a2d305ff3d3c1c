/**
 * A set of key names held as 64-bit hashes in typed arrays: what verify's snapshot path remembers
 * of every key it saw, to tell the target's keys the snapshot did not have. Why not a Set of
 * strings: decoding and interning 300,000 names cost more than parsing the whole snapshot. The
 * price is a chance of about n / 2^64 per key looked up that a name not in the set is taken for
 * one that is (1 in 6 * 10^13 with 300,000 keys): such a key would not be compared.
 */
const EMPTY = 0;

// The last hash computed (two halves): module state rather than an array per call, on the hot path.
let high = 0;
let low = 0;

function hash(bytes: Uint8Array, start: number, end: number): void {
  let a = 0x811c9dc5 ^ (end - start);
  let b = 0x9747b28c ^ (end - start);
  for (let at = start; at < end; at++) {
    const byte = bytes[at] as number;
    a = Math.imul(a ^ byte, 0x01000193);
    b = Math.imul(b ^ byte, 0x5bd1e995);
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  a = Math.imul(a, 0xc2b2ae35);
  a ^= a >>> 16;
  b ^= b >>> 15;
  b = Math.imul(b, 0x2c1b3c6d);
  b ^= b >>> 12;
  b = Math.imul(b, 0x297a2d39);
  b ^= b >>> 15;
  // 0 marks an empty slot: a key hashing to it takes 1 instead.
  high = a >>> 0 || 1;
  low = b >>> 0;
}

export class KeyHashSet {
  private capacity: number;
  private highs: Uint32Array;
  private lows: Uint32Array;
  size = 0;

  /** `expected`: how many keys it will likely hold, so that it need not grow on the way. */
  constructor(expected = 0) {
    this.capacity = 1 << Math.max(12, Math.ceil(Math.log2(2 * expected + 2)));
    this.highs = new Uint32Array(this.capacity);
    this.lows = new Uint32Array(this.capacity);
  }

  /** Adds `bytes[start, end)`; false when it was there already. */
  add(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    hash(bytes, start, end);
    if (this.size * 2 >= this.capacity) this.grow();
    return this.insert(high, low);
  }

  has(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    hash(bytes, start, end);
    const mask = this.capacity - 1;
    for (let slot = low & mask; ; slot = (slot + 1) & mask) {
      const stored = this.highs[slot] as number;
      if (stored === EMPTY) return false;
      if (stored === high && this.lows[slot] === low) return true;
    }
  }

  private insert(a: number, b: number): boolean {
    const mask = this.capacity - 1;
    for (let slot = b & mask; ; slot = (slot + 1) & mask) {
      const stored = this.highs[slot] as number;
      if (stored === EMPTY) {
        this.highs[slot] = a;
        this.lows[slot] = b;
        this.size++;
        return true;
      }
      if (stored === a && this.lows[slot] === b) return false;
    }
  }

  private grow(): void {
    const [highs, lows] = [this.highs, this.lows];
    this.capacity *= 2;
    this.highs = new Uint32Array(this.capacity);
    this.lows = new Uint32Array(this.capacity);
    this.size = 0;
    for (let slot = 0; slot < highs.length; slot++) if (highs[slot] !== EMPTY) this.insert(highs[slot] as number, lows[slot] as number);
  }
}
