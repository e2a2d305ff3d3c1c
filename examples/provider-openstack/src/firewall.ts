/**
 * firewall -> a Neutron security group, attached to the ports of its instances. Security groups
 * belong to the project, not to a network (adapt() says so and drops the network). A firewall peer
 * is a remote-group rule; a CIDR peer a remote-IP-prefix rule. Rules are kept in sync by diff:
 * what the spec lacks is deleted first (Neutron ignores descriptions when it looks for duplicates),
 * then what the group lacks is added. Egress is managed only when the spec lists egress rules;
 * otherwise Neutron's default (all outbound, IPv4 and IPv6) stays.
 */
import {
  AlreadyExistsError,
  ownershipTags,
  stableStringify,
  type ApplyContext,
  type FirewallProperties,
  type FirewallRule,
  type ObservedResource,
  type ResourceAddress,
  type ResourceService,
} from '@armada/core';
import { createOnce, environmentTag, ignoreNotFound, neutronTags, ownerOf, whenVisible, type OpenStackContext } from './context.js';

export interface NeutronRule {
  id?: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  description?: string;
}
interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  tags: string[];
  security_group_rules: NeutronRule[];
}

/** A portable rule as a Neutron rule (one peer, one ethertype). */
export function toNeutronRule(rule: FirewallRule, direction: 'ingress' | 'egress', groupIdOf: (name: string) => string): NeutronRule {
  const peer = rule.peer;
  const ports = (rule.protocol === 'tcp' || rule.protocol === 'udp') && rule.ports ? rule.ports : undefined;
  const ipv6 = 'cidr' in peer && peer.cidr.includes(':');
  return {
    direction,
    ethertype: ipv6 ? 'IPv6' : 'IPv4',
    protocol: rule.protocol === 'all' ? null : rule.protocol,
    port_range_min: ports ? ports.from : null,
    port_range_max: ports ? ports.to : null,
    remote_ip_prefix: 'cidr' in peer ? peer.cidr : null,
    remote_group_id: 'firewall' in peer ? groupIdOf(peer.firewall) : null,
    description: rule.description ?? '',
  };
}

/** A Neutron rule as a portable one. No prefix and no group means everyone of its ethertype. */
export function fromNeutronRule(rule: NeutronRule, groupNameOf: (id: string) => string): FirewallRule {
  const protocol = (rule.protocol ?? 'all') as FirewallRule['protocol'];
  const portsKnown = (protocol === 'tcp' || protocol === 'udp') && rule.port_range_min !== null && rule.port_range_max !== null;
  const allPorts = portsKnown && rule.port_range_min !== null && rule.port_range_min <= 1 && rule.port_range_max === 65535;
  return {
    protocol,
    ...(portsKnown && !allPorts ? { ports: { from: rule.port_range_min as number, to: rule.port_range_max as number } } : {}),
    peer: rule.remote_group_id ? { firewall: groupNameOf(rule.remote_group_id) } : { cidr: rule.remote_ip_prefix ?? (rule.ethertype === 'IPv6' ? '::/0' : '0.0.0.0/0') },
    ...(rule.description ? { description: rule.description } : {}),
  };
}

/** Compares rules as Neutron holds them: 0.0.0.0/0 and "no prefix" are the same peer. */
function ruleKey(rule: NeutronRule): string {
  const everyone = rule.ethertype === 'IPv6' ? '::/0' : '0.0.0.0/0';
  return stableStringify({
    direction: rule.direction,
    ethertype: rule.ethertype,
    protocol: rule.protocol,
    min: rule.port_range_min,
    max: rule.port_range_max,
    prefix: rule.remote_group_id ? null : (rule.remote_ip_prefix ?? everyone),
    group: rule.remote_group_id,
    description: rule.description ?? '',
  });
}

