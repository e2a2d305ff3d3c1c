/**
 * Built-in policy rules. Two groups:
 * - integrity rules: the spec must make sense as a whole (references resolve, subnets fit the VPC).
 *   `parseSpec` runs these, so a spec that parses is one a provider can build.
 * - security rules: the story's guard rails (no any/any, no database open to the internet, ...).
 */
import { cidrContains, cidrLast, isInternet, parseCidr, type Cidr } from '../spec/cidr.js';
import type { EnvironmentSpec, IngressRule, Peer } from '../spec/schema.js';
import { definePolicy, type PolicyFinding, type PolicyRule } from './engine.js';

function cidrOf(text: string): Cidr | undefined {
  const parsed = parseCidr(text);
  return parsed.ok ? parsed.cidr : undefined;
}

/** Expanded instance names, as the resources will be named (`web` x2 -> `web-1`, `web-2`). */
export function instanceNames(instance: { name: string; count: number }): string[] {
  if (instance.count === 1) return [instance.name];
  return Array.from({ length: instance.count }, (_, index) => `${instance.name}-${index + 1}`);
}

/** Names to choose from, in a fix: the first few, and how many there are (a spec may hold 40,000 subnets). */
function oneOf(names: readonly string[], none: string): string {
  if (names.length === 0) return none;
  const shown = names.slice(0, 10).join(', ');
  return names.length > 10 ? `${shown}, ... (${names.length} in all)` : shown;
}

function duplicates<T>(items: readonly T[], keyOf: (item: T) => string): Array<{ index: number; key: string }> {
  const seen = new Set<string>();
  const found: Array<{ index: number; key: string }> = [];
  items.forEach((item, index) => {
    const key = keyOf(item);
    if (seen.has(key)) found.push({ index, key });
    seen.add(key);
  });
  return found;
}

export const uniqueNames = definePolicy({
  id: 'unique-names',
  description: 'Subnets, firewalls, key pairs, instances and DNS records have unique names.',
  severity: 'error',
  check({ spec }) {
    const findings: PolicyFinding[] = [];
    const report = (path: string, what: string, key: string) =>
      findings.push({ path, message: `${what} "${key}" is defined more than once`, fix: `rename or remove the second ${what}` });
    for (const { index, key } of duplicates(spec.network.subnets, (subnet) => subnet.name)) {
      report(`network.subnets[${index}].name`, 'subnet', key);
    }
    for (const { index, key } of duplicates(spec.firewalls, (firewall) => firewall.name)) {
      report(`firewalls[${index}].name`, 'firewall', key);
    }
    for (const { index, key } of duplicates(spec.keyPairs, (keyPair) => keyPair.name)) {
      report(`keyPairs[${index}].name`, 'key pair', key);
    }
    const expanded = spec.instances.flatMap((instance, index) => instanceNames(instance).map((name) => ({ name, index })));
    const seen = new Set<string>();
    for (const { name, index } of expanded) {
      if (seen.has(name)) report(`instances[${index}].name`, 'instance', name);
      seen.add(name);
    }
    for (const { index, key } of duplicates(spec.dns?.records ?? [], (record) => `${record.name} ${record.type}`)) {
      report(`dns.records[${index}]`, 'DNS record', key);
    }
    return findings;
  },
});

/** The spec's names by kind, as sets: every reference is looked up once, not searched for. */
interface Names {
  firewalls: Set<string>;
  subnets: Set<string>;
  keyPairs: Set<string>;
}

function namesOf(spec: EnvironmentSpec): Names {
  return {
    firewalls: new Set(spec.firewalls.map((firewall) => firewall.name)),
    subnets: new Set(spec.network.subnets.map((subnet) => subnet.name)),
    keyPairs: new Set(spec.keyPairs.map((keyPair) => keyPair.name)),
  };
}

function peerReferenceFindings(names: Names, peer: Peer, path: string): PolicyFinding[] {
  if ('firewall' in peer && !names.firewalls.has(peer.firewall)) {
    return [{ path, message: `refers to firewall "${peer.firewall}", which is not defined`, fix: `use one of: ${oneOf([...names.firewalls], '(no firewalls defined)')}` }];
  }
  if ('subnet' in peer && !names.subnets.has(peer.subnet)) {
    return [{ path, message: `refers to subnet "${peer.subnet}", which is not defined`, fix: `use one of: ${oneOf([...names.subnets], '(no subnets defined)')}` }];
  }
  return [];
}

