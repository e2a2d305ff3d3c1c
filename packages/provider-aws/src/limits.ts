/**
 * EC2's limits on what a spec asks for, checked when the plan is made, so that a spec AWS would
 * refuse fails before anything is created, naming the resource and the limit. From AWS's
 * documentation: "Tag your Amazon EC2 resources" (tag restrictions), "Amazon VPC quotas"
 * (security group rules), "VPC CIDR blocks" (VPC and subnet sizes) and ImportKeyPair (key types).
 */
import type { DesiredResource, ValidationIssue } from '@armada/core';
import { parseCidr } from '@armada/core';

/** Tags per resource, EC2's limit. */
export const MAX_TAGS = 50;
/** Tags Armada itself sets on a resource at most: Name, two ownership tags, and an instance's role, key pair and user data digest. */
export const ARMADA_TAGS = 6;
export const MAX_TAG_KEY = 128;
export const MAX_TAG_VALUE = 256;
/** Inbound (and, separately, outbound) rules per security group: the default quota. */
export const MAX_RULES = 60;
/** VPCs and their subnets are /16 to /28 (IPv4). */
export const SMALLEST_PREFIX = 28;
export const LARGEST_PREFIX = 16;

function cidrIssues(path: string, text: string, what: string): ValidationIssue[] {
  const parsed = parseCidr(text);
  if (!parsed.ok || parsed.cidr.family !== 4) return [];
  const prefix = parsed.cidr.prefixLength;
  if (prefix >= LARGEST_PREFIX && prefix <= SMALLEST_PREFIX) return [];
  return [{ path, message: `${what} ${text} is a /${prefix}: an AWS ${what} is /${LARGEST_PREFIX} to /${SMALLEST_PREFIX}`, fix: `use a block from /${LARGEST_PREFIX} to /${SMALLEST_PREFIX}` }];
}

function tagIssues(path: string, tags: Record<string, string>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const keys = Object.keys(tags);
  if (keys.length > MAX_TAGS - ARMADA_TAGS) {
    issues.push({ path, message: `${keys.length} tags: AWS allows ${MAX_TAGS} per resource, and Armada sets up to ${ARMADA_TAGS} of them`, fix: `keep at most ${MAX_TAGS - ARMADA_TAGS} tags` });
  }
  for (const key of keys) {
    if (key.toLowerCase().startsWith('aws:')) issues.push({ path: `${path}.${key}`, message: 'tag keys starting with "aws:" are reserved for AWS', fix: 'choose another key' });
    if (key.length > MAX_TAG_KEY) issues.push({ path: `${path}.${key.slice(0, 20)}...`, message: `a tag key of ${key.length} characters: AWS allows ${MAX_TAG_KEY}`, fix: 'shorten the key' });
    const value = tags[key] ?? '';
    if (value.length > MAX_TAG_VALUE) issues.push({ path: `${path}.${key}`, message: `a tag value of ${value.length} characters: AWS allows ${MAX_TAG_VALUE}`, fix: 'shorten the value' });
  }
  return issues;
}

/** Everything in the desired resources that EC2 would refuse, by resource address and property. */
export function limitIssues(resources: DesiredResource[]): ValidationIssue[] {
  return resources.flatMap((resource): ValidationIssue[] => {
    const at = (property: string) => `${resource.address}.${property}`;
    switch (resource.kind) {
      case 'network':
        return cidrIssues(at('cidr'), (resource as DesiredResource<'network'>).properties.cidr, 'VPC');
      case 'subnet':
        return cidrIssues(at('cidr'), (resource as DesiredResource<'subnet'>).properties.cidr, 'subnet');
      case 'firewall': {
        const { ingress, egress = [] } = (resource as DesiredResource<'firewall'>).properties;
        return (
          [
            ['ingress', ingress.length],
            ['egress', egress.length],
          ] as const
        ).flatMap(([direction, count]) =>
          count > MAX_RULES
            ? [{ path: at(direction), message: `${count} ${direction} rules: an AWS security group holds ${MAX_RULES} (the default quota)`, fix: 'merge rules (a port range, a wider CIDR), or split the firewall in two' }]
            : [],
        );
      }
      case 'instance':
        return tagIssues(at('tags'), (resource as DesiredResource<'instance'>).properties.tags);
      case 'keyPair': {
        // ImportKeyPair takes "an RSA or ED25519 key pair"; the spec also admits DSA and ECDSA keys.
        const type = (resource as DesiredResource<'keyPair'>).properties.publicKey.split(' ')[0] ?? '';
        return /^ssh-(rsa|ed25519)$/.test(type)
          ? []
          : [{ path: at('publicKey'), message: `a ${type} key: EC2 imports RSA and ED25519 keys only`, fix: 'use an ssh-ed25519 or ssh-rsa key (ssh-keygen -t ed25519)' }];
      }
      default:
        return [];
    }
  });
}
