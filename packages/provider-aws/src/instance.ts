/**
 * instance -> an EC2 instance, launched with a ClientToken so a retried launch (after a timeout or
 * a lost response) never makes a second one, tagged at launch (TagSpecifications) so even a run
 * that crashes right after RunInstances leaves an instance the next run finds.
 */
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  type Instance,
} from '@aws-sdk/client-ec2';
import {
  ConflictError,
  NotFoundError,
  digestOf,
  stableStringify,
  type ApplyContext,
  type DiscoverContext,
  type InstanceProperties,
  type ObservedResource,
  type ResourceAddress,
  type ResourceService,
} from '@armada/core';
import { followUp, ignoreNotFound, waitFor, type AwsContext } from './context.js';
import { collect, environmentFilter, fromTagList, ownedAddress, tagSpecification, toTagList, userTags, type InstanceType, type Tags } from './ec2-helpers.js';
import { aws } from './errors.js';
import { keyPairCloudName } from './key-pair.js';

const ROLE_TAG = 'armada:role';
const KEY_PAIR_TAG = 'armada:key-pair';
const USER_DATA_TAG = 'armada:user-data';
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

function instanceOutputs(instance: Instance) {
  return {
    instanceId: instance.InstanceId,
    state: instance.State?.Name,
    privateIp: instance.PrivateIpAddress,
    publicIp: instance.PublicIpAddress,
    privateDnsName: instance.PrivateDnsName,
    zone: instance.Placement?.AvailabilityZone,
  };
}

/** Tags that say what the spec asked for: user tags plus what EC2 cannot tell us back. */
function launchTags(properties: InstanceProperties): Tags {
  return {
    ...properties.tags,
    ...(properties.role !== undefined ? { [ROLE_TAG]: properties.role } : {}),
    ...(properties.keyPair !== undefined ? { [KEY_PAIR_TAG]: properties.keyPair } : {}),
    ...(properties.userData !== undefined ? { [USER_DATA_TAG]: digestOf(properties.userData) } : {}),
  };
}

function observedInstance(instance: Instance, discovery: Pick<DiscoverContext, 'findById'>): ObservedResource<'instance'> | undefined {
  const tags = fromTagList(instance.Tags);
  const owned = ownedAddress(tags);
  if (!owned || !instance.InstanceId) return undefined;
  const nameOf = (id: string | undefined) => discovery.findById(id ?? '')?.name ?? `(foreign ${id})`;
  // EC2 gives an instance launched without groups its VPC's default group (every VPC has one,
  // named "default", which no one else may be named): that is "no firewalls", not a foreign one.
  const groups = (instance.SecurityGroups ?? []).filter((group) => group.GroupName !== 'default' || discovery.findById(group.GroupId ?? '') !== undefined);
  return {
    ...owned,
    kind: 'instance',
    id: instance.InstanceId,
    properties: {
      subnet: nameOf(instance.SubnetId),
      firewalls: groups.map((group) => nameOf(group.GroupId)),
      ...(tags[KEY_PAIR_TAG] !== undefined ? { keyPair: tags[KEY_PAIR_TAG] } : {}),
      size: instance.InstanceType ?? '',
      image: instance.ImageId ?? '',
      tags: userTags(tags),
      ...(tags[USER_DATA_TAG] !== undefined ? { userData: tags[USER_DATA_TAG] } : {}),
      ...(tags[ROLE_TAG] !== undefined ? { role: tags[ROLE_TAG] } : {}),
    },
    outputs: instanceOutputs(instance),
  };
}

