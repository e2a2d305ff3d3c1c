/**
 * The DNS server on 127.53.0.1, answering from the emulators' zones: records made through the real
 * Route 53 client and through dots-wrapper, queried with dig (Debian's dnsutils) and with Node's
 * resolver (c-ares), over UDP and TCP.
 */
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { promisify } from 'node:util';
import { ChangeResourceRecordSetsCommand, Route53Client, type Change, type RRType } from '@aws-sdk/client-route-53';
import { createApiClient } from 'dots-wrapper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsEmulator, startDigitalOceanEmulator, startDnsServer, type AwsEmulator, type DigitalOceanEmulator, type DnsServer } from '../src/index.js';

const run = promisify(execFile);
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** dig's whole output for one query to the server (one try, two seconds). */
async function dig(server: DnsServer, name: string, type: string, ...options: string[]): Promise<string> {
  const { stdout } = await run('dig', [`@${server.address}`, '-p', String(server.port), '+time=2', '+tries=1', name, type, ...options]);
  return stdout;
}
/** dig +short, one line an entry. */
async function digShort(server: DnsServer, name: string, type = 'A', ...options: string[]): Promise<string[]> {
  return (await dig(server, name, type, '+short', ...options)).split('\n').filter((line) => line !== '');
}
/** The header dig prints: status and flags. */
async function digHeader(server: DnsServer, name: string, type = 'A', ...options: string[]): Promise<{ status: string; flags: string[]; output: string }> {
  const output = await dig(server, name, type, ...options);
  const status = /status: ([A-Z]+)/.exec(output)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]*);/.exec(output)?.[1] ?? '').split(' ').filter(Boolean);
  return { status, flags, output };
}
/** The records of one section, as dig prints them (`name ttl IN type data`, whitespace squeezed). */
async function digSection(server: DnsServer, name: string, type: string, section: 'answer' | 'authority' | 'additional', ...options: string[]): Promise<string[]> {
  const output = await dig(server, name, type, '+noall', `+${section}`, ...options);
  return output
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith(';'))
    .map((line) => line.split(/\s+/).join(' '));
}
function resolverFor(server: DnsServer): Resolver {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`${server.address}:${server.port}`]);
  return resolver;
}
const errorCode = (promise: Promise<unknown>) => promise.then(() => 'resolved', (error: NodeJS.ErrnoException) => error.code);

