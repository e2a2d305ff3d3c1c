/**
 * The real-host lab: every instance an emulator launches becomes a Linux host on this machine.
 *
 *   machine (root namespace: "the internet" and its operator)
 *     └─ arm<run> ── operator   armada-<run>-internet    routes each public address to its network
 *                                 └─ net<k> ── internet   armada-<run>-net<k>     one router per VPC:
 *                                                           NAT, route tables, firewalls (nftables)
 *                                                           └─ h<j> ── eth0   armada-<run>-host<j>
 *
 * Each host has its own network namespace (its private address on eth0, the router's address as
 * gateway), its own pid, mount and UTS namespaces, and its own copy-on-write root over the cached
 * Debian image. The machine reaches public addresses only, through the internet namespace; private
 * addresses are reachable only inside their network, so no traffic ever leaves for the machine's
 * real network (the internet namespace has no route there, and nothing opens a connection to the
 * machine's side).
 *
 * Everything the lab makes carries its run's marker (`armada-<run>-` namespaces, the `arm<run>`
 * link, files under `<stateDir>/labs/<run>`). `close()` removes it all; a lab whose process was
 * killed is removed by the next lab's start-up sweep, which recognises only these markers.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BOOT_SCRIPT, START_SCRIPT } from './boot.js';
import { routerRuleset } from './firewall.js';
import type { HostImage } from './image.js';
import { inNamespace, ip, ipBatch, run } from './shell.js';
import type { LabHost, LabNetwork, LabTopology } from './topology.js';

export interface HostLabOptions {
  image: HostImage;
  /** Scratch space: hosts' upper layers, consoles, address leases. Default `$ARMADA_HOST_STATE` or /var/tmp/armada-hosts. */
  stateDir?: string;
}

export interface HostStatus {
  id: string;
  /** sshd is listening: the boot finished. */
  booted: boolean;
  /** The host keys made at first boot (OpenSSH public key text). */
  hostKeys: string[];
  /** What the boot printed, as a serial console would show it. */
  console: string;
  /** The host's network namespace, for `ip netns exec`. */
  namespace: string;
}

/** What a TCP connection attempt met: a listener, a refusal (nothing listening), or silence (a firewall's drop). */
export type ProbeResult = 'open' | 'closed' | 'filtered';

export interface HostLab {
  readonly runId: string;
  /**
   * Reconciles the machine to this topology, after the calls before it (the latest wins). Several
   * emulators share one lab (the story's two clouds): each syncs its own part under its own `owner`,
   * and the lab makes the union. Network and host ids must be unique across owners.
   */
  sync(topology: LabTopology, owner?: string): void;
  /** Waits for every sync so far; throws what made one fail. */
  settled(): Promise<void>;
  /** A public address of `pool` (a /24) no other lab on this machine holds. */
  allocatePublicIp(pool: string): string;
  status(hostId: string): HostStatus | undefined;
  /**
   * A TCP connection attempt to `address:port` from inside a host, or from the internet (the
   * namespace every public address is routed through; it stands for a machine outside the clouds).
   */
  probe(from: { host: string } | 'internet', address: string, port: number, timeoutMs?: number): Promise<ProbeResult>;
  /** Runs a shell command on a host as root, in all its namespaces: what an operator's console would. */
  exec(hostId: string, script: string): Promise<string>;
  /** The names of everything this lab holds now: its namespaces and the machine-side link. */
  footprint(): Promise<{ namespaces: string[]; machineLinks: string[]; processes: number[] }>;
  close(): Promise<void>;
}

export function hostStateDir(options: Pick<HostLabOptions, 'stateDir'> = {}): string {
  return options.stateDir ?? process.env.ARMADA_HOST_STATE ?? '/var/tmp/armada-hosts';
}

const MARKER = /^armada-([0-9a-f]{6})-/;

function processStartTime(pid: number): string | undefined {
  try {
    // Field 22 of /proc/<pid>/stat, after the parenthesised command (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(labDir: string): boolean {
  try {
    const owner = JSON.parse(readFileSync(join(labDir, 'owner'), 'utf8')) as { pid: number; startTime: string };
    return processStartTime(owner.pid) === owner.startTime;
  } catch {
    return false;
  }
}

async function namespaces(): Promise<string[]> {
  const listing = await ip(undefined, 'netns', 'list');
  return listing
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean);
}

async function namespacePids(namespace: string): Promise<number[]> {
  const listing = await ip(undefined, 'netns', 'pids', namespace).catch(() => '');
  return listing.split(/\s+/).filter(Boolean).map(Number);
}

