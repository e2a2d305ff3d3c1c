/**
 * network -> a VPC with DNS hostnames enabled and an internet gateway attached (public subnets
 * route to it). CreateVpc takes no idempotency token, so a create first adopts a VPC an earlier,
 * interrupted attempt made (found by its ownership tags).
 */
import {
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateVpcCommand,
  DeleteInternetGatewayCommand,
  DeleteVpcCommand,
  DescribeInternetGatewaysCommand,
  DescribeVpcsCommand,
  DetachInternetGatewayCommand,
  ModifyVpcAttributeCommand,
  paginateDescribeInternetGateways,
  paginateDescribeVpcs,
  type InternetGateway,
  type Vpc,
} from '@aws-sdk/client-ec2';
import { ConflictError, type ObservedResource, type ResourceService } from '@armada/core';
import { followUp, ignoreNotFound, isRetriedCreate, tolerating, type AwsContext } from './context.js';
import { collect, environmentFilter, fromTagList, ownedAddress, tagFilters, tagSpecification } from './ec2-helpers.js';
import { aws } from './errors.js';

function observedNetwork(vpc: Vpc, gateway: InternetGateway | undefined): ObservedResource<'network'> | undefined {
  const owned = ownedAddress(fromTagList(vpc.Tags));
  if (!owned || !vpc.VpcId) return undefined;
  return {
    ...owned,
    kind: 'network',
    id: vpc.VpcId,
    properties: { cidr: vpc.CidrBlock ?? '' },
    outputs: { vpcId: vpc.VpcId, cidr: vpc.CidrBlock, internetGatewayId: gateway?.InternetGatewayId },
  };
}

const attachedTo = (vpcId: string) => (gateway: InternetGateway) => (gateway.Attachments ?? []).some((attachment) => attachment.VpcId === vpcId);

/** The environment's internet gateway, created (or, on a retry, found) and attached to the VPC. */
async function attachedGateway(context: AwsContext, vpcId: string, tags: Record<string, string>, retried: boolean, key: string): Promise<InternetGateway> {
  const { ec2 } = context;
  let attempted = retried;
  const gateway = await followUp(context, `an internet gateway for ${vpcId}`, async () => {
    const found = attempted
      ? await context.attempts.find(key, async () => (await aws('DescribeInternetGateways', () => ec2.send(new DescribeInternetGatewaysCommand({ Filters: tagFilters(tags) })))).InternetGateways?.[0])
      : undefined;
    attempted = true;
    return (
      found ??
      (await context.attempts.remember(key, async () =>
        (await aws('CreateInternetGateway', () => ec2.send(new CreateInternetGatewayCommand({ TagSpecifications: tagSpecification('internet-gateway', tags) })))).InternetGateway,
      ))
    );
  });
  const gatewayId = gateway?.InternetGatewayId;
  if (!gateway || !gatewayId) throw new ConflictError(`CreateInternetGateway returned no id for VPC ${vpcId}.`);
  if (!attachedTo(vpcId)(gateway)) {
    await followUp(context, `internet gateway ${gatewayId} to attach`, () =>
      // Already attached: an earlier attempt's response was lost after it took effect.
      tolerating(ConflictError.isInstance, () =>
        aws('AttachInternetGateway', () => ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: gatewayId, VpcId: vpcId }))),
      ),
    );
  }
  return { ...gateway, Attachments: [{ VpcId: vpcId }] };
}

/**
 * The gateway of a network an interrupted run left half made (killed between CreateVpc and its
 * gateway): made or found by the network's ownership tags, and attached. Once per VPC and provider,
 * however many public subnets need it at once.
 */
export function repairGateway(context: AwsContext, vpcId: string, tags: Record<string, string>): Promise<InternetGateway> {
  let repair = context.gatewayRepairs.get(vpcId);
  if (!repair) {
    repair = attachedGateway(context, vpcId, tags, true, `repair/${vpcId}`);
    repair.catch(() => context.gatewayRepairs.delete(vpcId));
    context.gatewayRepairs.set(vpcId, repair);
  }
  return repair;
}

