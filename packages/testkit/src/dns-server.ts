/**
 * A real DNS server on a loopback address (UDP and TCP), authoritative for the zones the emulators
 * hold: Route 53 hosted zones on the AWS emulator, domains on the DigitalOcean emulator, or any
 * other `DnsZoneSource`. `dig @127.53.0.1 www.armada.example` and Node's `dns.promises.Resolver`
 * resolve them as they would at the cloud's name servers, so a DNS switch made through the API is
 * visible on the next query: the zones are read from the sources at every query, nothing is cached,
 * and answers carry the records' own TTLs.
 *
 * It answers as an authoritative server does (RFC 1034 4.3.2, RFC 2308, RFC 6604): AA on the
 * answers from its zones; CNAMEs followed inside the served zones, the target's records added;
 * NXDOMAIN with the zone's SOA in the authority section for a name that does not exist, NOERROR
 * with the SOA and no answer (NODATA) for a name without the type asked for (empty non-terminals
 * included); wildcards (`*.zone`) for names below the closest existing name; a referral (no AA,
 * the NS records of the cut and their addresses) for names below an NS record under the apex; the
 * addresses of NS and MX targets in the additional section. Names outside every served zone are
 * REFUSED: it is not a recursive resolver. A UDP answer too large for the client (512 bytes, or its
 * EDNS size up to 1232) is truncated (TC), and the client retries over TCP.
 *
 * Wire format: `dns-packet` (the encoder/decoder behind multicast-dns and many resolvers; tens of
 * millions of downloads a week, types on DefinitelyTyped). It only encodes and decodes, which leaves
 * the transport and the answering logic here in plain sight, where `dns2`'s server would hide the
 * sockets and decide parts of the reply (flags, truncation) itself.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

/** The record types the server answers with; a source leaves out the others. */
export const DNS_RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'TXT', 'NS', 'MX', 'SOA'] as const;
export type DnsRecordType = (typeof DNS_RECORD_TYPES)[number];
export const isDnsRecordType = (type: string): type is DnsRecordType => (DNS_RECORD_TYPES as readonly string[]).includes(type);

/**
 * One record set, values in zone-file presentation form, as Route 53 keeps them: `A` and `AAAA` an
 * address; `CNAME` and `NS` a host name (absolute, the trailing dot optional); `MX` `"10 mail.example."`;
 * `TXT` one or more quoted strings (`"v=spf1 -all"`; a value without quotes is one string);
 * `SOA` `"mname rname serial refresh retry expire minimum"`.
 */
export interface DnsRecordSet {
  /** Fully qualified, the trailing dot optional, any case. */
  name: string;
  type: DnsRecordType;
  ttl: number;
  values: string[];
}

export interface DnsZone {
  /** The apex, e.g. `armada.example` (the trailing dot optional). */
  name: string;
  /** Records outside the zone are ignored. Without an SOA at the apex, the server makes one. */
  records: DnsRecordSet[];
}

/** Where the zones come from; called at every query. Both emulators are sources. */
export interface DnsZoneSource {
  zones(): DnsZone[];
}

export interface DnsServerOptions {
  /** Earlier sources win when two serve the same zone. */
  sources: DnsZoneSource[];
  /** Default 127.53.0.1: Linux answers any 127.x address on lo, configured or not. */
  address?: string;
  /** Default 53 (needs root or CAP_NET_BIND_SERVICE); 0 picks a free port, the same for UDP and TCP. */
  port?: number;
}

