import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  ArmadaError,
  ConflictError,
  ConnectionError,
  DependencyViolationError,
  NotFoundError,
  ThrottledError,
  ValidationError,
  builtInRules,
  checkEnvironment,
  cidrContains,
  cidrsOverlap,
  definePolicy,
  evaluatePolicies,
  loadSpecFile,
  parseCidr,
  parseSpec,
  providerOptionsOf,
  safeParseSpec,
  toArmadaError,
  type EnvironmentSpecInput,
  type Violation,
} from '../src/index.js';

const publicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR test';

function goodSpec(): EnvironmentSpecInput {
  return {
    name: 'good',
    provider: { id: 'in-memory', region: 'local-1' },
    network: {
      name: 'net',
      cidr: '10.0.0.0/16',
      subnets: [
        { name: 'public', cidr: '10.0.1.0/24', access: 'public' },
        { name: 'private', cidr: '10.0.2.0/24', access: 'private' },
      ],
    },
    firewalls: [
      { name: 'web', description: 'web', ingress: [{ protocol: 'tcp', ports: 443, from: '0.0.0.0/0' }] },
      { name: 'db', description: 'db', ingress: [{ protocol: 'tcp', ports: '3306-3307', from: { firewall: 'web' } }] },
    ],
    keyPairs: [{ name: 'deploy', publicKey }],
    instances: [
      { name: 'web', size: 'medium', image: 'debian-12', subnet: 'public', firewalls: ['web'], keyPair: 'deploy', tags: { Name: 'web', Version: '1' }, aws: { instanceType: 'm3.medium' } },
    ],
  };
}

const rulesOf = (violations: Violation[]) => violations.map((violation) => `${violation.rule} ${violation.path}`);