export function instanceService(context: AwsContext): ResourceService<'instance'> {
  const { ec2 } = context;

  const describe = async (instanceId: string): Promise<Instance> => {
    const found = await aws('DescribeInstances', () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })));
    const instance = found.Reservations?.[0]?.Instances?.[0];
    if (!instance) throw new NotFoundError(`Instance ${instanceId} is not visible yet.`, { provider: 'aws', resource: instanceId });
    return instance;
  };

  /** The default security group of the instance's VPC. */
  const defaultGroupOf = async (instanceId: string): Promise<string> => {
    const vpcId = (await describe(instanceId)).VpcId;
    const found = await aws('DescribeSecurityGroups', () =>
      ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId ?? ''] }, { Name: 'group-name', Values: ['default'] }] })),
    );
    const id = found.SecurityGroups?.[0]?.GroupId;
    if (!id) throw new NotFoundError(`The default security group of ${vpcId} is not visible yet.`, { provider: 'aws', resource: instanceId });
    return id;
  };

  const firewallIds = (properties: InstanceProperties, apply: ApplyContext) =>
    properties.firewalls.map((name) => apply.idOf(`firewall.${name}` as ResourceAddress));

  return {
    kind: 'instance',
    replaceOn: ['subnet', 'keyPair', 'size', 'image', 'userData'],
    async discover(discovery) {
      const reservations = await collect(
        'DescribeInstances',
        paginateDescribeInstances(
          { client: ec2, pageSize: context.pageSize },
          { Filters: [...environmentFilter(discovery.environment), { Name: 'instance-state-name', Values: LIVE_STATES }] },
        ),
        (page) => page.Reservations,
      );
      return reservations.flatMap((reservation) => (reservation.Instances ?? []).flatMap((instance) => observedInstance(instance, discovery) ?? []));
    },
    async create(resource, apply) {
      const { properties } = resource;
      const subnet = apply.resourceAt(`subnet.${properties.subnet}`) as ObservedResource<'subnet'>;
      // Retried in place: a subnet or group announced a moment ago may not be visible to EC2 yet,
      // and the ClientToken makes a repeated launch return the first one.
      const launched = await followUp(context, `RunInstances for ${resource.address} to accept its subnet and groups`, () =>
        aws('RunInstances', () =>
        ec2.send(
          new RunInstancesCommand({
            ImageId: properties.image,
            InstanceType: properties.size as InstanceType,
            MinCount: 1,
            MaxCount: 1,
            // The public IP is asked for here rather than left to the subnet's MapPublicIpOnLaunch,
            // which may still be being set when a subnet is announced early.
            NetworkInterfaces: [
              {
                DeviceIndex: 0,
                SubnetId: apply.idOf(`subnet.${properties.subnet}`),
                Groups: firewallIds(properties, apply),
                AssociatePublicIpAddress: subnet.properties.access === 'public',
              },
            ],
            ...(properties.keyPair !== undefined ? { KeyName: keyPairCloudName(apply.environment, properties.keyPair) } : {}),
            // EC2 wants user data base64-encoded; the SDK sends this string as is.
            ...(properties.userData !== undefined ? { UserData: Buffer.from(properties.userData).toString('base64') } : {}),
            ClientToken: apply.idempotencyToken(resource.address),
            TagSpecifications: tagSpecification('instance', { ...launchTags(properties), ...apply.ownershipTags(resource.address) }),
          }),
        ),
        ),
        apply.signal,
      );
      const instanceId = launched.Instances?.[0]?.InstanceId;
      if (!instanceId) throw new ConflictError(`RunInstances returned no instance for ${resource.address}.`);
      const running = await waitFor<Instance>(
        context,
        `instance ${instanceId} (${resource.address}) to be running`,
        async () => {
          const instance = await describe(instanceId);
          const state = instance.State?.Name;
          if (state === 'running') return { done: true, value: instance };
          if (state === 'shutting-down' || state === 'terminated') {
            throw new ConflictError(`Instance ${instanceId} (${resource.address}) went ${state} while starting: ${instance.StateReason?.Message ?? 'no reason given'}.`, {
              provider: 'aws',
              resource: resource.address,
            });
          }
          return { done: false, ...(state ? { state } : {}) };
        },
        apply.signal,
      );
      return { address: resource.address, kind: 'instance', name: resource.name, id: instanceId, properties, outputs: instanceOutputs(running) };
    },
    async update(resource, current, apply) {
      const { properties } = resource;
      if (stableStringify([...properties.firewalls].sort()) !== stableStringify([...current.properties.firewalls].sort())) {
        // An instance has at least one group: "no firewalls" is its VPC's default group, as at launch.
        const groups = properties.firewalls.length > 0 ? firewallIds(properties, apply) : [await defaultGroupOf(current.id)];
        await aws('ModifyInstanceAttribute', () => ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: current.id, Groups: groups })));
      }
      const wanted = launchTags(properties);
      const previous = launchTags(current.properties);
      const removed = Object.keys(previous).filter((key) => !(key in wanted) && key !== USER_DATA_TAG);
      if (removed.length > 0) {
        await aws('DeleteTags', () => ec2.send(new DeleteTagsCommand({ Resources: [current.id], Tags: removed.map((Key) => ({ Key })) })));
      }
      // User data cannot change in place (it forces a replacement), so its digest tag stays as is.
      const changeable = {
        ...Object.fromEntries(Object.entries(wanted).filter(([key]) => key !== USER_DATA_TAG)),
        // Kept under a new address (an instance group scaled): its ownership tag follows.
        ...(current.address !== resource.address ? apply.ownershipTags(resource.address) : {}),
      };
      await aws('CreateTags', () => ec2.send(new CreateTagsCommand({ Resources: [current.id], Tags: toTagList(changeable) })));
      return { ...current, properties };
    },
    async delete(current, apply) {
      await ignoreNotFound(() => aws('TerminateInstances', () => ec2.send(new TerminateInstancesCommand({ InstanceIds: [current.id] }))));
      await waitFor(
        context,
        `instance ${current.id} (${current.address}) to be terminated`,
        async () => {
          try {
            const state = (await describe(current.id)).State?.Name;
            return state === 'terminated' ? { done: true, value: undefined } : { done: false, ...(state ? { state } : {}) };
          } catch (error) {
            // Gone from DescribeInstances: terminated long enough ago.
            if (NotFoundError.isInstance(error)) return { done: true, value: undefined };
            throw error;
          }
        },
        apply.signal,
      );
    },
  };
}
