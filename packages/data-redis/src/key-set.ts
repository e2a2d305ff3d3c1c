/**
 * A set of key names held as 64-bit hashes in typed arrays: what verify remembers of every key it
 * compared, to tell the target's keys the source did not have (and a key SCAN returns twice). Why
 * not a Set of strings: decoding and interning 300,000 names cost more than parsing the whole snapshot. The
 * price is a chance of about n / 2^64 per key looked up that a name not in the set is taken for
 * one that is (1 in 6 * 10^13 with 300,000 keys): such a key would not be compared.
 */
import { finishA, finishB, PRIME_A, PRIME_B, SEED_A, SEED_B } from './hash.js';

const EMPTY = 0;

// The last hash computed (two halves): module state rather than an array per call, on the hot path.
let high = 0;
let low = 0;

function hash(bytes: Uint8Array, start: number, end: number): void {
  let a = SEED_A ^ (end - start);
  let b = SEED_B ^ (end - start);
  for (let at = start; at < end; at++) {
    const byte = bytes[at] as number;
    a = Math.imul(a ^ byte, PRIME_A);
    b = Math.imul(b ^ byte, PRIME_B);
  }
  // 0 marks an empty slot: a key hashing to it takes 1 instead.
  high = finishA(a) || 1;
  low = finishB(b);
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