describe('loading specs', () => {
  it('reads the same spec from an object, JSON and YAML, with key files relative to the file', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'armada-spec-'));
    await writeFile(join(directory, 'deploy.pub'), `${publicKey}\n`);
    const { keyPairs: _keys, ...rest } = goodSpec();
    const onDisk = { ...rest, keyPairs: [{ name: 'deploy', publicKeyPath: 'deploy.pub' }] };
    await writeFile(join(directory, 'env.json'), JSON.stringify(onDisk));
    await writeFile(join(directory, 'env.yaml'), stringify(onDisk));
    const fromObject = await parseSpec(goodSpec());
    expect(await loadSpecFile(join(directory, 'env.json'))).toEqual(fromObject);
    expect(await loadSpecFile(join(directory, 'env.yaml'))).toEqual(fromObject);
    expect(fromObject.firewalls[1]?.ingress[0]).toEqual({ protocol: 'tcp', ports: { from: 3306, to: 3307 }, from: { firewall: 'web' } });
    expect(fromObject.firewalls[0]?.ingress[0]?.from).toEqual({ cidr: '0.0.0.0/0' });
    expect(fromObject.instances[0]?.count).toBe(1);
    expect(providerOptionsOf(fromObject.instances[0] as NonNullable<(typeof fromObject.instances)[0]>, 'aws')).toEqual({ instanceType: 'm3.medium' });
  });

  it('reports every shape error at once, with paths and fixes', () => {
    const input = goodSpec() as Record<string, unknown>;
    const instance = { ...(goodSpec().instances?.[0] as object), size: 'huge', subent: 'x', count: 0 };
    const result = safeParseSpec({ ...input, network: { ...goodSpec().network, subnets: [{ name: 'a', cidr: '10.0.1.0/24', access: 'open' }] }, instances: [instance] });
    expect(result.success).toBe(false);
    if (result.success) return;
    const byPath = Object.fromEntries(result.issues.map((issue) => [issue.path, issue]));
    // The instance's subnet "public" is gone too: said in the same report, though the shape is wrong.
    expect(Object.keys(byPath).sort()).toEqual(['instances[0].count', 'instances[0].size', 'instances[0].subent', 'instances[0].subnet', 'network.subnets[0].access']);
    expect(byPath['network.subnets[0].access']?.fix).toBe('use one of: "public", "private"');
    expect(byPath['instances[0].size']?.message).toMatch(/must be one of nano, micro, small, medium, large, xlarge, or \{ cpus, memoryGiB \}/);
    expect(byPath['instances[0].subent']?.message).toMatch(/is not a known field/);
  });

  it('suggests the field a typo meant', () => {
    const { name: _name, ...withoutName } = goodSpec();
    const result = safeParseSpec({ ...withoutName, nmae: 'x', network: { ...goodSpec().network, subnets: [{ name: 'a', cidr: '10.0.1.0/24', acess: 'public' }] } });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.issues).toContainEqual({ path: 'nmae', message: 'is not a known field', fix: 'did you mean "name"?' });
    expect(result.issues).toContainEqual({ path: 'network.subnets[0].acess', message: 'is not a known field', fix: 'did you mean "access"?' });
    expect(result.issues).toContainEqual({ path: 'name', message: 'is required (a text)', fix: 'add the field "name"' });
  });

  it('says what a wrong type expected and what it got, never "add the required field"', () => {
    const instance = { ...(goodSpec().instances?.[0] as object), count: 2.5, tags: 'hunter2-secret' };
    const result = safeParseSpec({ ...goodSpec(), network: { ...goodSpec().network, cidr: 42 }, instances: [instance] });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.issues).toContainEqual({ path: 'instances[0].count', message: 'expected an integer, got 2.5' });
    expect(result.issues).toContainEqual({ path: 'network.cidr', message: 'expected a text, got 42' });
    // A text found where something else belongs is never shown: it may be a secret.
    expect(result.issues).toContainEqual({ path: 'instances[0].tags', message: 'expected a mapping, got a text' });
    expect(JSON.stringify(result.issues)).not.toContain('hunter2');
    expect(result.issues.map((issue) => issue.fix ?? '')).not.toContainEqual(expect.stringContaining('required'));
  });

  it('reports the reference and CIDR checks together with shape errors', () => {
    const spec = goodSpec();
    const instance = { ...(spec.instances?.[0] as object), count: 'two', subnet: 'nowhere' };
    const network = { ...spec.network, subnets: [...(spec.network?.subnets ?? []), { name: 'overlap', cidr: '10.0.1.128/25', access: 'private' }] };
    const result = safeParseSpec({ ...spec, network, instances: [instance], firewalls: [{ name: 'web', description: 'web', ingress: [{ protocol: 'tcp', ports: 443, from: { firewall: 'missing' } }] }] });
    expect(result.success).toBe(false);
    if (result.success) return;
    const paths = result.issues.map((issue) => issue.path);
    expect(paths).toContain('instances[0].count');
    expect(paths).toContain('instances[0].subnet');
    expect(paths).toContain('firewalls[0].ingress[0].from');
    expect(paths).toContainEqual(expect.stringMatching(/^network\.subnets\[2\]/));
    expect(checkEnvironment({ ...spec, instances: [instance] }).violations.map((violation) => `${violation.rule} ${violation.path}`)).toEqual(['schema instances[0].count', 'integrity instances[0].subnet']);
  });

  it('reads a file with a UTF-8 byte-order mark; refuses a binary file without printing it, and __proto__ or constructor keys by name', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'armada-spec-'));
    await writeFile(join(directory, 'bom.yaml'), `\uFEFF${stringify(goodSpec())}`);
    expect((await loadSpecFile(join(directory, 'bom.yaml'))).name).toBe('good');
    await writeFile(join(directory, 'binary.yaml'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x00, 0xff, 0xfe, 0x53, 0x45, 0x43, 0x52, 0x45, 0x54]));
    const binary = await loadSpecFile(join(directory, 'binary.yaml')).catch((caught: unknown) => caught as Error);
    expect(ValidationError.isInstance(binary)).toBe(true);
    expect((binary as Error).message).toContain('is not a text file');
    expect((binary as Error).message).not.toContain('SECRET');
    const polluted = JSON.stringify(goodSpec()).replace('"tags":{', '"tags":{"__proto__":{"polluted":"yes"},');
    await writeFile(join(directory, 'proto.json'), polluted);
    const proto = await loadSpecFile(join(directory, 'proto.json')).catch((caught: unknown) => caught as ValidationError);
    expect((proto as ValidationError).issues).toEqual([{ path: 'instances[0].tags.__proto__', message: '"__proto__" is not allowed as a key', fix: 'rename or remove it' }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await writeFile(join(directory, 'constructor.yaml'), stringify({ ...goodSpec(), network: { ...goodSpec().network, constructor: 'x' } }));
    const named = await loadSpecFile(join(directory, 'constructor.yaml')).catch((caught: unknown) => caught as ValidationError);
    expect((named as ValidationError).issues.map((issue) => issue.path)).toEqual(['network.constructor']);
    expect(safeParseSpec({ ...goodSpec(), prototype: 1 })).toMatchObject({ success: false, issues: [{ path: 'prototype' }] });
  });

  it('refuses a spec whose references do not resolve, listing each', async () => {
    const spec = goodSpec();
    const instance = spec.instances?.[0];
    if (instance) Object.assign(instance, { subnet: 'nowhere', keyPair: 'lost' });
    const error = await parseSpec(spec).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues.map((issue) => issue.path).sort()).toEqual(['instances[0].keyPair', 'instances[0].subnet']);
  });

  it('names an unreadable key file and what to do', async () => {
    const { keyPairs: _keys, ...rest } = goodSpec();
    const error = await parseSpec({ ...rest, keyPairs: [{ name: 'deploy', publicKeyPath: 'missing.pub' }] }, { baseDirectory: tmpdir() }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues[0]).toMatchObject({ path: 'keyPairs[0].publicKeyPath', message: expect.stringMatching(/ENOENT/) });
  });
});

