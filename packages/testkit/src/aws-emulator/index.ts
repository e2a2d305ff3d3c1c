/**
 * A wire-level emulator of the EC2 Query API and the Route 53 REST-XML API on 127.0.0.1, for the
 * real AWS SDK clients: `new EC2Client({ region, endpoint: emulator.endpoint, credentials })`.
 * One server answers both: `POST /` is EC2, `/2013-04-01/...` is Route 53.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startLoopbackServer } from '../loopback-server.js';
import { FaultInjector, LostResponseError, seededRandom } from '../faults.js';
import { AwsFault, Ec2Region, type Image } from './ec2.js';
import { Route53State } from './route53.js';
import { QueryReader, decodeQuery, escapeXml, toXml } from './wire.js';
import { zoneCatalogue } from './zones.js';
import type { HostLab } from '../real-hosts/lab.js';
import { isDnsRecordType, type DnsZone, type DnsZoneSource } from '../dns-server.js';

export interface AwsEmulatorOptions {
  regions?: string[];
  /**
   * Per region, instance type -> the zones that offer it (`[]`: none), replacing the built-in
   * table's entry for that type (see zones.ts: EC2's offerings per zone, from moto's data).
   */
  instanceTypeOfferings?: Record<string, Record<string, string[]>>;
  /** Accepted access key ids; default any. Another key gets 401 AuthFailure. */
  accessKeyIds?: string[];
  /** pending -> running, and shutting-down -> terminated (default 200 ms each). */
  bootMs?: number;
  terminateMs?: number;
  /** Route 53 change PENDING -> INSYNC (default 100 ms). */
  changeSyncMs?: number;
  /** Seeds the faults, and the zone CreateSubnet picks when asked for none. */
  seed?: number;
  /**
   * The SSH host public keys (OpenSSH text) every instance prints on its console at first boot
   * (GetConsoleOutput): a test's sshd that stands for the instances. Default: a key of each instance's own.
   */
  hostKeys?: string[];
  /**
   * Run every instance as a real host of this lab (`@armada/testkit/real-hosts`): its own network
   * namespace at the addresses DescribeInstances reports, a Debian 12 root, sshd with the key
   * pair's key for `admin`, security groups enforced by nftables. The caller owns and closes it.
   */
  hosts?: HostLab;
}

export interface AwsEmulator extends DnsZoneSource {
  endpoint: string;
  /** Throttled calls answer 503 RequestLimitExceeded (EC2) or 400 Throttling (Route 53). */
  faults: FaultInjector;
  createHostedZone(name: string): string;
  /** The hosted zones and their records as committed, read-only (a `DnsZoneSource` for `startDnsServer`). */
  zones(): DnsZone[];
  inventory(region?: string): ReturnType<Ec2Region['inventory']>;
  instancesTagged(tags: Record<string, string>, region?: string): ReturnType<Ec2Region['instancesTagged']>;
  /** Requests received, in all or for one action (`RunInstances`, `Route53:ChangeResourceRecordSets`). */
  calls(action?: string): number;
  close(): Promise<void>;
}

