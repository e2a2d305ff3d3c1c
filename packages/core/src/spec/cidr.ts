/**
 * CIDR arithmetic for IPv4 and IPv6, enough for containment and overlap checks. Addresses are held
 * as bigint so both families share one code path.
 */

export interface Cidr {
  family: 4 | 6;
  /** First address of the block (host bits cleared). */
  network: bigint;
  prefixLength: number;
  /** The text as written. */
  text: string;
}

export type CidrParseResult = { ok: true; cidr: Cidr } | { ok: false; reason: string };

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIPv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = toGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  }
  return value;
}

export function parseCidr(text: string): CidrParseResult {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, reason: 'has no prefix length (expected address/prefix, e.g. 10.0.0.0/16)' };
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const family: 4 | 6 = addressText.includes(':') ? 6 : 4;
  const address = family === 4 ? parseIPv4(addressText) : parseIPv6(addressText);
  if (address === undefined) return { ok: false, reason: `"${addressText}" is not a valid IPv${family} address` };
  const bits = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
    return { ok: false, reason: `prefix length "${prefixText}" must be a whole number from 0 to ${bits}` };
  }
  const prefixLength = Number(prefixText);
  const hostBits = BigInt(bits - prefixLength);
  const network = (address >> hostBits) << hostBits;
  if (network !== address) {
    return { ok: false, reason: `host bits are set; the block starts at ${formatAddress(network, family)}/${prefixLength}` };
  }
  return { ok: true, cidr: { family, network, prefixLength, text } };
}

export function isCidr(text: string): boolean {
  return parseCidr(text).ok;
}

function formatAddress(value: bigint, family: 4 | 6): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 255n).toString()).join('.');
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return groups.join(':');
}

/** The last address of the block. */
export function cidrLast(cidr: Cidr): bigint {
  const bits = cidr.family === 4 ? 32 : 128;
  return cidr.network + (1n << BigInt(bits - cidr.prefixLength)) - 1n;
}

/** True when every address of `inner` lies in `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefixLength <= inner.prefixLength &&
    inner.network >= outer.network &&
    cidrLast(inner) <= cidrLast(outer)
  );
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network <= cidrLast(b) && b.network <= cidrLast(a);
}

/** The whole address space of a family: 0.0.0.0/0 or ::/0. */
export function isInternet(cidr: Cidr): boolean {
  return cidr.prefixLength === 0;
}