/** Kills every process in a namespace of ours (SIGKILL: a host is switched off, not shut down). */
async function killNamespace(namespace: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = await namespacePids(namespace);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`processes in ${namespace} did not stop: ${(await namespacePids(namespace)).join(', ')}`);
}

async function removeRun(stateDir: string, runId: string): Promise<void> {
  const ours = (await namespaces()).filter((name) => MARKER.exec(name)?.[1] === runId);
  for (const name of ours) await killNamespace(name);
  for (const name of ours) await ip(undefined, 'netns', 'delete', name).catch(() => undefined);
  await ip(undefined, 'link', 'delete', `arm${runId}`).catch(() => undefined);
  for (const leases of ['public-ips', 'slots']) {
    const dir = join(stateDir, leases);
    for (const entry of existsSync(dir) ? readdirSync(dir) : []) {
      const path = join(dir, entry);
      if (readFileSync(path, 'utf8').trim() === runId) rmSync(path, { force: true });
    }
  }
  await rm(join(stateDir, 'labs', runId), { recursive: true, force: true });
}

/**
 * Removes what labs whose process is gone left behind (namespaces, their processes, the machine
 * link and its routes, leases, scratch files), by the lab markers only. Returns their run ids.
 */
export async function sweepAbandonedLabs(options: Pick<HostLabOptions, 'stateDir'> = {}): Promise<string[]> {
  const stateDir = hostStateDir(options);
  const labsDir = join(stateDir, 'labs');
  const runs = new Set<string>();
  for (const runId of existsSync(labsDir) ? await readdir(labsDir) : []) if (!ownerAlive(join(labsDir, runId))) runs.add(runId);
  // A namespace with our marker and no lab directory at all was left half made.
  for (const name of await namespaces()) {
    const runId = MARKER.exec(name)?.[1];
    if (runId && !existsSync(join(labsDir, runId))) runs.add(runId);
  }
  for (const runId of runs) await removeRun(stateDir, runId);
  return [...runs];
}