export function firewallService(context: OpenStackContext): ResourceService<'firewall'> {
  const { client } = context;
  const getGroup = async (id: string) => (await client.request<{ security_group: SecurityGroup }>('network', 'GET', `/v2.0/security-groups/${id}`)).security_group;

  async function syncRules(groupId: string, properties: FirewallProperties, apply: ApplyContext, selfName: string): Promise<void> {
    const group = await whenVisible(context, `security group ${groupId} to be visible`, () => getGroup(groupId), apply.signal);
    const groupIdOf = (name: string) => (name === selfName ? groupId : apply.idOf(`firewall.${name}`));
    const desired = [
      ...properties.ingress.map((rule) => toNeutronRule(rule, 'ingress', groupIdOf)),
      ...(properties.egress ?? []).map((rule) => toNeutronRule(rule, 'egress', groupIdOf)),
    ];
    const managed = (rule: NeutronRule) => rule.direction === 'ingress' || properties.egress !== undefined;
    const current = group.security_group_rules.filter(managed);
    const wanted = new Set(desired.map(ruleKey));
    const present = new Set(current.map(ruleKey));
    for (const rule of current.filter((entry) => !wanted.has(ruleKey(entry)))) {
      await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/security-group-rules/${rule.id}`));
    }
    for (const rule of desired.filter((entry) => !present.has(ruleKey(entry)))) {
      try {
        await whenVisible(
          context,
          `the groups of a rule of ${groupId} to be visible`,
          () => client.request('network', 'POST', '/v2.0/security-group-rules', { body: { security_group_rule: { ...rule, security_group_id: groupId } } }),
          apply.signal,
        );
      } catch (error) {
        // Made by an earlier attempt whose reply was lost.
        if (!AlreadyExistsError.isInstance(error)) throw error;
      }
    }
  }

  const observed = (group: SecurityGroup, address: ResourceAddress, name: string, properties: FirewallProperties): ObservedResource<'firewall'> => ({
    address,
    kind: 'firewall',
    name,
    id: group.id,
    properties,
    outputs: { securityGroupId: group.id },
  });

  return {
    kind: 'firewall',
    // Description and rules change in place; security groups belong to no network.
    replaceOn: [],
    async discover({ environment }) {
      const groups = await client.listAll<SecurityGroup>('network', '/v2.0/security-groups', 'security_groups', { query: { tags: environmentTag(environment) } });
      const nameById = new Map(groups.map((group) => [group.id, ownerOf(group.tags, environment, 'firewall')?.name ?? group.name]));
      const groupNameOf = (id: string) => nameById.get(id) ?? `(foreign ${id})`;
      return groups.flatMap((group) => {
        const owner = ownerOf(group.tags, environment, 'firewall');
        if (!owner) return [];
        const rules = (direction: 'ingress' | 'egress') => group.security_group_rules.filter((rule) => rule.direction === direction).map((rule) => fromNeutronRule(rule, groupNameOf));
        return [observed(group, owner.address, owner.name, { network: '', description: group.description, ingress: rules('ingress'), egress: rules('egress') })];
      });
    },
    async create(resource, apply) {
      const { properties } = resource;
      // Group names need not be unique in Neutron: only the ownership tags tell ours (see createOnce).
      const group = await createOnce(context, apply, resource.address, 'security group', {
        find: async () => {
          const query = { tags: neutronTags(ownershipTags(apply.environment, resource.address)).join(',') };
          return (await client.listAll<SecurityGroup>('network', '/v2.0/security-groups', 'security_groups', { query }))[0];
        },
        create: async () => {
          const body = { security_group: { name: resource.name, description: properties.description, tags: neutronTags(apply.ownershipTags(resource.address)) } };
          return (await client.request<{ security_group: SecurityGroup }>('network', 'POST', '/v2.0/security-groups', { body })).security_group;
        },
      });
      // The group exists: instances and other groups' rules may name it while its rules are added.
      apply.announce(observed(group, resource.address, resource.name, properties));
      if (group.description !== properties.description) await client.request('network', 'PUT', `/v2.0/security-groups/${group.id}`, { body: { security_group: { description: properties.description } } });
      await syncRules(group.id, properties, apply, resource.name);
      return observed(group, resource.address, resource.name, properties);
    },
    async update(resource, current, apply) {
      if (current.properties.description !== resource.properties.description) {
        await client.request('network', 'PUT', `/v2.0/security-groups/${current.id}`, { body: { security_group: { description: resource.properties.description } } });
      }
      await syncRules(current.id, resource.properties, apply, resource.name);
      return { ...current, properties: resource.properties };
    },
    async delete(current) {
      await ignoreNotFound(() => client.request('network', 'DELETE', `/v2.0/security-groups/${current.id}`));
    },
  };
}
