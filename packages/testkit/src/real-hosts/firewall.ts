/**
 * A network's router as one nftables ruleset: the internet gateway's one-to-one NAT of public
 * addresses, no way out for subnets without a route to the internet, and each host's firewall.
 *
 * Firewalls are enforced in the router's namespace on the link to each host, not inside the
 * host: as on a real cloud, root on an instance cannot remove its security group, and traffic
 * between two hosts of one subnet passes both (every host link is routed through the router).
 * A flow must pass the sender's outbound rules and the receiver's inbound rules; both chains
 * `return` on a match so that neither verdict ends the other's check.
 */
import type { HostFirewall, LabHost, LabSubnet, TrafficRule } from './topology.js';

/** The router-side interface of a host's link, and the router's link to the internet. */
export interface RouterLinks {
  hostLink(host: LabHost): string;
  internetLink: string;
}

function ruleLines(rules: readonly TrafficRule[], peerField: 'saddr' | 'daddr'): string[] {
  return rules.flatMap((rule) => {
    if (rule.peers.length === 0) return [];
    const peers = `ip ${peerField} { ${[...new Set(rule.peers)].join(', ')} }`;
    if (rule.protocol === 'all') return [`${peers} return`];
    if (rule.protocol === 'icmp') return [`${peers} ip protocol icmp return`];
    const ports = rule.ports ? (rule.ports.from === rule.ports.to ? ` ${rule.protocol} dport ${rule.ports.from}` : ` ${rule.protocol} dport ${rule.ports.from}-${rule.ports.to}`) : ` meta l4proto ${rule.protocol}`;
    return [`${peers}${ports} return`];
  });
}

function chain(name: string, body: readonly string[]): string[] {
  return [`  chain ${name} {`, ...body.map((line) => `    ${line}`), '  }'];
}

export function routerRuleset(subnets: readonly LabSubnet[], hosts: readonly LabHost[], links: RouterLinks): string {
  const internetSubnets = new Set(subnets.filter((subnet) => subnet.internet).map((subnet) => subnet.id));
  const exposed = hosts.filter((host) => host.publicIp !== undefined && internetSubnets.has(host.subnetId));
  const closedSubnets = subnets.filter((subnet) => !subnet.internet).map((subnet) => subnet.cidr);
  const guarded = hosts.filter((host): host is LabHost & { firewall: HostFirewall } => host.firewall !== undefined);

  const forward = [
    'type filter hook forward priority filter; policy accept;',
    'ct state established,related accept',
    'ct state invalid drop',
    // A subnet whose route table has no internet gateway route has no way out, whatever its firewall says.
    ...(closedSubnets.length > 0 ? [`oifname "${links.internetLink}" ip saddr { ${closedSubnets.join(', ')} } drop`] : []),
    ...guarded.map((host) => `iifname "${links.hostLink(host)}" jump out-${links.hostLink(host)}`),
    ...guarded.map((host) => `oifname "${links.hostLink(host)}" jump in-${links.hostLink(host)}`),
  ];
  const lines = [
    'flush ruleset',
    'table ip armada {',
    ...chain('prerouting', ['type nat hook prerouting priority dstnat; policy accept;', ...exposed.map((host) => `iifname "${links.internetLink}" ip daddr ${host.publicIp} dnat to ${host.privateIp}`)]),
    ...chain('postrouting', ['type nat hook postrouting priority srcnat; policy accept;', ...exposed.map((host) => `oifname "${links.internetLink}" ip saddr ${host.privateIp} snat to ${host.publicIp}`)]),
    ...chain('forward', forward),
    ...guarded.flatMap((host) => [...chain(`out-${links.hostLink(host)}`, [...ruleLines(host.firewall.outbound, 'daddr'), 'drop']), ...chain(`in-${links.hostLink(host)}`, [...ruleLines(host.firewall.inbound, 'saddr'), 'drop'])]),
    '}',
    '',
  ];
  return lines.join('\n');
}