export function networkService(context: AwsContext): ResourceService<'network'> {
  const { ec2 } = context;

  return {
    kind: 'network',
    replaceOn: ['cidr'],
    async discover({ environment }) {
      const [vpcs, gateways] = await Promise.all([
        collect('DescribeVpcs', paginateDescribeVpcs({ client: ec2, pageSize: context.pageSize }, { Filters: environmentFilter(environment) }), (page) => page.Vpcs),
        collect(
          'DescribeInternetGateways',
          paginateDescribeInternetGateways({ client: ec2, pageSize: context.pageSize }, { Filters: environmentFilter(environment) }),
          (page) => page.InternetGateways,
        ),
      ]);
      return vpcs.flatMap((vpc) => observedNetwork(vpc, gateways.find(attachedTo(vpc.VpcId ?? ''))) ?? []);
    },
    async create(resource, apply) {
      const tags = { Name: resource.name, ...apply.ownershipTags(resource.address) };
      const ours = tagFilters(apply.ownershipTags(resource.address));
      const retried = isRetriedCreate(context, apply, resource.address);
      // CreateVpc takes no idempotency token: a retry first looks for what an earlier attempt made.
      const key = apply.idempotencyToken(resource.address);
      const adopted = retried ? await context.attempts.find(key, async () => (await aws('DescribeVpcs', () => ec2.send(new DescribeVpcsCommand({ Filters: ours })))).Vpcs?.[0], apply.signal) : undefined;
      const vpc =
        adopted ??
        (await context.attempts.remember(key, async () =>
          (await aws('CreateVpc', () => ec2.send(new CreateVpcCommand({ CidrBlock: resource.properties.cidr, TagSpecifications: tagSpecification('vpc', tags) })))).Vpc,
        ));
      const vpcId = vpc?.VpcId;
      if (!vpc || !vpcId) throw new ConflictError(`CreateVpc returned no VPC id for ${resource.address}.`);
      // Security groups need only the VPC id: let them start while the gateway is set up.
      apply.announce(observedNetwork(vpc, undefined) ?? { address: resource.address, kind: 'network', name: resource.name, id: vpcId, properties: resource.properties, outputs: { vpcId } });
      // Follow-ups, retried in place (see followUp); the attribute and the gateway are independent.
      const [, gateway] = await Promise.all([
        followUp(context, `VPC ${vpcId} to accept attributes`, () =>
          aws('ModifyVpcAttribute', () => ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } }))),
        ),
        attachedGateway(context, vpcId, tags, retried, `${key}/internet-gateway`),
      ]);
      return observedNetwork(vpc, gateway) as ObservedResource<'network'>;
    },
    async delete(current, apply) {
      const gateways = await aws('DescribeInternetGateways', () =>
        ec2.send(new DescribeInternetGatewaysCommand({ Filters: [{ Name: 'attachment.vpc-id', Values: [current.id] }] })),
      );
      const ours = await aws('DescribeInternetGateways', () =>
        ec2.send(new DescribeInternetGatewaysCommand({ Filters: tagFilters(apply.ownershipTags(current.address)) })),
      );
      const all = new Map([...(gateways.InternetGateways ?? []), ...(ours.InternetGateways ?? [])].map((gateway) => [gateway.InternetGatewayId ?? '', gateway]));
      for (const [gatewayId, gateway] of all) {
        if (attachedTo(current.id)(gateway)) {
          await ignoreNotFound(() => aws('DetachInternetGateway', () => ec2.send(new DetachInternetGatewayCommand({ InternetGatewayId: gatewayId, VpcId: current.id }))));
        }
        await ignoreNotFound(() => aws('DeleteInternetGateway', () => ec2.send(new DeleteInternetGatewayCommand({ InternetGatewayId: gatewayId }))));
      }
      await ignoreNotFound(() => aws('DeleteVpc', () => ec2.send(new DeleteVpcCommand({ VpcId: current.id }))));
    },
  };
}