/** Takes the first free lease file of `candidates` (O_EXCL: two labs never get one value). */
function lease(dir: string, candidates: readonly string[], runId: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  for (const candidate of candidates) {
    try {
      writeFileSync(join(dir, candidate), runId, { flag: 'wx' });
      return candidate;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return undefined;
}

function prefixLength(cidr: string): number {
  return Number(cidr.split('/')[1]);
}

function addressToNumber(address: string): number {
  return address.split('.').reduce((value, part) => value * 256 + Number(part), 0);
}

function numberToAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function gatewayOf(subnet: { cidr: string; gateway?: string }): string {
  return subnet.gateway ?? numberToAddress(addressToNumber(subnet.cidr.split('/')[0] as string) + 1);
}

interface NetworkState {
  index: number;
  namespace: string;
  /** The edge's side of its link is net<index>; the router's side is `internet`. */
  linkAddresses: { edge: string; router: string };
  gateways: Set<string>;
  ruleset: string;
}

interface HostState {
  index: number;
  spec: LabHost;
  namespace: string;
  link: string;
  dir: string;
  process?: ReturnType<typeof spawn>;
  booted: boolean;
  console: string[];
  hostKeys: string[];
}

export async function startHostLab(options: HostLabOptions): Promise<HostLab> {
  const stateDir = hostStateDir(options);
  await sweepAbandonedLabs({ stateDir });
  const runId = randomBytes(3).toString('hex');
  const labDir = join(stateDir, 'labs', runId);
  await mkdir(join(labDir, 'hosts'), { recursive: true });
  await writeFile(join(labDir, 'owner'), JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid) }));

  const internet = `armada-${runId}-internet`;
  const machineLink = `arm${runId}`;
  const slots = Array.from({ length: 250 }, (_, slot) => String(slot + 1));
  const slot = lease(join(stateDir, 'slots'), slots, runId);
  if (slot === undefined) throw new Error(`every machine link address under ${stateDir}/slots is taken: 250 labs at once`);
  const machineAddress = `100.64.${slot}.1`;
  const operatorAddress = `100.64.${slot}.2`;

  const networks = new Map<string, NetworkState>();
  const hosts = new Map<string, HostState>();
  const routed = new Map<string, string>(); // public address -> network id it is routed to
  const publicLeases = new Set<string>();
  let nextNetwork = 0;
  let nextHost = 0;
  let closed = false;

  // The internet: a router the machine hangs off, which never lets a connection reach the machine's side.
  await ip(undefined, 'netns', 'add', internet);
  await ip(undefined, 'link', 'add', machineLink, 'type', 'veth', 'peer', 'name', 'operator', 'netns', internet);
  await ipBatch(undefined, [`address add ${machineAddress}/30 dev ${machineLink}`, `link set ${machineLink} up`]);
  await ipBatch(internet, ['link set lo up', `address add ${operatorAddress}/30 dev operator`, 'link set operator up']);
  await sysctl(internet, { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.disable_ipv6': '1' });
  await inNamespace(internet, 'nft', ['-f', '-'], {
    input: 'flush ruleset\ntable ip armada {\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n    oifname "operator" ct state new drop\n  }\n}\n',
  });

  async function sysctl(namespace: string, settings: Record<string, string>): Promise<void> {
    await inNamespace(namespace, 'sysctl', ['-q', '-w', ...Object.entries(settings).map(([key, value]) => `${key}=${value}`)]);
  }

  async function createNetwork(network: LabNetwork): Promise<NetworkState> {
    const index = nextNetwork++;
    const namespace = `armada-${runId}-net${index}`;
    const base = index * 4;
    const linkAddresses = { edge: `169.254.${Math.floor(base / 256)}.${(base % 256) + 1}`, router: `169.254.${Math.floor(base / 256)}.${(base % 256) + 2}` };
    await ip(undefined, 'netns', 'add', namespace);
    await ip(internet, 'link', 'add', `net${index}`, 'type', 'veth', 'peer', 'name', 'internet', 'netns', namespace);
    await ipBatch(internet, [`address add ${linkAddresses.edge}/30 dev net${index}`, `link set net${index} up`]);
    await ipBatch(namespace, ['link set lo up', `address add ${linkAddresses.router}/30 dev internet`, 'link set internet up', `route add default via ${linkAddresses.edge}`]);
    await sysctl(namespace, { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.disable_ipv6': '1' });
    const state: NetworkState = { index, namespace, linkAddresses, gateways: new Set(), ruleset: '' };
    networks.set(network.id, state);
    return state;
  }

  async function createHost(spec: LabHost): Promise<HostState> {
    const network = networks.get(spec.networkId);
    if (!network) throw new Error(`host ${spec.id}: network ${spec.networkId} is not in the topology`);
    const index = nextHost++;
    const namespace = `armada-${runId}-host${index}`;
    const link = `h${index}`;
    const dir = join(labDir, 'hosts', String(index));
    await mkdir(join(dir, 'upper'), { recursive: true });
    await mkdir(join(dir, 'work'), { recursive: true });
    await mkdir(join(dir, 'root'), { recursive: true });
    await ip(undefined, 'netns', 'add', namespace);
    await ip(network.namespace, 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace);
    await ipBatch(network.namespace, [`link set ${link} up`, `route add ${spec.privateIp}/32 dev ${link}`]);
    // The router answers ARP for every other address in the subnet (proxy ARP): hosts of one subnet
    // reach each other through it, where its firewalls see them.
    await sysctl(network.namespace, { [`net.ipv4.conf.${link}.proxy_arp`]: '1' });
    const state: HostState = { index, spec, namespace, link, dir, booted: false, console: [], hostKeys: [] };
    hosts.set(spec.id, state);
    return state;
  }

  async function addressHost(state: HostState, topology: LabTopology): Promise<void> {
    const subnet = topology.networks.find((network) => network.id === state.spec.networkId)?.subnets.find((candidate) => candidate.id === state.spec.subnetId);
    if (!subnet) throw new Error(`host ${state.spec.id}: subnet ${state.spec.subnetId} is not in network ${state.spec.networkId}`);
    await ipBatch(state.namespace, ['link set lo up', `address add ${state.spec.privateIp}/${prefixLength(subnet.cidr)} dev eth0`, 'link set eth0 up', `route add default via ${gatewayOf(subnet)}`]);
    await sysctl(state.namespace, { 'net.ipv6.conf.all.disable_ipv6': '1' });
  }

  async function boot(state: HostState): Promise<void> {
    const upper = join(state.dir, 'upper');
    await mkdir(join(upper, 'usr/local/sbin'), { recursive: true });
    await writeFile(join(upper, 'usr/local/sbin/armada-boot'), BOOT_SCRIPT, { mode: 0o755 });
    state.booted = false;
    // A clean environment: nothing of the test process (least of all its secrets) enters the host.
    const env = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      HOME: '/root',
      ARMADA_HOSTNAME: state.spec.hostname,
      ARMADA_PRIVATE_IP: state.spec.privateIp,
      ARMADA_LOGIN: state.spec.login.user,
      ARMADA_AUTHORIZED_KEYS: state.spec.login.authorizedKeys.join('\n'),
    };
    const child = spawn(
      'ip',
      ['netns', 'exec', state.namespace, 'unshare', '--pid', '--fork', '--kill-child', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', START_SCRIPT, 'armada-start', options.image.root, upper, join(state.dir, 'work'), join(state.dir, 'root')],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    state.process = child;
    const booted = new Promise<void>((resolve, reject) => {
      const consoleLine = (line: string) => {
        state.console.push(line);
        if (line === 'armada-boot: ready') {
          state.booted = true;
          resolve();
        }
      };
      createInterface({ input: child.stdout }).on('line', consoleLine);
      createInterface({ input: child.stderr }).on('line', consoleLine);
      child.on('exit', (code, signal) => {
        state.booted = false;
        if (state.process === child) state.process = undefined;
        reject(new Error(`host ${state.spec.id} stopped during boot (exit ${code ?? signal}); its console:\n${state.console.slice(-15).join('\n')}`));
      });
    });
    await booted;
    const sshDir = join(upper, 'etc/ssh');
    state.hostKeys = (await readdir(sshDir)).filter((name) => /^ssh_host_.*_key\.pub$/.test(name)).sort().map((name) => readFileSync(join(sshDir, name), 'utf8').trim());
  }

  async function stop(state: HostState): Promise<void> {
    state.process = undefined;
    state.booted = false;
    await killNamespace(state.namespace);
  }

  async function destroyHost(state: HostState): Promise<void> {
    await stop(state);
    await ip(undefined, 'netns', 'delete', state.namespace);
    await rm(state.dir, { recursive: true, force: true });
    hosts.delete(state.spec.id);
    // A terminated instance gives its public address back, as on the clouds.
    const address = state.spec.publicIp;
    if (address && publicLeases.has(address)) {
      publicLeases.delete(address);
      rmSync(join(stateDir, 'public-ips', address), { force: true });
    }
  }

  async function applyRoutes(topology: LabTopology): Promise<void> {
    const wanted = new Map<string, string>();
    for (const host of topology.hosts) {
      const subnet = topology.networks.find((network) => network.id === host.networkId)?.subnets.find((candidate) => candidate.id === host.subnetId);
      if (host.publicIp && subnet?.internet) wanted.set(host.publicIp, host.networkId);
    }
    for (const [address, networkId] of routed) {
      if (wanted.get(address) === networkId) continue;
      await ip(internet, 'route', 'delete', `${address}/32`).catch(() => undefined);
      await ip(undefined, 'route', 'delete', `${address}/32`, 'dev', machineLink).catch(() => undefined);
      routed.delete(address);
    }
    for (const [address, networkId] of wanted) {
      if (routed.get(address) === networkId) continue;
      const network = networks.get(networkId);
      if (!network) continue;
      await ip(internet, 'route', 'replace', `${address}/32`, 'via', network.linkAddresses.router);
      await ip(undefined, 'route', 'replace', `${address}/32`, 'via', operatorAddress, 'dev', machineLink);
      routed.set(address, networkId);
    }
  }

  async function apply(topology: LabTopology): Promise<void> {
    for (const network of topology.networks) if (!networks.has(network.id)) await createNetwork(network);
    const wantedHosts = new Map(topology.hosts.map((host) => [host.id, host]));
    for (const state of [...hosts.values()]) if (!wantedHosts.has(state.spec.id)) await destroyHost(state);
    for (const network of topology.networks) {
      const state = networks.get(network.id) as NetworkState;
      const gateways = new Set(network.subnets.map(gatewayOf));
      for (const gateway of gateways) if (!state.gateways.has(gateway)) await ip(state.namespace, 'address', 'add', `${gateway}/32`, 'dev', 'lo');
      for (const gateway of state.gateways) if (!gateways.has(gateway)) await ip(state.namespace, 'address', 'delete', `${gateway}/32`, 'dev', 'lo');
      state.gateways = gateways;
    }
    const booting: Promise<void>[] = [];
    for (const spec of topology.hosts) {
      let state = hosts.get(spec.id);
      if (!state) {
        state = await createHost(spec);
        await addressHost(state, topology);
      }
      state.spec = spec;
      if (spec.running && !state.process) booting.push(boot(state));
      if (!spec.running && state.process) await stop(state);
    }
    await applyRoutes(topology);
    for (const network of topology.networks) {
      const state = networks.get(network.id) as NetworkState;
      const members = topology.hosts.filter((host) => host.networkId === network.id);
      const ruleset = routerRuleset(network.subnets, members, { internetLink: 'internet', hostLink: (host) => hosts.get(host.id)?.link ?? 'none' });
      if (ruleset !== state.ruleset) {
        await inNamespace(state.namespace, 'nft', ['-f', '-'], { input: ruleset });
        state.ruleset = ruleset;
      }
    }
    const wantedNetworks = new Set(topology.networks.map((network) => network.id));
    for (const [id, state] of [...networks]) {
      if (wantedNetworks.has(id)) continue;
      await ip(undefined, 'netns', 'delete', state.namespace);
      networks.delete(id);
    }
    await Promise.all(booting);
  }

  const parts = new Map<string, LabTopology>();
  let pending: LabTopology | undefined;
  let loop: Promise<void> | undefined;
  let failure: Error | undefined;
  async function drain(): Promise<void> {
    while (pending && !closed) {
      const topology = pending;
      pending = undefined;
      try {
        await apply(topology);
      } catch (error) {
        failure ??= error as Error;
      }
    }
    loop = undefined;
  }

  const lab: HostLab = {
    runId,
    sync(topology, owner = 'default') {
      if (closed) return;
      parts.set(owner, topology);
      const all = [...parts.values()];
      pending = { networks: all.flatMap((part) => part.networks), hosts: all.flatMap((part) => part.hosts) };
      loop ??= drain();
    },
    async settled() {
      while (loop) await loop;
      if (failure) {
        const error = failure;
        failure = undefined;
        throw error;
      }
    },
    allocatePublicIp(pool) {
      const [network] = pool.split('/');
      const base = addressToNumber(network as string);
      const candidates = Array.from({ length: 240 }, (_, offset) => numberToAddress(base + 10 + offset));
      const address = lease(join(stateDir, 'public-ips'), candidates, runId);
      if (address === undefined) throw new Error(`no public address of ${pool} is free on this machine`);
      publicLeases.add(address);
      return address;
    },
    status(hostId) {
      const state = hosts.get(hostId);
      if (!state) return undefined;
      return { id: hostId, booted: state.booted, hostKeys: state.hostKeys, console: state.console.join('\n'), namespace: state.namespace };
    },
    async probe(from, address, port, timeoutMs = 2_000) {
      const namespace = from === 'internet' ? internet : hosts.get(from.host)?.namespace;
      if (!namespace) throw new Error(`probe: no host ${typeof from === 'string' ? from : from.host} in this lab`);
      const seconds = (timeoutMs / 1000).toFixed(1);
      try {
        await inNamespace(namespace, 'timeout', [seconds, 'bash', '-c', 'exec 3<>"/dev/tcp/$0/$1"', address, String(port)]);
        return 'open';
      } catch (error) {
        return (error as { exitCode?: number }).exitCode === 124 ? 'filtered' : 'closed';
      }
    },
    async exec(hostId, script) {
      const pid = (await namespacePids(hosts.get(hostId)?.namespace ?? '')).find((candidate) => {
        try {
          return readFileSync(`/proc/${candidate}/comm`, 'utf8').trim() === 'tini';
        } catch {
          return false;
        }
      });
      if (pid === undefined) throw new Error(`exec: host ${hostId} is not running`);
      return run('nsenter', ['--target', String(pid), '--mount', '--uts', '--net', '--pid', '--root', '--wd', 'sh', '-c', script]);
    },
    async footprint() {
      const ours = (await namespaces()).filter((name) => MARKER.exec(name)?.[1] === runId);
      const processes = (await Promise.all(ours.map(namespacePids))).flat();
      const machineLinks = (await ip(undefined, '-o', 'link', 'show')).split('\n').flatMap((line) => (line.includes(` ${machineLink}@`) || line.includes(` ${machineLink}:`) ? [machineLink] : []));
      return { namespaces: ours, machineLinks, processes };
    },
    async close() {
      if (closed) return;
      closed = true;
      while (loop) await loop;
      // Namespaces, processes, the machine link, this run's leases and scratch files.
      await removeRun(stateDir, runId);
    },
  };
  return lab;
}
