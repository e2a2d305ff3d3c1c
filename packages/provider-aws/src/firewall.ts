/**
 * firewall -> a VPC security group. Rules are kept in sync by diff: what the spec lacks is
 * revoked, what the group lacks is authorized. A firewall peer becomes a group reference; subnet
 * peers were turned into their CIDRs by the provider's `adapt`. Egress is managed only when the
 * spec lists egress rules (otherwise AWS's default, all outbound, stays).
 */
import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  paginateDescribeSecurityGroups,
  type IpPermission,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  stableStringify,
  type ApplyContext,
  type FirewallProperties,
  type FirewallRule,
  type ObservedResource,
  type ResourceService,
} from '@armada/core';
import { ignoreNotFound, followUp, type AwsContext } from './context.js';
import { collect, environmentFilter, fromTagList, ownedAddress, tagSpecification } from './ec2-helpers.js';
import { aws } from './errors.js';

/** One AWS permission per portable rule (AWS merges them; we split them back on read). */
function toPermission(rule: FirewallRule, groupIdOf: (name: string) => string): IpPermission {
  const ports =
    rule.protocol === 'tcp' || rule.protocol === 'udp'
      ? { FromPort: rule.ports?.from ?? 0, ToPort: rule.ports?.to ?? 65535 }
      : rule.protocol === 'icmp'
        ? { FromPort: -1, ToPort: -1 }
        : {};
  const description = rule.description ? { Description: rule.description } : {};
  const peer = rule.peer;
  return {
    IpProtocol: rule.protocol === 'all' ? '-1' : rule.protocol,
    ...ports,
    ...('cidr' in peer && !peer.cidr.includes(':') ? { IpRanges: [{ CidrIp: peer.cidr, ...description }] } : {}),
    ...('cidr' in peer && peer.cidr.includes(':') ? { Ipv6Ranges: [{ CidrIpv6: peer.cidr, ...description }] } : {}),
    ...('firewall' in peer ? { UserIdGroupPairs: [{ GroupId: groupIdOf(peer.firewall), ...description }] } : {}),
  };
}

/** AWS merges rules that share protocol and ports; split them into one permission per peer, as toPermission makes them. */
function splitPermissions(permissions: IpPermission[] | undefined): IpPermission[] {
  const split: IpPermission[] = [];
  for (const permission of permissions ?? []) {
    const base = {
      IpProtocol: permission.IpProtocol,
      ...(permission.IpProtocol !== '-1' && permission.FromPort !== undefined ? { FromPort: permission.FromPort, ToPort: permission.ToPort } : {}),
    };
    const described = (description: string | undefined) => (description ? { Description: description } : {});
    for (const range of permission.IpRanges ?? []) split.push({ ...base, IpRanges: [{ CidrIp: range.CidrIp, ...described(range.Description) }] });
    for (const range of permission.Ipv6Ranges ?? []) split.push({ ...base, Ipv6Ranges: [{ CidrIpv6: range.CidrIpv6, ...described(range.Description) }] });
    for (const pair of permission.UserIdGroupPairs ?? []) split.push({ ...base, UserIdGroupPairs: [{ GroupId: pair.GroupId, ...described(pair.Description) }] });
  }
  return split;
}

function fromPermissions(permissions: IpPermission[] | undefined, groupNameOf: (id: string) => string): FirewallRule[] {
  const rules: FirewallRule[] = [];
  for (const permission of permissions ?? []) {
    const protocol = permission.IpProtocol === '-1' ? 'all' : (permission.IpProtocol as FirewallRule['protocol']);
    const portsKnown = (protocol === 'tcp' || protocol === 'udp') && permission.FromPort !== undefined && permission.ToPort !== undefined;
    const allPorts = portsKnown && permission.FromPort === 0 && permission.ToPort === 65535;
    const base = { protocol, ...(portsKnown && !allPorts ? { ports: { from: permission.FromPort as number, to: permission.ToPort as number } } : {}) };
    const described = (description: string | undefined) => (description ? { description } : {});
    for (const range of permission.IpRanges ?? []) rules.push({ ...base, peer: { cidr: range.CidrIp ?? '' }, ...described(range.Description) });
    for (const range of permission.Ipv6Ranges ?? []) rules.push({ ...base, peer: { cidr: range.CidrIpv6 ?? '' }, ...described(range.Description) });
    for (const pair of permission.UserIdGroupPairs ?? []) rules.push({ ...base, peer: { firewall: groupNameOf(pair.GroupId ?? '') }, ...described(pair.Description) });
  }
  return rules;
}

