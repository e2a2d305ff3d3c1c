/**
 * What DigitalOcean refuses in a VPC's range, checked when the plan is made, so that a spec it
 * would refuse fails before anything is created, naming the network and the rule:
 * - OpenAPI `specification/resources/vpcs/models/vpc.yml` (`ip_range`): RFC 1918, "not smaller
 *   than `/28` nor larger than `/16`";
 * - DigitalOcean's docs, "How to Plan Your Custom VPC Network" (section "DigitalOcean Reserved IP
 *   Addresses and Ranges"): ranges kept for internal use. 10.229.0.0/16 is reserved in some
 *   regions only; it is refused everywhere, so a spec that passes here passes in every region.
 * The testkit's emulator enforces the same rules (its vpc-ranges.ts), and a test holds the two to
 * the same verdicts.
 */
import { cidrContains, cidrsOverlap, parseCidr, type Cidr, type DesiredResource, type ValidationIssue } from '@armada/core';

function block(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.cidr;
}

const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];
export const RESERVED_RANGES = ['10.244.0.0/16', '10.245.0.0/16', '10.246.0.0/24', '10.229.0.0/16'];
export const LARGEST_PREFIX = 16;
export const SMALLEST_PREFIX = 28;

/** Why DigitalOcean would refuse `text` as a VPC's range, with what to write instead; none if it accepts it. */
export function vpcRangeIssues(path: string, text: string): ValidationIssue[] {
  const parsed = parseCidr(text);
  if (!parsed.ok) return [];
  const range = parsed.cidr;
  if (range.family !== 4 || !PRIVATE_RANGES.map(block).some((private_range) => cidrContains(private_range, range))) {
    return [{ path, message: `VPC range ${text} is not private: a DigitalOcean VPC is in RFC 1918 space`, fix: `use a range inside ${PRIVATE_RANGES.join(', ')}` }];
  }
  if (range.prefixLength < LARGEST_PREFIX || range.prefixLength > SMALLEST_PREFIX) {
    return [{ path, message: `VPC range ${text} is a /${range.prefixLength}: a DigitalOcean VPC is /${LARGEST_PREFIX} to /${SMALLEST_PREFIX}`, fix: `use a block from /${LARGEST_PREFIX} to /${SMALLEST_PREFIX}` }];
  }
  const reserved = RESERVED_RANGES.find((entry) => cidrsOverlap(block(entry), range));
  if (reserved === undefined) return [];
  return [{ path, message: `VPC range ${text} overlaps ${reserved}, which DigitalOcean reserves for internal use`, fix: `choose a range outside ${RESERVED_RANGES.join(', ')}` }];
}

/** The issues of the network among `resources`, by its address and property. */
export function limitIssues(resources: DesiredResource[]): ValidationIssue[] {
  return resources.flatMap((resource) => (resource.kind === 'network' ? vpcRangeIssues(`${resource.address}.cidr`, (resource as DesiredResource<'network'>).properties.cidr) : []));
}