describe('policies', () => {
  it('pass on a good spec', () => {
    expect(checkEnvironment(goodSpec()).violations).toEqual([]);
  });

  it.each([
    ['all protocols from ::/0', { protocol: 'all', from: '::/0' }, 'no-any-any'],
    ['every tcp port from the internet', { protocol: 'tcp', from: '0.0.0.0/0' }, 'no-any-any'],
    ['PostgreSQL', { protocol: 'tcp', ports: 5432, from: '0.0.0.0/0' }, 'no-database-open-to-internet'],
    ['a range covering MySQL', { protocol: 'tcp', ports: '3000-4000', from: '0.0.0.0/0' }, 'no-database-open-to-internet'],
    ['Memcached', { protocol: 'tcp', ports: 11211, from: '0.0.0.0/0' }, 'no-database-open-to-internet'],
    ['MongoDB', { protocol: 'tcp', ports: 27017, from: '0.0.0.0/0' }, 'no-database-open-to-internet'],
    ['Redis', { protocol: 'tcp', ports: 6379, from: { cidr: '0.0.0.0/0' } }, 'no-database-open-to-internet'],
  ])('flag %s as an error', (_label, rule, ruleId) => {
    const spec = goodSpec();
    spec.firewalls?.[0]?.ingress?.push(rule as never);
    const check = checkEnvironment(spec);
    expect(rulesOf(check.violations)).toEqual([`${ruleId} firewalls[0].ingress[1]`]);
    expect(check.ok).toBe(false);
  });

  it('warn, and only warn, about SSH open to the internet', () => {
    const spec = goodSpec();
    spec.firewalls?.[0]?.ingress?.push({ protocol: 'tcp', ports: 22, from: '0.0.0.0/0' });
    const check = checkEnvironment(spec);
    expect(check.violations.map((violation) => [violation.rule, violation.severity])).toEqual([['ssh-open-to-internet', 'warning']]);
    expect(check.ok).toBe(true);
  });

  it('do not flag a database port open to a private range or over udp', () => {
    const spec = goodSpec();
    spec.firewalls?.[1]?.ingress?.push({ protocol: 'tcp', ports: 3306, from: '10.0.0.0/8' }, { protocol: 'udp', ports: 6379, from: '0.0.0.0/0' });
    expect(checkEnvironment(spec).violations).toEqual([]);
  });

  it('take user rules as plain functions, and report a rule that throws without hiding the others', () => {
    const spec = goodSpec();
    spec.firewalls?.[0]?.ingress?.push({ protocol: 'all', from: '0.0.0.0/0' });
    const noWebNames = definePolicy({
      id: 'no-web-names',
      description: 'Instances may not be called web.',
      severity: 'warning',
      check: ({ spec: parsed }) => parsed.instances.flatMap((instance, index) => (instance.name === 'web' ? [{ path: `instances[${index}].name`, message: 'called web' }] : [])),
    });
    const broken = definePolicy({ id: 'broken', description: 'throws', severity: 'error', check: () => { throw new Error('boom'); } });
    const check = checkEnvironment(spec, [...builtInRules, noWebNames, broken]);
    expect(rulesOf(check.violations)).toEqual(['no-any-any firewalls[0].ingress[1]', 'no-web-names instances[0].name', 'broken ']);
    expect(check.violations.find((violation) => violation.rule === 'broken')?.message).toBe('policy rule threw: boom');
  });

  it('warn when a plan replaces an instance', async () => {
    const spec = await parseSpec(goodSpec());
    const report = evaluatePolicies(
      {
        spec,
        plan: {
          id: 'p',
          environment: 'good',
          provider: { id: 'x', region: 'y' },
          mode: 'apply',
          notes: [],
          summary: { create: 0, update: 0, replace: 1, delete: 0, noop: 0 },
          actions: [{ address: 'instance.web', kind: 'instance', name: 'web', type: 'replace', changes: [] }],
        },
      },
      builtInRules,
    );
    expect(report.warnings.map((violation) => violation.rule)).toEqual(['replacement-loses-disk']);
    expect(report.ok).toBe(true);
  });
});

