/**
 * Two independent 32-bit hashes of bytes, computed in place (no object per call): FNV-1a's and
 * MurmurHash2's multipliers, each finished by an avalanche (MurmurHash3's fmix32, and the same
 * shape with other constants). Shared by verify's key set and its multiset digest.
 */
export const SEED_A = 0x811c9dc5;
export const SEED_B = 0x9747b28c;
export const PRIME_A = 0x01000193;
export const PRIME_B = 0x5bd1e995;

export function finishA(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function finishB(hash: number): number {
  let h = hash ^ (hash >>> 15);
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  return (h ^ (h >>> 15)) >>> 0;
}