export interface DnsServer {
  address: string;
  port: number;
  /** Queries answered so far (UDP and TCP). */
  queries(): number;
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** The DNS flag day 2020 default: no fragmentation on any common path. */
const MAX_UDP_PAYLOAD = 1232;
const MAX_CNAME_CHAIN = 16;
const TCP_IDLE_MS = 10_000;

/** Lower case, no trailing dot, the presentation escapes `\DDD` (decimal, RFC 1035 5.1) and `\X` undone. */
function canonical(name: string): string {
  const unescaped = name.replace(/\\(\d{3}|.)/g, (_, escaped: string) => (escaped.length === 3 ? String.fromCharCode(Number(escaped)) : escaped));
  return unescaped.toLowerCase().replace(/\.$/, '');
}
const isAtOrBelow = (name: string, apex: string) => apex === '' || name === apex || name.endsWith(`.${apex}`);
const parentOf = (name: string) => (name.includes('.') ? name.slice(name.indexOf('.') + 1) : '');

/** TXT presentation -> character-strings: quoted strings with `\"`, `\\` and `\DDD`; each cut at 255 bytes. */
function txtStrings(value: string): Buffer[] {
  const strings: Buffer[] = [];
  const text = value.trim();
  if (!text.startsWith('"')) strings.push(Buffer.from(text));
  else {
    let index = 0;
    while (index < text.length) {
      while (text[index] === ' ' || text[index] === '\t') index++;
      if (index >= text.length) break;
      const quoted = text[index] === '"';
      if (quoted) index++;
      const bytes: number[] = [];
      while (index < text.length) {
        const char = text[index] ?? '';
        if (quoted ? char === '"' : char === ' ' || char === '\t') break;
        if (char === '\\' && /^\d{3}$/.test(text.slice(index + 1, index + 4))) {
          bytes.push(Number(text.slice(index + 1, index + 4)) & 0xff);
          index += 4;
        } else if (char === '\\' && index + 1 < text.length) {
          bytes.push(...Buffer.from(text[index + 1] ?? ''));
          index += 2;
        } else {
          bytes.push(...Buffer.from(char));
          index++;
        }
      }
      if (quoted) index++;
      strings.push(Buffer.from(bytes));
    }
  }
  return strings.flatMap((string) => {
    if (string.length <= 255) return [string];
    const chunks: Buffer[] = [];
    for (let start = 0; start < string.length; start += 255) chunks.push(string.subarray(start, start + 255));
    return chunks;
  });
}

interface Soa {
  ttl: number;
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

function parseSoa(value: string, ttl: number): Soa | undefined {
  const [mname, rname, ...numbers] = value.trim().split(/\s+/);
  const [serial, refresh, retry, expire, minimum] = numbers.map(Number);
  if (!mname || !rname || [serial, refresh, retry, expire, minimum].some((number) => number === undefined || !Number.isFinite(number))) return undefined;
  return { ttl, mname: canonical(mname), rname: canonical(rname), serial: serial ?? 1, refresh: refresh ?? 7200, retry: retry ?? 900, expire: expire ?? 1209600, minimum: minimum ?? 86400 };
}

/** One value as the record data dns-packet encodes; undefined for a value that is not valid for its type. */
function recordData(type: DnsRecordType, value: string): Answer | undefined {
  const answer = (data: unknown) => ({ type, data }) as unknown as Answer;
  switch (type) {
    case 'A':
      return isIPv4(value.trim()) ? answer(value.trim()) : undefined;
    case 'AAAA':
      return isIPv6(value.trim()) ? answer(value.trim()) : undefined;
    case 'CNAME':
    case 'NS':
      return value.trim() ? answer(canonical(value.trim())) : undefined;
    case 'MX': {
      const [preference, exchange] = value.trim().split(/\s+/);
      return exchange && /^\d+$/.test(preference ?? '') ? answer({ preference: Number(preference), exchange: canonical(exchange) }) : undefined;
    }
    case 'TXT':
      return answer(txtStrings(value));
    case 'SOA': {
      const soa = parseSoa(value, 0);
      return soa ? answer({ mname: soa.mname, rname: soa.rname, serial: soa.serial, refresh: soa.refresh, retry: soa.retry, expire: soa.expire, minimum: soa.minimum }) : undefined;
    }
  }
}

interface ServedZone {
  apex: string;
  /** owner (canonical) -> type -> record set (first one wins). */
  nodes: Map<string, Map<DnsRecordType, DnsRecordSet>>;
  soa: Soa;
}

/** The sources' zones as they are now, indexed; the most specific zone of a name answers for it. */
class Snapshot {
  readonly zones: ServedZone[] = [];

