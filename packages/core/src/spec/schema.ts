/**
 * The environment spec: what a user writes (TypeScript object, JSON or YAML) to describe one
 * environment. The zod schemas are the single source of truth; the types are inferred from them.
 *
 * The schemas check shape and simple formats. Checks that need the whole spec (references resolve,
 * subnets inside the VPC, unique names) live in `integrity.ts` so that all of them are reported in
 * one call, alongside the shape errors.
 */
import { z } from 'zod';

/** Logical names: used in addresses (`instance.web-1`) and ownership tags. */
export const nameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$/, {
    error: 'must start with a letter or digit and use only letters, digits, spaces, "-", "_" and "." (at most 63)',
  });

/**
 * A CIDR block. Its format is checked by the `valid-cidrs` integrity rule rather than here, so that
 * one malformed block does not stop the policies from reporting everything else in the same call.
 */
export const cidrSchema = z.string().min(1);

/**
 * Provider-specific options sit under a key named after the provider (`aws: {...}`). Any extra key
 * must therefore hold an object; anything else is almost certainly a typo of a known field. (A
 * loose object plus this check, rather than zod's catchall, keeps the inferred type assignable
 * from plain object literals.)
 */
function providerBlocksOnly(known: readonly string[]) {
  return (value: Record<string, unknown>, context: z.RefinementCtx) => {
    for (const [key, block] of Object.entries(value)) {
      if (known.includes(key) || (typeof block === 'object' && block !== null && !Array.isArray(block))) continue;
      context.addIssue({
        code: 'custom',
        path: [key],
        message: 'is not a known field; provider-specific options go under a key named after the provider, as an object',
      });
    }
  };
}

export const NAMED_SIZES = {
  nano: { cpus: 1, memoryGiB: 0.5 },
  micro: { cpus: 1, memoryGiB: 1 },
  small: { cpus: 1, memoryGiB: 2 },
  medium: { cpus: 1, memoryGiB: 3.75 },
  large: { cpus: 2, memoryGiB: 7.5 },
  xlarge: { cpus: 4, memoryGiB: 15 },
} as const satisfies Record<string, { cpus: number; memoryGiB: number }>;
export type NamedSize = keyof typeof NAMED_SIZES;

/** A portable size: a named class, or at least this many CPUs and this much memory. */
export const sizeSchema = z.union(
  [
    z.enum(Object.keys(NAMED_SIZES) as [NamedSize, ...NamedSize[]]),
    z.strictObject({ cpus: z.number().int().positive(), memoryGiB: z.number().positive() }),
  ],
  { error: `must be one of ${Object.keys(NAMED_SIZES).join(', ')}, or { cpus, memoryGiB }` },
);
export type Size = z.infer<typeof sizeSchema>;

/** A portable image: operating system and version, e.g. `debian-12`, `ubuntu-24.04`. */
export const imageSchema = z
  .string()
  .regex(/^[a-z]+-[0-9][0-9.]*$/, { error: 'must be os-version, e.g. "debian-12" or "ubuntu-24.04"' });

const portNumber = z.number().int().min(0).max(65535);
export const portsSchema = z
  .union([
    portNumber,
    z.string().regex(/^\d{1,5}-\d{1,5}$/, { error: 'a range is written "from-to", e.g. "8000-8100"' }),
    z.strictObject({ from: portNumber, to: portNumber }),
  ])
  .transform((ports, context) => {
    const range =
      typeof ports === 'number'
        ? { from: ports, to: ports }
        : typeof ports === 'string'
          ? { from: Number(ports.split('-')[0]), to: Number(ports.split('-')[1]) }
          : ports;
    if (range.to > 65535 || range.from > range.to) {
      context.addIssue({ code: 'custom', message: `port range ${range.from}-${range.to} must satisfy 0 <= from <= to <= 65535` });
    }
    return range;
  });
export type PortRange = { from: number; to: number };

/** Whom a rule lets in (ingress) or out to (egress): an address block, a firewall, or a subnet. */
export const peerSchema = z
  .union(
    [
      cidrSchema,
      z.strictObject({ cidr: cidrSchema }),
      z.strictObject({ firewall: nameSchema }),
      z.strictObject({ subnet: nameSchema }),
    ],
    { error: 'must be a CIDR string, { cidr }, { firewall: name } or { subnet: name }' },
  )
  .transform((peer): Peer => (typeof peer === 'string' ? { cidr: peer } : peer));
export type Peer = { cidr: string } | { firewall: string } | { subnet: string };

export const protocolSchema = z.enum(['tcp', 'udp', 'icmp', 'all']);
export type Protocol = z.infer<typeof protocolSchema>;

const ruleFields = {
  protocol: protocolSchema,
  /** Omitted: every port. Not used for icmp and all. */
  ports: portsSchema.optional(),
  description: z.string().max(255).optional(),
};
export const ingressRuleSchema = z.strictObject({ ...ruleFields, from: peerSchema });
export const egressRuleSchema = z.strictObject({ ...ruleFields, to: peerSchema });
export type IngressRule = z.infer<typeof ingressRuleSchema>;
export type EgressRule = z.infer<typeof egressRuleSchema>;