export const referencesResolve = definePolicy({
  id: 'references-resolve',
  description: 'Every firewall, key pair and rule peer an instance or rule names is defined.',
  severity: 'error',
  check({ spec }) {
    const findings: PolicyFinding[] = [];
    const names = namesOf(spec);
    spec.instances.forEach((instance, index) => {
      instance.firewalls.forEach((name, firewallIndex) => {
        if (!names.firewalls.has(name)) {
          findings.push({
            path: `instances[${index}].firewalls[${firewallIndex}]`,
            message: `instance "${instance.name}" uses firewall "${name}", which is not defined`,
            fix: `define a firewall named "${name}" or use one of: ${oneOf([...names.firewalls], '(none defined)')}`,
          });
        }
      });
      if (instance.keyPair !== undefined && !names.keyPairs.has(instance.keyPair)) {
        findings.push({
          path: `instances[${index}].keyPair`,
          message: `instance "${instance.name}" uses key pair "${instance.keyPair}", which is not defined`,
          fix: `define it under keyPairs or use one of: ${oneOf([...names.keyPairs], '(none defined)')}`,
        });
      }
    });
    spec.firewalls.forEach((firewall, firewallIndex) => {
      firewall.ingress.forEach((rule, ruleIndex) => {
        findings.push(...peerReferenceFindings(names, rule.from, `firewalls[${firewallIndex}].ingress[${ruleIndex}].from`));
      });
      (firewall.egress ?? []).forEach((rule, ruleIndex) => {
        findings.push(...peerReferenceFindings(names, rule.to, `firewalls[${firewallIndex}].egress[${ruleIndex}].to`));
      });
    });
    return findings;
  },
});

export const instancesInNetwork = definePolicy({
  id: 'instances-in-network',
  description: 'Every instance is placed in a subnet of the environment network.',
  severity: 'error',
  check({ spec }) {
    const subnetNames = new Set(spec.network.subnets.map((subnet) => subnet.name));
    return spec.instances.flatMap((instance, index) =>
      subnetNames.has(instance.subnet)
        ? []
        : [
            {
              path: `instances[${index}].subnet`,
              message: `instance "${instance.name}" is placed in subnet "${instance.subnet}", which is not a subnet of network "${spec.network.name}"`,
              fix: `use one of: ${oneOf([...subnetNames], '(no subnets defined)')}`,
            },
          ],
    );
  },
});

export const subnetsFitNetwork = definePolicy({
  id: 'subnets-fit-network',
  description: 'Subnets lie inside the network CIDR and do not overlap each other.',
  severity: 'error',
  check({ spec }) {
    const findings: PolicyFinding[] = [];
    const network = cidrOf(spec.network.cidr);
    const subnets = spec.network.subnets.map((subnet, index) => ({ subnet, index, cidr: cidrOf(subnet.cidr) }));
    for (const { subnet, index, cidr } of subnets) {
      if (network && cidr && !cidrContains(network, cidr)) {
        findings.push({
          path: `network.subnets[${index}].cidr`,
          message: `subnet "${subnet.name}" (${subnet.cidr}) is not inside the network CIDR ${spec.network.cidr}`,
          fix: `choose a block inside ${spec.network.cidr}`,
        });
      }
    }
    // Overlaps by a sweep in address order (n log n, not every pair: a spec may hold 40,000
    // subnets): a block is compared only with the earlier blocks still open where it starts.
    // Each overlapping pair is reported on the later subnet of the spec, in spec order.
    type Block = (typeof subnets)[number] & { cidr: Cidr; last: bigint };
    const blocks = subnets
      .filter((entry): entry is (typeof subnets)[number] & { cidr: Cidr } => entry.cidr !== undefined)
      .map((entry): Block => ({ ...entry, last: cidrLast(entry.cidr) }))
      .sort((a, b) => a.cidr.family - b.cidr.family || (a.cidr.network < b.cidr.network ? -1 : a.cidr.network > b.cidr.network ? 1 : a.index - b.index));
    const pairs: Array<{ a: Block; b: Block }> = [];
    let open: Block[] = [];
    for (const block of blocks) {
      open = open.filter((earlier) => earlier.cidr.family === block.cidr.family && earlier.last >= block.cidr.network);
      for (const earlier of open) pairs.push(earlier.index < block.index ? { a: earlier, b: block } : { a: block, b: earlier });
      open.push(block);
    }
    pairs.sort((x, y) => x.b.index - y.b.index || x.a.index - y.a.index);
    for (const { a, b } of pairs) {
      findings.push({
        path: `network.subnets[${b.index}].cidr`,
        message: `subnet "${b.subnet.name}" (${b.subnet.cidr}) overlaps subnet "${a.subnet.name}" (${a.subnet.cidr})`,
        fix: 'give each subnet its own block',
      });
    }
    return findings;
  },
});