describe('CIDR helpers', () => {
  it('parse IPv4 and IPv6 and refuse what is malformed', () => {
    expect(parseCidr('10.0.0.0/16').ok).toBe(true);
    expect(parseCidr('2001:db8::/32').ok).toBe(true);
    expect(parseCidr('10.0.0.1/16')).toEqual({ ok: false, reason: 'host bits are set; the block starts at 10.0.0.0/16' });
    expect(parseCidr('10.0.0.0')).toMatchObject({ ok: false });
    expect(parseCidr('10.0.0.0/33')).toMatchObject({ ok: false });
    expect(parseCidr('256.0.0.0/8')).toMatchObject({ ok: false });
  });
  it('tell containment and overlap', () => {
    const cidr = (text: string) => {
      const parsed = parseCidr(text);
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.cidr;
    };
    expect(cidrContains(cidr('10.0.0.0/16'), cidr('10.0.1.0/24'))).toBe(true);
    expect(cidrContains(cidr('10.0.0.0/16'), cidr('10.1.0.0/24'))).toBe(false);
    expect(cidrsOverlap(cidr('10.0.1.0/24'), cidr('10.0.1.128/25'))).toBe(true);
    expect(cidrsOverlap(cidr('10.0.1.0/25'), cidr('10.0.1.128/25'))).toBe(false);
    expect(cidrsOverlap(cidr('10.0.0.0/8'), cidr('::/0'))).toBe(false);
  });
});