/** Public images as their owners name them, two builds each so "the newest" means something. */
export const EMULATED_IMAGES: readonly Image[] = [
  { imageId: 'ami-0d12e0000000000a1', name: 'debian-12-amd64-20240201-1644', ownerId: '136693071363', creationDate: '2024-02-01T16:44:00.000Z', architecture: 'x86_64' },
  { imageId: 'ami-0d12e0000000000a2', name: 'debian-12-amd64-20240717-1811', ownerId: '136693071363', creationDate: '2024-07-17T18:11:00.000Z', architecture: 'x86_64' },
  { imageId: 'ami-0d12e0000000000b1', name: 'debian-12-arm64-20240717-1811', ownerId: '136693071363', creationDate: '2024-07-17T18:11:00.000Z', architecture: 'arm64' },
  { imageId: 'ami-0d11e0000000000a1', name: 'debian-11-amd64-20240104-1619', ownerId: '136693071363', creationDate: '2024-01-04T16:19:00.000Z', architecture: 'x86_64' },
  { imageId: 'ami-0ub22000000000000a1', name: 'ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240301', ownerId: '099720109477', creationDate: '2024-03-01T00:00:00.000Z', architecture: 'x86_64' },
  { imageId: 'ami-0ub22000000000000a2', name: 'ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240701', ownerId: '099720109477', creationDate: '2024-07-01T00:00:00.000Z', architecture: 'x86_64' },
  { imageId: 'ami-0ub24000000000000a1', name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240701', ownerId: '099720109477', creationDate: '2024-07-01T00:00:00.000Z', architecture: 'x86_64' },
];


/** Access key id and region from the SigV4 credential scope. The signature itself is not checked. */
function credentialScope(request: IncomingMessage): { accessKeyId: string; region: string } | undefined {
  const match = /Credential=([^/]+)\/\d{8}\/([^/]+)\/[^/]+\/aws4_request/.exec(String(request.headers.authorization ?? ''));
  return match ? { accessKeyId: match[1] as string, region: match[2] as string } : undefined;
}

export async function startAwsEmulator(options: AwsEmulatorOptions = {}): Promise<AwsEmulator> {
  const regions = options.regions ?? ['us-east-1', 'us-west-2', 'eu-west-1'];
  const seed = options.seed ?? 42;
  const faults = new FaultInjector({
    seed,
    throttleError: (label) =>
      label.startsWith('Route53:') ? new AwsFault('Throttling', 'Rate exceeded', 400) : new AwsFault('RequestLimitExceeded', 'Request limit exceeded.', 503),
  });
  const timing = { bootMs: options.bootMs ?? 200, terminateMs: options.terminateMs ?? 200, terminatedRetentionMs: 60_000 };
  const ec2 = new Map(
    regions.map((region) => [
      region,
      new Ec2Region(region, faults, timing, EMULATED_IMAGES, zoneCatalogue(region, options.instanceTypeOfferings?.[region]), seededRandom(seed), options.hostKeys ?? [], options.hosts),
    ]),
  );
  const route53 = new Route53State(options.changeSyncMs ?? 100);
  const calls = new Map<string, number>();

  function send(response: ServerResponse, status: number, body: string, requestId: string): void {
    response.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(body) });
    response.end(body);
  }

  async function handle(request: IncomingMessage, body: string, response: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const isRoute53 = url.pathname.startsWith('/2013-04-01/');
    const reader = new QueryReader(isRoute53 ? {} : decodeQuery(body));
    const action = isRoute53 ? `Route53:${url.pathname.split('/')[2] ?? ''}` : (reader.string('Action') ?? '');
    calls.set(action, (calls.get(action) ?? 0) + 1);
    try {
      const scope = credentialScope(request);
      if (!scope || (options.accessKeyIds && !options.accessKeyIds.includes(scope.accessKeyId))) {
        throw new AwsFault('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
      }
      if (isRoute53) {
        const operation = request.method === 'POST' ? 'createDnsRecord' : 'describe';
        const { root, content } = await faults.run(operation, () => route53.handle(request.method ?? 'GET', url.pathname, url.searchParams, body), action);
        send(response, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="https://route53.amazonaws.com/doc/2013-04-01/">${toXml(content)}</${root}>`, requestId);
        return;
      }
      const region = ec2.get(scope.region);
      if (!region) throw new AwsFault('AuthFailure', `The region '${scope.region}' is not served by this endpoint`, 401);
      const content = await faults.run(
        Ec2Region.operationOf(action),
        () => (action === 'DescribeRegions' ? { regionInfo: regions.map((regionName) => ({ regionName, regionEndpoint: `ec2.${regionName}.amazonaws.com`, optInStatus: 'opt-in-not-required' })) } : region.handle(action, reader)),
        action,
      );
      syncHosts(action);
      send(response, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${requestId}</requestId>${toXml(content)}</${action}Response>`, requestId);
    } catch (error) {
      syncHosts(action);
      if (error instanceof LostResponseError) {
        // The call took effect; the client never hears back, as when a response is lost in transit.
        response.socket?.destroy();
        return;
      }
      const fault = error instanceof AwsFault ? error : new AwsFault('InternalError', `An internal error has occurred: ${(error as Error).message}`, 500);
      const code = escapeXml(fault.code);
      const message = escapeXml(fault.message);
      send(
        response,
        fault.status,
        isRoute53
          ? `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`
          : `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
        requestId,
      );
    }
  }

  /** This emulator's part of a lab that other emulators may share. */
  const labOwner = `aws-${randomUUID()}`;
  /** After any call that may have changed something, the lab follows the tables (it coalesces). */
  function syncHosts(action: string): void {
    if (!options.hosts || action.startsWith('Describe') || action.startsWith('Get') || action.startsWith('Route53:')) return;
    const topologies = [...ec2.values()].map((region) => region.labTopology());
    options.hosts.sync({ networks: topologies.flatMap((topology) => topology.networks), hosts: topologies.flatMap((topology) => topology.hosts) }, labOwner);
  }

  const server = await startLoopbackServer(handle);
  const regionOf = (region = regions[0] ?? 'us-east-1') => {
    const state = ec2.get(region);
    if (!state) throw new Error(`The emulator does not serve region ${region}`);
    return state;
  };

  return {
    endpoint: server.endpoint,
    faults,
    createHostedZone: (name) => route53.createHostedZone(name),
    zones: () =>
      route53.dnsZones().map((zone) => ({
        name: zone.name,
        // Route 53 writes other characters as octal escapes (`*` as `\052`), DNS as decimal ones: undone here.
        records: zone.records.flatMap((record) => (isDnsRecordType(record.type) ? [{ ...record, name: record.name.replace(/\\([0-3][0-7]{2})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))), type: record.type }] : [])),
      })),
    inventory: (region) => regionOf(region).inventory(),
    instancesTagged: (tags, region) => regionOf(region).instancesTagged(tags),
    calls: (action) => (action === undefined ? [...calls.values()].reduce((sum, count) => sum + count, 0) : (calls.get(action) ?? 0)),
    close: () => server.close(),
  };
}