export const validCidrs = definePolicy({
  id: 'valid-cidrs',
  description: 'Every CIDR block (network, subnets, rule peers) is well formed.',
  severity: 'error',
  check({ spec }) {
    const blocks: Array<{ path: string; text: string }> = [
      { path: 'network.cidr', text: spec.network.cidr },
      ...spec.network.subnets.map((subnet, index) => ({ path: `network.subnets[${index}].cidr`, text: subnet.cidr })),
    ];
    spec.firewalls.forEach((firewall, firewallIndex) => {
      firewall.ingress.forEach((rule, ruleIndex) => {
        if ('cidr' in rule.from) blocks.push({ path: `firewalls[${firewallIndex}].ingress[${ruleIndex}].from`, text: rule.from.cidr });
      });
      (firewall.egress ?? []).forEach((rule, ruleIndex) => {
        if ('cidr' in rule.to) blocks.push({ path: `firewalls[${firewallIndex}].egress[${ruleIndex}].to`, text: rule.to.cidr });
      });
    });
    return blocks.flatMap(({ path, text }) => {
      const parsed = parseCidr(text);
      return parsed.ok
        ? []
        : [{ path, message: `"${text}" is not a valid CIDR block: ${parsed.reason}`, fix: 'write address/prefix, e.g. "10.0.1.0/24"' }];
    });
  },
});

/** Every integrity rule: `parseSpec` refuses a spec that breaks any of them. */
export const integrityRules: readonly PolicyRule[] = [validCidrs, uniqueNames, referencesResolve, instancesInNetwork, subnetsFitNetwork];

// --- security rules ---------------------------------------------------------------------------

const ALL_PORTS = { from: 0, to: 65535 };

function portsOf(rule: IngressRule): { from: number; to: number } {
  if (rule.protocol === 'all' || rule.protocol === 'icmp') return ALL_PORTS;
  return rule.ports ?? ALL_PORTS;
}

function fromInternet(rule: IngressRule): boolean {
  if (!('cidr' in rule.from)) return false;
  const cidr = cidrOf(rule.from.cidr);
  return cidr !== undefined && isInternet(cidr);
}

function isAnyAny(rule: IngressRule): boolean {
  const ports = portsOf(rule);
  return fromInternet(rule) && (rule.protocol === 'all' || (rule.protocol !== 'icmp' && ports.from === 0 && ports.to === 65535));
}

function forEachIngress(
  spec: EnvironmentSpec,
  visit: (rule: IngressRule, path: string, firewallName: string) => PolicyFinding | undefined,
): PolicyFinding[] {
  return spec.firewalls.flatMap((firewall, firewallIndex) =>
    firewall.ingress.flatMap((rule, ruleIndex) => visit(rule, `firewalls[${firewallIndex}].ingress[${ruleIndex}]`, firewall.name) ?? []),
  );
}