describe('subnet checks at scale', () => {
  const cidr = (text: string) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.cidr;
  };
  const overlapsOf = (input: EnvironmentSpecInput) =>
    checkEnvironment(input)
      .violations.filter((violation) => violation.rule === 'subnets-fit-network' && violation.message.includes('overlaps'))
      .map((violation) => `${violation.path}: ${violation.message}`);

  it('report every overlapping pair, on the later subnet, in spec order, as comparing every pair would', () => {
    // Nested, equal, adjacent (not overlapping), out of order, and two families.
    const blocks = ['10.0.0.0/16', '10.0.1.0/24', '10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/25', '10.0.2.128/25', '10.0.2.0/23', '10.0.9.0/24', '10.0.1.128/26', '2001:db8::/48', '2001:db8:0:1::/64', '2001:db8:1::/48'];
    const spec = goodSpec();
    spec.network.cidr = '10.0.0.0/8';
    spec.network.subnets = blocks.map((block, index) => ({ name: `s${index}`, cidr: block, access: 'private' }));
    spec.instances = [];
    const expected: string[] = [];
    for (let later = 0; later < blocks.length; later++) {
      for (let earlier = 0; earlier < later; earlier++) {
        if (cidrsOverlap(cidr(blocks[earlier] as string), cidr(blocks[later] as string))) {
          expected.push(`network.subnets[${later}].cidr: subnet "s${later}" (${blocks[later]}) overlaps subnet "s${earlier}" (${blocks[earlier]})`);
        }
      }
    }
    expect(expected.length).toBeGreaterThan(8);
    expect(overlapsOf(spec)).toEqual(expected);
  });

  it('check 40,000 subnets, finding the one overlap and keeping fixes short', async () => {
    const spec = goodSpec();
    spec.network.cidr = '10.0.0.0/8';
    spec.network.subnets = Array.from({ length: 40_000 }, (_, index) => ({ name: `subnet-${index}`, cidr: `10.${index >> 8}.${index & 255}.0/24`, access: 'private' }));
    spec.instances = [{ name: 'app', size: 'small', image: 'debian-12', subnet: 'subnet-0' }];
    expect((await parseSpec(spec)).network.subnets).toHaveLength(40_000);
    // One subnet moved onto another's block, and an instance in a subnet that does not exist.
    (spec.network.subnets[39_999] as { cidr: string }).cidr = '10.0.7.0/24';
    spec.instances.push({ name: 'lost', size: 'small', image: 'debian-12', subnet: 'nowhere' });
    const { violations } = checkEnvironment(spec);
    expect(violations.filter((violation) => violation.message.includes('overlaps')).map((violation) => violation.path)).toEqual(['network.subnets[39999].cidr']);
    const lost = violations.find((violation) => violation.path === 'instances[1].subnet');
    expect(lost?.fix).toBe('use one of: subnet-0, subnet-1, subnet-2, subnet-3, subnet-4, subnet-5, subnet-6, subnet-7, subnet-8, subnet-9, ... (40000 in all)');
  });
});

describe('typed errors', () => {
  it('name a refused connection as a connection error, retryable, not a throttle', async () => {
    const { createServer, connect } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    const refused = await new Promise<Error>((resolve) => connect(port, '127.0.0.1').once('error', resolve));
    const mapped = toArmadaError(refused, 'somewhere');
    expect(ConnectionError.isInstance(mapped) && !ThrottledError.isInstance(mapped)).toBe(true);
    expect([mapped.code, mapped.retryable, mapped.provider]).toEqual(['Connection', true, 'somewhere']);
    expect(mapped.message).toMatch(/^the connection failed \(ECONNREFUSED\): connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
  });
  it('carry code and retryable defaults, and isInstance follows the hierarchy', () => {
    const violation = new DependencyViolationError('in use', { provider: 'aws', requestId: 'r-1' });
    expect([violation.code, violation.retryable, violation.provider, violation.requestId]).toEqual(['DependencyViolation', true, 'aws', 'r-1']);
    expect(ConflictError.isInstance(violation)).toBe(true);
    expect(ArmadaError.isInstance(violation)).toBe(true);
    expect(NotFoundError.isInstance(violation)).toBe(false);
    expect(new ThrottledError('slow', { retryAfterMs: 5 }).retryable).toBe(true);
    expect(new NotFoundError('x').retryable).toBe(false);
    expect(ArmadaError.isInstance(new Error('plain'))).toBe(false);
  });

  it('isInstance recognises errors from another copy of the package', async () => {
    // A second module instance of errors.ts, as a plugin bundling its own @armada/core would have.
    const secondCopy = '../src/errors.ts?copy';
    const copy = (await import(/* @vite-ignore */ secondCopy)) as typeof import('../src/errors.js');
    const foreign = new copy.NotFoundError('from another copy');
    expect(foreign instanceof NotFoundError).toBe(false);
    expect(NotFoundError.isInstance(foreign)).toBe(true);
    expect(ArmadaError.isInstance(foreign)).toBe(true);
    expect(ThrottledError.isInstance(foreign)).toBe(false);
  });
});