export function firewallService(context: AwsContext): ResourceService<'firewall'> {
  const { ec2 } = context;

  const describeGroup = async (groupId: string): Promise<SecurityGroup> => {
    const found = await aws('DescribeSecurityGroups', () => ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] })));
    const group = found.SecurityGroups?.[0];
    if (!group) throw new NotFoundError(`Security group ${groupId} is not visible yet.`, { provider: 'aws', resource: groupId });
    return group;
  };

  /**
   * Brings the group's rules to the desired ones. Both sides are compared as single-peer
   * permissions in cloud terms; a changed description is a different rule, so revoke runs first.
   */
  async function syncRules(group: SecurityGroup, properties: FirewallProperties, apply: ApplyContext, selfName: string): Promise<void> {
    const groupId = group.GroupId as string;
    const groupIdOf = (name: string) => (name === selfName ? groupId : apply.idOf(`firewall.${name}`));
    const directions = [
      {
        current: group.IpPermissions,
        desired: properties.ingress,
        revoke: (IpPermissions: IpPermission[]) => ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions })),
        authorize: (IpPermissions: IpPermission[]) => ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions })),
      },
      ...(properties.egress
        ? [
            {
              current: group.IpPermissionsEgress,
              desired: properties.egress,
              revoke: (IpPermissions: IpPermission[]) => ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions })),
              authorize: (IpPermissions: IpPermission[]) => ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions })),
            },
          ]
        : []),
    ];
    for (const direction of directions) {
      const keyed = (permissions: IpPermission[]) => new Map(permissions.map((permission) => [stableStringify(permission), permission]));
      const current = keyed(splitPermissions(direction.current));
      const desired = keyed(direction.desired.map((rule) => toPermission(rule, groupIdOf)));
      const revoke = [...current].filter(([key]) => !desired.has(key)).map(([, permission]) => permission);
      const authorize = [...desired].filter(([key]) => !current.has(key)).map(([, permission]) => permission);
      if (revoke.length > 0) await aws('RevokeSecurityGroupRules', () => direction.revoke(revoke));
      if (authorize.length > 0) await aws('AuthorizeSecurityGroupRules', () => direction.authorize(authorize));
    }
  }

  return {
    kind: 'firewall',
    // AWS cannot change a group's description or VPC.
    replaceOn: ['network', 'description'],
    async discover({ environment, findById }) {
      const groups = await collect(
        'DescribeSecurityGroups',
        paginateDescribeSecurityGroups({ client: ec2, pageSize: context.pageSize }, { Filters: environmentFilter(environment) }),
        (page) => page.SecurityGroups,
      );
      const nameById = new Map(groups.map((group) => [group.GroupId ?? '', ownedAddress(fromTagList(group.Tags))?.name ?? group.GroupName ?? '']));
      const groupNameOf = (id: string) => nameById.get(id) ?? `(foreign ${id})`;
      return groups.flatMap((group): ObservedResource<'firewall'>[] => {
        const owned = ownedAddress(fromTagList(group.Tags));
        if (!owned || !group.GroupId) return [];
        return [
          {
            ...owned,
            kind: 'firewall',
            id: group.GroupId,
            properties: {
              network: findById(group.VpcId ?? '')?.name ?? `(foreign ${group.VpcId})`,
              description: group.Description ?? '',
              ingress: fromPermissions(group.IpPermissions, groupNameOf),
              egress: fromPermissions(group.IpPermissionsEgress, groupNameOf),
            },
            outputs: { groupId: group.GroupId, groupName: group.GroupName },
          },
        ];
      });
    },
    async create(resource, apply) {
      const { properties } = resource;
      const vpcId = apply.idOf(`network.${properties.network}`);
      let groupId: string | undefined;
      let adoptedGroup = false;
      try {
        groupId = (
          await followUp(context, `VPC ${vpcId} to accept security groups`, () =>
            aws('CreateSecurityGroup', () =>
              ec2.send(
                new CreateSecurityGroupCommand({
                  GroupName: resource.name,
                  Description: properties.description,
                  VpcId: vpcId,
                  TagSpecifications: tagSpecification('security-group', { Name: resource.name, ...apply.ownershipTags(resource.address) }),
                }),
              ),
            ),
          )
        ).GroupId;
      } catch (error) {
        if (!AlreadyExistsError.isInstance(error)) throw error;
        // Ours from an attempt whose answer was lost: adopt it (once EC2 shows it). Someone else's: refuse.
        const group = await followUp(
          context,
          `security group "${resource.name}" in ${vpcId} to be visible`,
          async () => {
            const existing = await aws('DescribeSecurityGroups', () =>
              ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'group-name', Values: [resource.name] }] })),
            );
            const found = existing.SecurityGroups?.[0];
            if (!found) throw new NotFoundError(`Security group "${resource.name}" is not visible yet.`, { provider: 'aws' });
            return found;
          },
          apply.signal,
        );
        if (ownedAddress(fromTagList(group.Tags))?.address !== resource.address) {
          throw new AlreadyExistsError(
            `A security group named "${resource.name}" already exists in ${vpcId} and does not belong to environment "${apply.environment}". Rename the firewall or delete the group.`,
            { provider: 'aws', resource: resource.address },
          );
        }
        groupId = group.GroupId;
        adoptedGroup = true;
      }
      if (!groupId) throw new ConflictError(`CreateSecurityGroup returned no group id for ${resource.address}.`);
      const created = groupId;
      // Instances and peer groups need only the group id: let them start while rules are set.
      apply.announce({ address: resource.address, kind: 'firewall', name: resource.name, id: created, properties, outputs: { groupId: created, groupName: resource.name } });
      // A group just created holds exactly AWS's default rules, so the first sync needs no
      // Describe; a retried sync (after a throttle or a lost response) reads the group again.
      let assumed: SecurityGroup | undefined = adoptedGroup
        ? undefined
        : { GroupId: created, IpPermissions: [], IpPermissionsEgress: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] };
      await followUp(
        context,
        `the rules of security group ${groupId}`,
        async () => {
          const group = assumed ?? (await describeGroup(created));
          assumed = undefined;
          await syncRules(group, properties, apply, resource.name);
        },
        apply.signal,
      );
      return { address: resource.address, kind: 'firewall', name: resource.name, id: groupId, properties, outputs: { groupId, groupName: resource.name } };
    },
    async update(resource, current, apply) {
      await followUp(context, `the rules of security group ${current.id}`, async () => syncRules(await describeGroup(current.id), resource.properties, apply, resource.name), apply.signal);
      return { ...current, properties: resource.properties };
    },
    async delete(current) {
      await ignoreNotFound(() => aws('DeleteSecurityGroup', () => ec2.send(new DeleteSecurityGroupCommand({ GroupId: current.id }))));
    },
  };
}