export const noAnyAny = definePolicy({
  id: 'no-any-any',
  description: 'No ingress rule allows every protocol or every port from the whole internet.',
  severity: 'error',
  check: ({ spec }) =>
    forEachIngress(spec, (rule, path, firewall) =>
      isAnyAny(rule)
        ? {
            path,
            message: `firewall "${firewall}" allows ${rule.protocol === 'all' ? 'all protocols' : `all ${rule.protocol} ports`} from ${(rule.from as { cidr: string }).cidr}`,
            fix: 'allow only the protocol and ports the service needs, or narrow the source to a firewall, subnet or known CIDR',
          }
        : undefined,
    ),
});

export const DATABASE_PORTS: Readonly<Record<number, string>> = {
  3306: 'MySQL',
  5432: 'PostgreSQL',
  6379: 'Redis',
  11211: 'Memcached',
  27017: 'MongoDB',
};

export const noDatabaseOpenToInternet = definePolicy({
  id: 'no-database-open-to-internet',
  description: 'Database and cache ports (3306, 5432, 6379, 11211, 27017) are never open to the internet.',
  severity: 'error',
  check: ({ spec }) =>
    forEachIngress(spec, (rule, path, firewall) => {
      // An any/any rule is already reported by no-any-any; one report per mistake.
      if (!fromInternet(rule) || isAnyAny(rule) || rule.protocol === 'icmp' || rule.protocol === 'udp') return undefined;
      const ports = portsOf(rule);
      const exposed = Object.entries(DATABASE_PORTS)
        .filter(([port]) => Number(port) >= ports.from && Number(port) <= ports.to)
        .map(([port, name]) => `${name} ${port}`);
      if (exposed.length === 0) return undefined;
      return {
        path,
        message: `firewall "${firewall}" opens ${exposed.join(', ')} to the internet (${(rule.from as { cidr: string }).cidr})`,
        fix: 'allow it only from the tier that needs it: from: { firewall: "<web tier>" } or from: { subnet: "<name>" }',
      };
    }),
});

export const sshOpenToInternet = definePolicy({
  id: 'ssh-open-to-internet',
  description: 'SSH (22) open to the whole internet is reported as a warning.',
  severity: 'warning',
  check: ({ spec }) =>
    forEachIngress(spec, (rule, path, firewall) => {
      const ports = portsOf(rule);
      if (!fromInternet(rule) || isAnyAny(rule) || rule.protocol !== 'tcp' || ports.from > 22 || ports.to < 22) return undefined;
      return {
        path,
        message: `firewall "${firewall}" opens SSH to the internet`,
        fix: 'restrict SSH to your office or bastion CIDR, or reach instances through a jump host',
      };
    }),
});

/** Instances must carry these tags. `requiredTags(['Name', 'Version', 'Owner'])` makes a stricter rule. */
export function requiredTags(tags: readonly string[]): PolicyRule {
  return definePolicy({
    id: 'required-tags',
    description: `Every instance carries the tags ${tags.join(', ')}.`,
    severity: 'error',
    check: ({ spec }) =>
      spec.instances.flatMap((instance, index) => {
        const missing = tags.filter((tag) => !(tag in instance.tags) || instance.tags[tag] === '');
        return missing.length === 0
          ? []
          : [
              {
                path: `instances[${index}].tags`,
                message: `instance "${instance.name}" lacks the tag${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
                fix: `add ${missing.map((tag) => `${tag}: "..."`).join(', ')} to its tags`,
              },
            ];
      }),
  });
}

export const replacementLosesDisk = definePolicy({
  id: 'replacement-loses-disk',
  description: 'A plan that replaces or deletes an instance warns that its local disk is lost.',
  severity: 'warning',
  check: ({ plan }) =>
    (plan?.actions ?? [])
      .filter((action) => action.kind === 'instance' && (action.type === 'replace' || action.type === 'delete'))
      .map((action) => ({
        path: action.address,
        message: `${action.address} will be ${action.type === 'replace' ? 'replaced' : 'deleted'}: data on its local disk is lost`,
        fix: 'move the data first (a data mover), or change only fields that update in place',
      })),
});

export const securityRules: readonly PolicyRule[] = [
  noAnyAny,
  noDatabaseOpenToInternet,
  sshOpenToInternet,
  requiredTags(['Name', 'Version']),
  replacementLosesDisk,
];

/** Every built-in rule. */
export const builtInRules: readonly PolicyRule[] = [...integrityRules, ...securityRules];