describe('DNS server on the AWS emulator (Route 53)', () => {
  let emulator: AwsEmulator;
  let route53: Route53Client;
  let zoneId: string;
  let server: DnsServer;
  const upsert = (name: string, type: RRType, ttl: number, values: string[]): Change => ({
    Action: 'UPSERT',
    ResourceRecordSet: { Name: name, Type: type, TTL: ttl, ResourceRecords: values.map((Value) => ({ Value })) },
  });
  const change = (...changes: Change[]) => route53.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId, ChangeBatch: { Changes: changes } }));

  beforeAll(async () => {
    emulator = await startAwsEmulator({ changeSyncMs: 0 });
    route53 = new Route53Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
    zoneId = emulator.createHostedZone('armada.example');
    await change(
      upsert('www.armada.example', 'A', 300, ['192.0.2.10', '192.0.2.11']),
      upsert('www.armada.example', 'TXT', 300, ['"web"']),
      upsert('app.armada.example', 'CNAME', 60, ['web.armada.example']),
      upsert('web.armada.example', 'CNAME', 120, ['www.armada.example']),
      upsert('armada.example', 'TXT', 600, ['"v=spf1 -all"', '"two" "strings"']),
      upsert('armada.example', 'MX', 3600, ['10 mail.armada.example']),
      upsert('mail.armada.example', 'A', 3600, ['192.0.2.25']),
      upsert('v6.armada.example', 'AAAA', 300, ['2001:db8::10']),
      upsert('*.wild.armada.example', 'A', 30, ['192.0.2.99']),
      // As Route 53 lists a wildcard: `*` in octal.
      upsert('\\052.star.armada.example', 'A', 30, ['192.0.2.98']),
      upsert('a.deep.armada.example', 'A', 300, ['192.0.2.40']),
      upsert('cdn.armada.example', 'CNAME', 300, ['edge.cdn.elsewhere.example']),
      upsert('dangling.armada.example', 'CNAME', 300, ['gone.armada.example']),
      upsert('sub.armada.example', 'NS', 86400, ['ns1.sub.armada.example']),
      upsert('ns1.sub.armada.example', 'A', 86400, ['192.0.2.53']),
      upsert('cutover.armada.example', 'A', 3600, ['192.0.2.20']),
    );
    server = await startDnsServer({ sources: [emulator], port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    route53?.destroy();
    await emulator?.close();
  });

  it('answers A records authoritatively with their TTL, through dig and Node', async () => {
    expect(server.address).toBe('127.53.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect((await digShort(server, 'www.armada.example')).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    const header = await digHeader(server, 'www.armada.example');
    expect(header.status).toBe('NOERROR');
    expect(header.flags).toContain('aa');
    expect(header.flags).not.toContain('ra');
    expect((await digSection(server, 'www.armada.example', 'A', 'answer')).sort()).toEqual(['www.armada.example. 300 IN A 192.0.2.10', 'www.armada.example. 300 IN A 192.0.2.11']);
    const resolver = resolverFor(server);
    expect((await resolver.resolve4('www.armada.example', { ttl: true })).sort((a, b) => a.address.localeCompare(b.address))).toEqual([
      { address: '192.0.2.10', ttl: 300 },
      { address: '192.0.2.11', ttl: 300 },
    ]);
    expect(await resolver.resolve6('v6.armada.example')).toEqual(['2001:db8::10']);
    expect(await digShort(server, 'v6.armada.example', 'AAAA')).toEqual(['2001:db8::10']);
    // Names are case-insensitive; the answer keeps the question's spelling.
    expect((await digSection(server, 'WWW.Armada.Example', 'A', 'answer'))[0]).toMatch(/^WWW\.Armada\.Example\. 300 IN A /);
  });

  it('follows a CNAME chain inside the zone and adds the target records', async () => {
    expect(await digShort(server, 'app.armada.example')).toEqual(['web.armada.example.', 'www.armada.example.', '192.0.2.10', '192.0.2.11']);
    const answer = await digSection(server, 'app.armada.example', 'A', 'answer');
    expect(answer.slice(0, 2)).toEqual(['app.armada.example. 60 IN CNAME web.armada.example.', 'web.armada.example. 120 IN CNAME www.armada.example.']);
    expect((await digHeader(server, 'app.armada.example')).flags).toContain('aa');
    // Other types follow the chain too; CNAME itself does not.
    expect(await digShort(server, 'app.armada.example', 'TXT')).toEqual(['web.armada.example.', 'www.armada.example.', '"web"']);
    expect(await digShort(server, 'app.armada.example', 'CNAME')).toEqual(['web.armada.example.']);
    const resolver = resolverFor(server);
    expect((await resolver.resolve4('app.armada.example')).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    expect(await resolver.resolveCname('app.armada.example')).toEqual(['web.armada.example']);
    // A CNAME out of the served zones is the client's to chase; one to a missing name is NXDOMAIN (RFC 6604).
    expect(await digShort(server, 'cdn.armada.example')).toEqual(['edge.cdn.elsewhere.example.']);
    expect((await digHeader(server, 'cdn.armada.example')).status).toBe('NOERROR');
    const dangling = await digHeader(server, 'dangling.armada.example');
    expect(dangling.status).toBe('NXDOMAIN');
    expect(dangling.output).toContain('gone.armada.example.');
  });

  it('answers NXDOMAIN with the SOA for a missing name, NODATA for a missing type', async () => {
    const missing = await digHeader(server, 'nope.armada.example');
    expect(missing.status).toBe('NXDOMAIN');
    expect(missing.flags).toContain('aa');
    // The SOA's TTL in a negative answer: the lesser of its own (900) and its minimum (86400).
    expect(await digSection(server, 'nope.armada.example', 'A', 'authority')).toEqual(['armada.example. 900 IN SOA ns-1.awsdns.test. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400']);
    const nodata = await digHeader(server, 'www.armada.example', 'AAAA');
    expect(nodata.status).toBe('NOERROR');
    expect(nodata.output).toContain('ANSWER: 0,');
    expect(await digSection(server, 'www.armada.example', 'AAAA', 'authority')).toHaveLength(1);
    const resolver = resolverFor(server);
    expect(await errorCode(resolver.resolve4('nope.armada.example'))).toBe('ENOTFOUND');
    expect(await errorCode(resolver.resolve6('www.armada.example'))).toBe('ENODATA');
  });

  it('refuses names outside its zones: it is not a recursive resolver', async () => {
    for (const name of ['www.example.com', 'armada.example.org', 'example']) {
      const refused = await digHeader(server, name);
      expect(refused.status).toBe('REFUSED');
      expect(refused.flags).not.toContain('aa');
    }
    expect(await errorCode(resolverFor(server).resolve4('www.example.com'))).toBe('EREFUSED');
  });

  it('answers the apex: SOA, NS, MX with its address, TXT', async () => {
    expect(await digShort(server, 'armada.example', 'SOA')).toEqual(['ns-1.awsdns.test. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400']);
    expect((await digShort(server, 'armada.example', 'NS')).sort()).toEqual(['ns-1.awsdns.test.', 'ns-2.awsdns.test.']);
    expect(await digShort(server, 'armada.example', 'MX')).toEqual(['10 mail.armada.example.']);
    expect(await digSection(server, 'armada.example', 'MX', 'additional')).toEqual(['mail.armada.example. 3600 IN A 192.0.2.25']);
    expect((await digShort(server, 'armada.example', 'TXT')).sort()).toEqual(['"two" "strings"', '"v=spf1 -all"']);
    const resolver = resolverFor(server);
    expect(await resolver.resolveSoa('armada.example')).toMatchObject({ nsname: 'ns-1.awsdns.test', hostmaster: 'awsdns-hostmaster.amazon.com', serial: 1, minttl: 86400 });
    expect((await resolver.resolveNs('armada.example')).sort()).toEqual(['ns-1.awsdns.test', 'ns-2.awsdns.test']);
    // Node 24 adds `type: 'MX'` to each entry: compare the two fields every version gives.
    expect((await resolver.resolveMx('armada.example')).map(({ priority, exchange }) => ({ priority, exchange }))).toEqual([{ priority: 10, exchange: 'mail.armada.example' }]);
    expect((await resolver.resolveTxt('armada.example')).sort()).toEqual([['two', 'strings'], ['v=spf1 -all']]);
  });

  it('answers wildcards, empty non-terminals and delegations as an authoritative server does', async () => {
    expect(await digSection(server, 'anything.wild.armada.example', 'A', 'answer')).toEqual(['anything.wild.armada.example. 30 IN A 192.0.2.99']);
    expect(await resolverFor(server).resolve4('x.y.wild.armada.example')).toEqual(['192.0.2.99']);
    expect(await digShort(server, 'x.star.armada.example')).toEqual(['192.0.2.98']);
    // deep.armada.example has no records but a name below it: NODATA, not NXDOMAIN.
    const nonTerminal = await digHeader(server, 'deep.armada.example');
    expect(nonTerminal.status).toBe('NOERROR');
    expect(nonTerminal.output).toContain('ANSWER: 0,');
    // Below an NS record the zone is not authoritative: a referral with the glue.
    const referral = await digHeader(server, 'host.sub.armada.example', 'A', '+norecurse');
    expect(referral.status).toBe('NOERROR');
    expect(referral.flags).not.toContain('aa');
    expect(await digSection(server, 'host.sub.armada.example', 'A', 'authority')).toEqual(['sub.armada.example. 86400 IN NS ns1.sub.armada.example.']);
    expect(await digSection(server, 'host.sub.armada.example', 'A', 'additional')).toEqual(['ns1.sub.armada.example. 86400 IN A 192.0.2.53']);
  });

  it('shows a record switched through the API on the next query, with its new TTL', async () => {
    const resolver = resolverFor(server);
    expect(await resolver.resolve4('cutover.armada.example', { ttl: true })).toEqual([{ address: '192.0.2.20', ttl: 3600 }]);
    // A cutover: lower the TTL, then switch the address.
    await change(upsert('cutover.armada.example', 'A', 60, ['192.0.2.20']));
    expect(await digSection(server, 'cutover.armada.example', 'A', 'answer')).toEqual(['cutover.armada.example. 60 IN A 192.0.2.20']);
    await change(upsert('cutover.armada.example', 'A', 60, ['198.51.100.7']));
    expect(await digShort(server, 'cutover.armada.example')).toEqual(['198.51.100.7']);
    expect(await resolver.resolve4('cutover.armada.example', { ttl: true })).toEqual([{ address: '198.51.100.7', ttl: 60 }]);
    await change({ Action: 'DELETE', ResourceRecordSet: { Name: 'cutover.armada.example', Type: 'A', TTL: 60, ResourceRecords: [{ Value: '198.51.100.7' }] } });
    expect((await digHeader(server, 'cutover.armada.example')).status).toBe('NXDOMAIN');
  });

  it('answers over TCP, and truncates a UDP answer too large so clients retry over TCP', async () => {
    expect((await digShort(server, 'www.armada.example', 'A', '+tcp')).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    const tcp = await digHeader(server, 'nope.armada.example', 'A', '+tcp');
    expect(tcp.status).toBe('NXDOMAIN');
    expect(tcp.output).toContain('(TCP)');
    // Twelve 200-byte strings: over 2 KB, more than the 1232 bytes of EDNS the server sends over UDP.
    const values = Array.from({ length: 12 }, (_, index) => `"${String(index).padStart(2, '0')}${'x'.repeat(198)}"`);
    await change(upsert('big.armada.example', 'TXT', 300, values));
    const udp = await digHeader(server, 'big.armada.example', 'TXT', '+ignore', '+notcp');
    expect(udp.flags).toContain('tc');
    expect(udp.output).toContain('ANSWER: 0,');
    expect(await digShort(server, 'big.armada.example', 'TXT')).toHaveLength(12);
    expect(await digShort(server, 'big.armada.example', 'TXT', '+noedns')).toHaveLength(12);
    const txt = await resolverFor(server).resolveTxt('big.armada.example');
    expect(txt.map((strings) => strings.join('')).sort()).toEqual(values.map((value) => value.slice(1, -1)));
  });
});

describe('DNS server on the DigitalOcean emulator (domains)', () => {
  let emulator: DigitalOceanEmulator;
  let api: ReturnType<typeof createApiClient>;
  let server: DnsServer;
  const create = async (name: string, type: string, data: string, ttl: number): Promise<number> =>
    (await api.domain.createDomainRecord({ domain_name: 'armada.example', name, type, data, ttl } as never)).data.domain_record.id;
  let cutoverId: number;

  beforeAll(async () => {
    emulator = await startDigitalOceanEmulator();
    emulator.createDomain('armada.example');
    api = createApiClient({ token: 'test', endpoint: `${emulator.endpoint}/v2` });
    await create('@', 'A', '192.0.2.1', 1800);
    await create('www', 'A', '192.0.2.10', 300);
    await create('www', 'A', '192.0.2.11', 300);
    await create('app', 'CNAME', 'www.armada.example.', 60);
    await create('apex', 'CNAME', '@', 120);
    await create('@', 'TXT', 'v=spf1 -all', 600);
    await create('*.wild', 'A', '192.0.2.99', 30);
    cutoverId = await create('cutover', 'A', '192.0.2.20', 3600);
    server = await startDnsServer({ sources: [emulator], port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await emulator?.close();
  });

  it('answers A records authoritatively with their TTL, through dig and Node', async () => {
    expect((await digShort(server, 'www.armada.example')).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    expect((await digSection(server, 'www.armada.example', 'A', 'answer')).sort()).toEqual(['www.armada.example. 300 IN A 192.0.2.10', 'www.armada.example. 300 IN A 192.0.2.11']);
    expect((await digHeader(server, 'www.armada.example')).flags).toContain('aa');
    const resolver = resolverFor(server);
    expect((await resolver.resolve4('www.armada.example', { ttl: true })).sort((a, b) => a.address.localeCompare(b.address))).toEqual([
      { address: '192.0.2.10', ttl: 300 },
      { address: '192.0.2.11', ttl: 300 },
    ]);
    // `@` is the apex.
    expect(await resolver.resolve4('armada.example', { ttl: true })).toEqual([{ address: '192.0.2.1', ttl: 1800 }]);
    expect(await resolver.resolve4('any.wild.armada.example')).toEqual(['192.0.2.99']);
  });

  it('follows CNAMEs (one to `@`) and answers the apex: SOA, NS, TXT', async () => {
    expect(await digShort(server, 'app.armada.example')).toEqual(['www.armada.example.', '192.0.2.10', '192.0.2.11']);
    expect(await digShort(server, 'apex.armada.example')).toEqual(['armada.example.', '192.0.2.1']);
    const resolver = resolverFor(server);
    expect((await resolver.resolve4('app.armada.example')).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    expect(await resolver.resolveCname('apex.armada.example')).toEqual(['armada.example']);
    expect((await digShort(server, 'armada.example', 'NS')).sort()).toEqual(['ns1.digitalocean.com.', 'ns2.digitalocean.com.']);
    expect(await digShort(server, 'armada.example', 'SOA')).toEqual(['ns1.digitalocean.com. hostmaster.armada.example. 1 10800 3600 604800 1800']);
    expect(await resolver.resolveTxt('armada.example')).toEqual([['v=spf1 -all']]);
  });

  it('answers NXDOMAIN with the SOA, and refuses other zones', async () => {
    const missing = await digHeader(server, 'nope.armada.example');
    expect(missing.status).toBe('NXDOMAIN');
    expect(missing.flags).toContain('aa');
    expect(await digSection(server, 'nope.armada.example', 'A', 'authority')).toEqual(['armada.example. 1800 IN SOA ns1.digitalocean.com. hostmaster.armada.example. 1 10800 3600 604800 1800']);
    const refused = await digHeader(server, 'www.other.example');
    expect(refused.status).toBe('REFUSED');
    expect(refused.flags).not.toContain('aa');
    const resolver = resolverFor(server);
    expect(await errorCode(resolver.resolve4('nope.armada.example'))).toBe('ENOTFOUND');
    expect(await errorCode(resolver.resolve6('www.armada.example'))).toBe('ENODATA');
    expect(await errorCode(resolver.resolve4('www.other.example'))).toBe('EREFUSED');
  });

  it('shows a record switched through the API on the next query, with its new TTL', async () => {
    const resolver = resolverFor(server);
    expect(await resolver.resolve4('cutover.armada.example', { ttl: true })).toEqual([{ address: '192.0.2.20', ttl: 3600 }]);
    await api.domain.updateDomainRecord({ domain_name: 'armada.example', domain_record_id: cutoverId, ttl: 60 } as never);
    expect(await digSection(server, 'cutover.armada.example', 'A', 'answer')).toEqual(['cutover.armada.example. 60 IN A 192.0.2.20']);
    await api.domain.updateDomainRecord({ domain_name: 'armada.example', domain_record_id: cutoverId, data: '198.51.100.7' } as never);
    expect(await digShort(server, 'cutover.armada.example')).toEqual(['198.51.100.7']);
    expect(await resolver.resolve4('cutover.armada.example', { ttl: true })).toEqual([{ address: '198.51.100.7', ttl: 60 }]);
    await api.domain.deleteDomainRecord({ domain_name: 'armada.example', domain_record_id: cutoverId });
    expect(await errorCode(resolver.resolve4('cutover.armada.example'))).toBe('ENOTFOUND');
  });

  it('answers over TCP', async () => {
    expect((await digShort(server, 'app.armada.example', 'A', '+tcp')).sort()).toEqual(['192.0.2.10', '192.0.2.11', 'www.armada.example.']);
    expect((await digHeader(server, 'nope.armada.example', 'A', '+tcp')).status).toBe('NXDOMAIN');
  });
});

describe('DNS server', () => {
  it('serves the zones of both emulators at once', async () => {
    const aws = await startAwsEmulator({ changeSyncMs: 0 });
    const digitalocean = await startDigitalOceanEmulator();
    const route53 = new Route53Client({ region: 'us-east-1', endpoint: aws.endpoint, credentials, maxAttempts: 1 });
    const server = await startDnsServer({ sources: [aws, digitalocean], port: 0 });
    try {
      const zoneId = aws.createHostedZone('on-aws.example');
      digitalocean.createDomain('on-do.example');
      await route53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          ChangeBatch: { Changes: [{ Action: 'UPSERT', ResourceRecordSet: { Name: 'www.on-aws.example', Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: 'www.on-do.example' }] } }] },
        }),
      );
      const api = createApiClient({ token: 'test', endpoint: `${digitalocean.endpoint}/v2` });
      await api.domain.createDomainRecord({ domain_name: 'on-do.example', name: 'www', type: 'A', data: '198.51.100.9', ttl: 60 } as never);
      // The CNAME leads from one emulator's zone into the other's: followed, as both are served here.
      expect(await digShort(server, 'www.on-aws.example')).toEqual(['www.on-do.example.', '198.51.100.9']);
      expect(await resolverFor(server).resolve4('www.on-aws.example')).toEqual(['198.51.100.9']);
      expect(server.queries()).toBe(2);
    } finally {
      await server.close();
      route53.destroy();
      await aws.close();
      await digitalocean.close();
    }
  });

  it('listens on 127.53.0.1 port 53 by default, when that is free', async (context) => {
    const emulator = await startAwsEmulator({ changeSyncMs: 0 });
    try {
      const zoneId = emulator.createHostedZone('armada.example');
      const route53 = new Route53Client({ region: 'us-east-1', endpoint: emulator.endpoint, credentials, maxAttempts: 1 });
      await route53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          ChangeBatch: { Changes: [{ Action: 'UPSERT', ResourceRecordSet: { Name: 'www.armada.example', Type: 'A', TTL: 300, ResourceRecords: [{ Value: '192.0.2.10' }] } }] },
        }),
      );
      route53.destroy();
      const server = await startDnsServer({ sources: [emulator] }).catch((error: NodeJS.ErrnoException) => {
        // Taken (another run of this test) or not allowed (not root): nothing to check here.
        if (error.code === 'EADDRINUSE' || error.code === 'EACCES') return undefined;
        throw error;
      });
      if (!server) return context.skip('127.53.0.1:53 is taken or needs privileges here');
      try {
        expect([server.address, server.port]).toEqual(['127.53.0.1', 53]);
        const { stdout } = await run('dig', ['@127.53.0.1', '+time=2', '+tries=1', 'www.armada.example', '+short']);
        expect(stdout.trim()).toBe('192.0.2.10');
        const resolver = new Resolver({ timeout: 2000, tries: 1 });
        resolver.setServers(['127.53.0.1']);
        expect(await resolver.resolve4('www.armada.example')).toEqual(['192.0.2.10']);
      } finally {
        await server.close();
      }
    } finally {
      await emulator.close();
    }
  });
});