export const firewallSchema = z.strictObject({
  name: nameSchema,
  description: z.string().min(1).max(255),
  ingress: z.array(ingressRuleSchema).default([]),
  /** Omitted: the provider's default (usually all outbound traffic allowed). */
  egress: z.array(egressRuleSchema).optional(),
});
export type Firewall = z.infer<typeof firewallSchema>;

export const subnetSchema = z.strictObject({
  name: nameSchema,
  cidr: cidrSchema,
  /** Public subnets route to the internet and give instances public addresses. */
  access: z.enum(['public', 'private']),
  zone: z.string().min(1).optional(),
});
export type Subnet = z.infer<typeof subnetSchema>;

export const networkSchema = z.strictObject({
  name: nameSchema,
  cidr: cidrSchema,
  subnets: z.array(subnetSchema).min(1, { error: 'needs at least one subnet' }),
});
export type Network = z.infer<typeof networkSchema>;

export const keyPairSchema = z
  .strictObject({
    name: nameSchema,
    /** OpenSSH public key text (`ssh-ed25519 AAAA... comment`). */
    publicKey: z
      .string()
      .regex(/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/, {
        error: 'must be an OpenSSH public key such as "ssh-ed25519 AAAA... comment"',
      })
      .optional(),
    /** Path to a `.pub` file, read when the spec is loaded (relative to the spec file). */
    publicKeyPath: z.string().min(1).optional(),
  })
  .superRefine((keyPair, context) => {
    if ((keyPair.publicKey === undefined) === (keyPair.publicKeyPath === undefined)) {
      context.addIssue({ code: 'custom', message: 'give exactly one of publicKey or publicKeyPath' });
    }
  });
export type KeyPair = z.infer<typeof keyPairSchema>;

export const tagsSchema = z.record(
  z.string().min(1).max(127),
  z.string().max(255),
);

const instanceFields = {
    name: nameSchema,
    /** How many identical instances; with more than one they are named `name-1`, `name-2`, ... */
    count: z.number().int().min(1).max(1000).default(1),
    size: sizeSchema,
    image: imageSchema,
    subnet: nameSchema,
    firewalls: z.array(nameSchema).default([]),
    keyPair: nameSchema.optional(),
    /** User tags. `Name` gets the instance's index appended when count > 1. */
    tags: tagsSchema.default({}),
    /** cloud-init user data. Treated as sensitive: masked in plans and logs. */
    userData: z.string().max(16384).optional(),
    /** What the instance is for (`web`, `mysql-primary`): used by server policies. */
    role: z.string().min(1).optional(),
};
// `when`: check the extra keys even when a field failed, so a typo is reported with the rest.
const alwaysForObjects = { when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null };
export const instanceSchema = z.looseObject(instanceFields).superRefine(providerBlocksOnly(Object.keys(instanceFields)), alwaysForObjects);
export type Instance = z.infer<typeof instanceSchema>;

export const dnsRecordSchema = z.strictObject({
  /** Relative to the zone (`www`), or `@` for the apex. */
  name: z.string().min(1).max(253),
  type: z.enum(['A', 'AAAA', 'CNAME', 'TXT']),
  ttl: z.number().int().min(1).max(86400).default(300),
  values: z.array(z.string().min(1)).min(1),
});
export type DnsRecord = z.infer<typeof dnsRecordSchema>;

export const dnsSchema = z.strictObject({
  zone: z.string().regex(/^([a-z0-9-]+\.)+[a-z]{2,}\.?$/i, { error: 'must be a domain name such as example.com' }),
  records: z.array(dnsRecordSchema).default([]),
});

const providerSelectionFields = {
  /** Registry id of the provider plugin: `aws`, `digitalocean`, `in-memory`, ... */
  id: z.string().min(1),
  region: z.string().min(1),
};
export const providerSelectionSchema = z
  .looseObject(providerSelectionFields)
  .superRefine(providerBlocksOnly(Object.keys(providerSelectionFields)), alwaysForObjects);

export const environmentSpecSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/i, {
    error: 'must be letters, digits and "-", starting with a letter or digit (it goes into every ownership tag)',
  }),
  provider: providerSelectionSchema,
  network: networkSchema,
  firewalls: z.array(firewallSchema).default([]),
  keyPairs: z.array(keyPairSchema).default([]),
  instances: z.array(instanceSchema).default([]),
  dns: dnsSchema.optional(),
});

/** A parsed, validated environment spec (defaults filled in, peers and ports normalised). */
export type EnvironmentSpec = z.infer<typeof environmentSpecSchema>;
/** What a user may write: optional fields may be left out, ports and peers in any accepted form. */
export type EnvironmentSpecInput = z.input<typeof environmentSpecSchema>;

/** Keys of an instance or provider selection that are not spec fields: the provider-specific blocks. */
const INSTANCE_FIELDS = new Set(Object.keys(instanceFields));
export function providerOptionsOf(instance: Instance, providerId: string): Record<string, unknown> {
  const options = (instance as Record<string, unknown>)[providerId];
  return INSTANCE_FIELDS.has(providerId) || typeof options !== 'object' || options === null
    ? {}
    : (options as Record<string, unknown>);
}
