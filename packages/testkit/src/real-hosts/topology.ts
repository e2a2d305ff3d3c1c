/**
 * What an emulator asks the real-host lab to make: the networks and hosts its API says exist, in
 * a cloud-neutral shape. The emulator computes it from its own tables after every change (group
 * peers resolved to member addresses, tag targets to droplets) and the lab reconciles the
 * machine to it, so the lab knows nothing of security groups, droplets or route tables.
 */

/** One VPC (AWS), VPC (DigitalOcean) or network (OpenStack): its own router namespace. */
export interface LabNetwork {
  /** The cloud's id for it: `vpc-...`, a DigitalOcean VPC's uuid. Unique within one lab. */
  id: string;
  subnets: LabSubnet[];
}

export interface LabSubnet {
  id: string;
  cidr: string;
  /** Its route table sends 0.0.0.0/0 to an internet gateway: public addresses in it are reachable. */
  internet: boolean;
  /** The router's address in the subnet; default the first host address (AWS's `.1`). */
  gateway?: string;
}

/** An allowed flow: inbound from `peers`, or outbound to `peers`. */
export interface TrafficRule {
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  /** Inclusive port range for tcp and udp; absent: every port. */
  ports?: { from: number; to: number };
  /** CIDRs (`10.0.1.0/24`, `0.0.0.0/0`) and single addresses. */
  peers: string[];
}

/** Stateful, like security groups and cloud firewalls: replies to an allowed flow always pass. */
export interface HostFirewall {
  inbound: TrafficRule[];
  outbound: TrafficRule[];
}

export interface LabHost {
  /** The cloud's id: `i-...`, a droplet's number as text. Unique within one lab. */
  id: string;
  networkId: string;
  subnetId: string;
  privateIp: string;
  /** From `HostLab.allocatePublicIp`; reachable from the machine only if the subnet has `internet`. */
  publicIp?: string;
  hostname: string;
  /** The image's login user (`admin` on Debian's AMIs, `root` on droplets) and its authorized keys. */
  login: { user: string; authorizedKeys: string[] };
  /** false: stopped, its disk kept. */
  running: boolean;
  /** Absent: every flow allowed (a droplet no cloud firewall applies to). */
  firewall?: HostFirewall;
}

export interface LabTopology {
  networks: LabNetwork[];
  hosts: LabHost[];
}