  constructor(sources: DnsZoneSource[]) {
    const byApex = new Map<string, ServedZone>();
    for (const source of sources) {
      for (const zone of source.zones()) {
        const apex = canonical(zone.name);
        if (byApex.has(apex)) continue;
        const nodes = new Map<string, Map<DnsRecordType, DnsRecordSet>>();
        for (const record of zone.records) {
          const owner = canonical(record.name);
          if (!isAtOrBelow(owner, apex) || !isDnsRecordType(record.type)) continue;
          const node = nodes.get(owner) ?? new Map<DnsRecordType, DnsRecordSet>();
          if (!node.has(record.type)) node.set(record.type, record);
          nodes.set(owner, node);
        }
        const soaSet = nodes.get(apex)?.get('SOA');
        const firstNs = nodes.get(apex)?.get('NS')?.values[0];
        const soa = (soaSet?.values[0] && parseSoa(soaSet.values[0], soaSet.ttl)) || {
          ttl: 900,
          mname: canonical(firstNs ?? `ns1.${apex}`),
          rname: `hostmaster.${apex}`,
          serial: 1,
          refresh: 7200,
          retry: 900,
          expire: 1209600,
          minimum: 86400,
        };
        const served: ServedZone = { apex, nodes, soa };
        byApex.set(apex, served);
        this.zones.push(served);
      }
    }
    this.zones.sort((a, b) => b.apex.length - a.apex.length);
  }

