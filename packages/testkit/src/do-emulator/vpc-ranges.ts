/**
 * The ranges a DigitalOcean VPC may have, and the one DigitalOcean picks when none is given.
 *
 * - OpenAPI `specification/resources/vpcs/models/vpc.yml` (`ip_range`): "must be in range of
 *   private addresses as defined in RFC1918", "may not be smaller than `/28` nor larger than
 *   `/16`", may not overlap another network of the account; without one, "a `/20` network range
 *   is generated that won't conflict with other VPC networks in your account".
 * - DigitalOcean's docs, "How to Plan Your Custom VPC Network", section "DigitalOcean Reserved IP
 *   Addresses and Ranges" (docs.digitalocean.com/products/networking/vpc/concepts/plan-your-network/):
 *   ranges kept for internal use, which a VPC may not overlap. The docs reserve 10.229.0.0/16 in
 *   some regions only, without a list to follow here: the emulator refuses it in every region, as
 *   the provider does, so a spec that passes is portable across regions.
 */
import { cidrContains, cidrsOverlap, parseCidr, type Cidr } from '@armada/core';

function block(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.cidr;
}

const RFC1918 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map(block);
/** DigitalOcean's internal ranges (see the module comment). */
export const RESERVED_RANGES = ['10.244.0.0/16', '10.245.0.0/16', '10.246.0.0/24', '10.229.0.0/16'];
const RESERVED = RESERVED_RANGES.map(block);
const LARGEST_PREFIX = 16;
const SMALLEST_PREFIX = 28;

/** Dotted quad of an IPv4 address held as a number. */
export const ipv4 = (value: bigint): string => [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 255n).toString()).join('.');

/** Why DigitalOcean refuses `text` as a new VPC's range beside the account's `taken` ones; undefined if it accepts it. */
export function rangeRefusal(text: string, taken: ReadonlyArray<{ name: string; ip_range: string }>): string | undefined {
  const parsed = parseCidr(text);
  const size = parsed.ok ? parsed.cidr.prefixLength : 0;
  if (!parsed.ok || !RFC1918.some((range) => cidrContains(range, parsed.cidr)) || size < LARGEST_PREFIX || size > SMALLEST_PREFIX) {
    return `ip_range ${text} is invalid: must be an RFC 1918 range from /${LARGEST_PREFIX} to /${SMALLEST_PREFIX}`;
  }
  const reserved = RESERVED.find((range) => cidrsOverlap(range, parsed.cidr));
  if (reserved) return `ip_range ${text} overlaps ${reserved.text}, which DigitalOcean reserves for internal use`;
  const other = taken.find((vpc) => cidrsOverlap(block(vpc.ip_range), parsed.cidr));
  return other ? `ip_range ${text} overlaps VPC ${other.name} (${other.ip_range})` : undefined;
}

/** The first /20 from 10.100.0.0 up that overlaps nothing taken or reserved, as DigitalOcean generates one. */
export function freeRange(taken: ReadonlyArray<{ name: string; ip_range: string }>): string {
  for (let start = block('10.100.0.0/20').network; start < block('11.0.0.0/8').network; start += 1n << 12n) {
    const candidate = `${ipv4(start)}/20`;
    if (rangeRefusal(candidate, taken) === undefined) return candidate;
  }
  throw new Error('no free /20 left in 10.100.0.0 - 10.255.255.255');
}