  zoneOf(name: string): ServedZone | undefined {
    return this.zones.find((zone) => isAtOrBelow(name, zone.apex));
  }
}

type Lookup =
  | { kind: 'answer'; sets: DnsRecordSet[] }
  | { kind: 'cname'; set: DnsRecordSet }
  | { kind: 'nodata' }
  | { kind: 'nxdomain' }
  | { kind: 'referral'; cut: string; set: DnsRecordSet };

/** RFC 1034 4.3.2 step 3 in one zone, for one name (canonical). */
function lookup(zone: ServedZone, name: string, qtype: string): Lookup {
  // A zone cut between the apex and the name: below it, the zone is not authoritative.
  const labels = name === zone.apex ? [] : name.slice(0, name.length - zone.apex.length - 1).split('.');
  for (let depth = labels.length - 1; depth >= 0; depth--) {
    const cut = `${labels.slice(depth).join('.')}.${zone.apex}`;
    const ns = zone.nodes.get(cut)?.get('NS');
    if (ns) return { kind: 'referral', cut, set: ns };
  }
  let node = zone.nodes.get(name);
  if (!node) {
    const owners = [...zone.nodes.keys()];
    // An empty non-terminal exists: NODATA, not NXDOMAIN.
    if (owners.some((owner) => owner.endsWith(`.${name}`))) return { kind: 'nodata' };
    // RFC 4592: the wildcard at the closest encloser.
    let encloser = parentOf(name);
    while (isAtOrBelow(encloser, zone.apex) && !zone.nodes.has(encloser) && !owners.some((owner) => owner.endsWith(`.${encloser}`))) encloser = parentOf(encloser);
    node = zone.nodes.get(`*.${encloser}`);
    if (!node) return { kind: 'nxdomain' };
  }
  if (qtype === 'ANY') return { kind: 'answer', sets: [...node.values()] };
  const cname = node.get('CNAME');
  if (cname && qtype !== 'CNAME') return { kind: 'cname', set: cname };
  const set = isDnsRecordType(qtype) ? node.get(qtype) : undefined;
  return set ? { kind: 'answer', sets: [set] } : { kind: 'nodata' };
}

const toAnswers = (set: DnsRecordSet, owner: string): Answer[] =>
  set.values.flatMap((value) => {
    const data = recordData(set.type, value);
    return data ? [{ ...data, name: owner, ttl: set.ttl, class: 'IN' } as Answer] : [];
  });

const soaAnswer = (zone: ServedZone): Answer => ({
  type: 'SOA',
  name: zone.apex,
  class: 'IN',
  // RFC 2308: a negative answer is cached for the lesser of the SOA's TTL and its minimum.
  ttl: Math.min(zone.soa.ttl, zone.soa.minimum),
  data: { mname: zone.soa.mname, rname: zone.soa.rname, serial: zone.soa.serial, refresh: zone.soa.refresh, retry: zone.soa.retry, expire: zone.soa.expire, minimum: zone.soa.minimum },
});

interface Resolution {
  rcode: number;
  authoritative: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** The answer to one question from the zones as they are now. */
function resolve(snapshot: Snapshot, question: Question): Resolution {
  const result: Resolution = { rcode: RCODE.NOERROR, authoritative: true, answers: [], authorities: [], additionals: [] };
  const qtype = question.type.toUpperCase();
  let name = canonical(question.name);
  let zone = snapshot.zoneOf(name);
  if (!zone || (question.class !== undefined && question.class !== 'IN' && question.class !== 'ANY') || qtype === 'AXFR' || qtype === 'IXFR') {
    return { ...result, rcode: RCODE.REFUSED, authoritative: false };
  }
  // The question's own spelling for its name (case included), the CNAMEs' for the names they lead to.
  let owner = question.name.replace(/\.$/, '');
  const seen = new Set<string>();
  for (let step = 0; zone && step < MAX_CNAME_CHAIN; step++) {
    seen.add(name);
    const found = lookup(zone, name, qtype);
    if (found.kind === 'answer') {
      for (const set of found.sets) result.answers.push(...toAnswers(set, owner));
    } else if (found.kind === 'nodata') {
      result.authorities.push(soaAnswer(zone));
    } else if (found.kind === 'nxdomain') {
      // RFC 6604: after a CNAME, the rcode is the last name's.
      result.rcode = RCODE.NXDOMAIN;
      result.authorities.push(soaAnswer(zone));
    } else if (found.kind === 'referral') {
      result.authoritative = result.answers.length > 0;
      result.authorities.push(...toAnswers(found.set, found.cut));
    } else {
      const records = toAnswers(found.set, owner);
      result.answers.push(...records);
      const target = records[0]?.type === 'CNAME' ? records[0].data : undefined;
      if (!target || seen.has(target)) break;
      // A target outside the served zones is the client's to chase.
      name = target;
      owner = target;
      zone = snapshot.zoneOf(target);
      continue;
    }
    break;
  }
  result.additionals.push(...glue(snapshot, [...result.answers, ...result.authorities]));
  return result;
}

/** Addresses of the NS and MX targets inside the served zones (glue below a cut included). */
function glue(snapshot: Snapshot, records: Answer[]): Answer[] {
  const targets = new Set<string>();
  for (const record of records) {
    if (record.type === 'NS') targets.add(record.data);
    if (record.type === 'MX') targets.add(record.data.exchange);
  }
  const present = new Set(records.map((record) => `${canonical(record.name)}|${record.type}`));
  return [...targets].flatMap((target) => {
    const node = snapshot.zoneOf(target)?.nodes.get(target);
    return (['A', 'AAAA'] as const).flatMap((type) => {
      const set = node?.get(type);
      return set && !present.has(`${target}|${type}`) ? toAnswers(set, target) : [];
    });
  });
}

/**
 * The reply to one DNS message, read from the sources now; undefined for none (a response, or
 * fewer than 12 bytes). Over UDP, a reply larger than the client takes is truncated (TC).
 */
export function answerDnsMessage(sources: DnsZoneSource[], message: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
  if (message.length < 12 || (message.readUInt16BE(2) & 0x8000) !== 0) return undefined;
  const id = message.readUInt16BE(0);
  const requestFlags = message.readUInt16BE(2);
  const opcode = (requestFlags >> 11) & 0xf;
  const echoed = requestFlags & (0x7800 | dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED);
  let query: DecodedPacket;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return dnsPacket.encode({ type: 'response', id, flags: echoed | RCODE.FORMERR });
  }
  const questions = query.questions ?? [];
  const opt = (query.additionals ?? []).find((record) => record.type === 'OPT');
  const ednsOpt: Answer[] = opt ? [{ type: 'OPT', name: '.', udpPayloadSize: MAX_UDP_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
  const reply = (flags: number, body: Omit<Packet, 'type' | 'id' | 'flags'> = {}) =>
    dnsPacket.encode({ type: 'response', id, flags: echoed | flags, questions, ...body, additionals: [...(body.additionals ?? []), ...ednsOpt] });
  if (opcode !== 0) return reply(RCODE.NOTIMP);
  const [question] = questions;
  if (!question || questions.length !== 1) return reply(RCODE.FORMERR);
  if (opt && opt.type === 'OPT' && opt.ednsVersion > 0) {
    // BADVERS (16): the upper eight bits in the OPT record, the lower four in the header.
    return dnsPacket.encode({ type: 'response', id, flags: echoed, questions, additionals: [{ ...(ednsOpt[0] as Answer & { type: 'OPT' }), extendedRcode: 1 }] });
  }
  let resolution: Resolution;
  let encoded: Buffer;
  try {
    resolution = resolve(new Snapshot(sources), question);
    const flags = resolution.rcode | (resolution.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0);
    encoded = reply(flags, { answers: resolution.answers, authorities: resolution.authorities, additionals: resolution.additionals });
    if (transport === 'udp') {
      const limit = opt && opt.type === 'OPT' ? Math.max(512, Math.min(opt.udpPayloadSize, MAX_UDP_PAYLOAD)) : 512;
      if (encoded.length > limit) encoded = reply(flags | dnsPacket.TRUNCATED_RESPONSE);
    }
  } catch {
    return reply(RCODE.SERVFAIL);
  }
  return encoded;
}

function listenUdp(socket: UdpSocket, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    socket.once('error', onError);
    socket.bind(port, address, () => {
      socket.off('error', onError);
      resolve(socket.address().port);
    });
  });
}

function listenTcp(server: Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen({ port, host: address, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const address = options.address ?? '127.53.0.1';
  const wanted = options.port ?? 53;
  const sources = options.sources;
  let queries = 0;
  const sockets = new Set<Socket>();

  const makeUdp = () => {
    const socket = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
    socket.on('message', (message: Buffer, remote: RemoteInfo) => {
      const answer = answerDnsMessage(sources, message, 'udp');
      if (!answer) return;
      queries++;
      socket.send(answer, remote.port, remote.address);
    });
    socket.on('error', () => {
      // A send to a client that went away; the next query is answered as usual.
    });
    return socket;
  };
  const makeTcp = () =>
    createServer((socket) => {
      sockets.add(socket);
      socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        // RFC 1035 4.2.2 / RFC 7766: each message after its two-byte length; several may follow.
        while (pending.length >= 2) {
          const length = pending.readUInt16BE(0);
          if (pending.length < 2 + length) break;
          const message = pending.subarray(2, 2 + length);
          pending = pending.subarray(2 + length);
          const answer = answerDnsMessage(sources, message, 'tcp');
          if (!answer) continue;
          queries++;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(answer.length);
          socket.write(Buffer.concat([prefix, answer]));
        }
      });
    });

  // UDP first; TCP on the same port. With port 0 the one UDP picked may be taken for TCP: try again.
  for (let attempt = 0; ; attempt++) {
    const udp = makeUdp();
    const tcp = makeTcp();
    let port: number;
    try {
      port = await listenUdp(udp, address, wanted);
    } catch (error) {
      udp.close();
      throw error;
    }
    try {
      await listenTcp(tcp, address, port);
    } catch (error) {
      udp.close();
      if (wanted !== 0 || attempt >= 10 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      continue;
    }
    return {
      address,
      port,
      queries: () => queries,
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
      },
    };
  }
}
