/**
 * subnet -> an EC2 subnet with its own route table. Public: a default route to the network's
 * internet gateway and public IPs on launch. Private: no route to the internet at all.
 * The route table carries the subnet's ownership tags, so a re-run finds and reuses it.
 * A subnet is in one Availability Zone, and EC2 launches an instance type only in the zones
 * that offer it: placeSubnets chooses (or checks) each subnet's zone when the plan is made.
 */
import {
  AssociateRouteTableCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  DeleteRouteCommand,
  DeleteRouteTableCommand,
  DeleteSubnetCommand,
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  DisassociateRouteTableCommand,
  ModifySubnetAttributeCommand,
  paginateDescribeRouteTables,
  paginateDescribeSubnets,
  type Filter,
  type RouteTable,
  type Subnet,
} from '@aws-sdk/client-ec2';
import {
  ConflictError,
  NotFoundError,
  type ApplyContext,
  type DesiredResource,
  type DiscoverContext,
  type ObservedResource,
  type PlanNote,
  type ResourceService,
  type ValidationIssue,
} from '@armada/core';
import { followUp, ignoreNotFound, isRetriedCreate, tolerating, type AwsContext } from './context.js';
import { collect, environmentFilter, fromTagList, ownedAddress, tagFilters, tagSpecification } from './ec2-helpers.js';
import { repairGateway } from './network.js';
import { aws } from './errors.js';

const INTERNET = '0.0.0.0/0';

function routesToInternet(table: RouteTable | undefined): boolean {
  return (table?.Routes ?? []).some((route) => route.DestinationCidrBlock === INTERNET && route.GatewayId?.startsWith('igw-'));
}

/**
 * What exists, in the spec's terms. A subnet is public when it maps public IPs on launch and its
 * route table routes to the internet; anything less reads as private, so a public subnet an
 * interrupted run left half made is finished by an in-place update (`access` is updatable).
 */
function observedSubnet(subnet: Subnet, networkName: string, table: RouteTable | undefined): ObservedResource<'subnet'> | undefined {
  const owned = ownedAddress(fromTagList(subnet.Tags));
  if (!owned || !subnet.SubnetId) return undefined;
  const ownTable = table !== undefined && ownedAddress(fromTagList(table.Tags))?.address === owned.address;
  return {
    ...owned,
    kind: 'subnet',
    id: subnet.SubnetId,
    properties: {
      network: networkName,
      cidr: subnet.CidrBlock ?? '',
      access: subnet.MapPublicIpOnLaunch && routesToInternet(table) ? 'public' : 'private',
      ...(subnet.AvailabilityZone ? { zone: subnet.AvailabilityZone } : {}),
    },
    outputs: { subnetId: subnet.SubnetId, cidr: subnet.CidrBlock, zone: subnet.AvailabilityZone, routeTableId: table?.RouteTableId },
    ...(ownTable ? {} : { unfinished: 'its route table is not associated' }),
  };
}

/** The instance types launched into each subnet, by subnet name, sorted. */
function typesBySubnet(resources: DesiredResource[]): Map<string, string[]> {
  const types = new Map<string, Set<string>>();
  for (const resource of resources) {
    if (resource.kind !== 'instance') continue;
    const { subnet, size } = (resource as DesiredResource<'instance'>).properties;
    types.set(subnet, (types.get(subnet) ?? new Set()).add(size));
  }
  return new Map([...types].map(([subnet, sizes]) => [subnet, [...sizes].sort()]));
}

/**
 * Each subnet in a zone that offers every instance type launched into it. A subnet whose spec
 * names a zone is checked; one that names none gets the first zone, by name, that offers them
 * all, as a desired property: the same choice every plan while the types and EC2's offerings
 * stay the same, so an applied environment re-plans empty (and `zone` is replaceOn, so a choice
 * that moved would replace the subnet). A subnet without instances is left to EC2's choice.
 * `zonesOffering` is what DescribeInstanceTypeOfferings said for a type (undefined: not asked).
 */
export function placeSubnets(
  resources: DesiredResource[],
  zonesOffering: (instanceType: string) => readonly string[] | undefined,
): { resources: DesiredResource[]; notes: PlanNote[]; issues: ValidationIssue[] } {
  const bySubnet = typesBySubnet(resources);
  const notes: PlanNote[] = [];
  const issues: ValidationIssue[] = [];
  const placed = resources.map((resource): DesiredResource => {
    if (resource.kind !== 'subnet') return resource;
    const subnet = resource as DesiredResource<'subnet'>;
    const offered = (bySubnet.get(subnet.name) ?? []).flatMap((type) => {
      const zones = zonesOffering(type);
      return zones ? [{ type, zones }] : [];
    });
    const [first] = offered;
    if (!first) return resource;
    const where = ({ type, zones }: { type: string; zones: readonly string[] }) => `${type} is offered in ${zones.join(', ')}`;
    const { zone } = subnet.properties;
    if (zone !== undefined) {
      for (const offer of offered.filter(({ zones }) => !zones.includes(zone))) {
        issues.push({ path: `${subnet.address}.zone`, message: `${zone} does not offer ${offer.type}: ${where(offer)}`, fix: 'set zone to one of those, or leave it out for Armada to choose' });
      }
      return resource;
    }
    const common = offered.reduce<readonly string[]>((zones, offer) => zones.filter((candidate) => offer.zones.includes(candidate)), first.zones);
    const chosen = [...common].sort()[0];
    const types = offered.map(({ type }) => type).join(', ');
    if (chosen === undefined) {
      issues.push({ path: subnet.address, message: `no zone offers all of ${types}: ${offered.map(where).join('; ')}`, fix: 'put instances of types no zone shares in different subnets, or choose other sizes' });
      return resource;
    }
    notes.push({ severity: 'info', path: subnet.address, message: `in ${chosen}, the first zone by name offering ${types}` });
    // Chosen, not asked for: a subnet that exists stays in its zone (changing it would replace it).
    return { ...subnet, chosen: { ...subnet.chosen, zone: chosen } };
  });
  return { resources: placed, notes, issues };
}

export function subnetService(context: AwsContext): ResourceService<'subnet'> {
  const { ec2 } = context;
  const routeTables = async (filters: Filter[]) =>
    (await aws('DescribeRouteTables', () => ec2.send(new DescribeRouteTablesCommand({ Filters: filters })))).RouteTables ?? [];

  /**
   * Gives subnet `subnetId` what its access needs: its own route table (found by its tags when an
   * earlier attempt may have made it, else created), associated, with a route to the network's
   * internet gateway exactly when public, and public IPs on launch exactly when public. Used by
   * create, and by update to change access or finish what an interrupted run left.
   */
  async function provideAccess(
    resource: DesiredResource<'subnet'>,
    subnetId: string,
    apply: ApplyContext,
    { lookForTable, mapPublicIp }: { lookForTable: boolean; mapPublicIp: boolean | undefined },
  ): Promise<string> {
    const { properties } = resource;
    const networkAddress = `network.${properties.network}` as const;
    const vpcId = apply.idOf(networkAddress);
    const tags = { Name: resource.name, ...apply.ownershipTags(resource.address) };
    const ours = tagFilters(apply.ownershipTags(resource.address));
    const isPublic = properties.access === 'public';
    const routeTable = async (): Promise<string> => {
      const table = await followUp(context, `a route table for ${resource.address}`, async () => {
        const found = lookForTable ? (await routeTables(ours))[0] : undefined;
        return (
          found ??
          (
            await aws('CreateRouteTable', () =>
              ec2.send(new CreateRouteTableCommand({ VpcId: vpcId, TagSpecifications: tagSpecification('route-table', tags), ClientToken: apply.idempotencyToken(resource.address) })),
            )
          ).RouteTable
        );
      });
      const tableId = table?.RouteTableId;
      if (!table || !tableId) throw new ConflictError(`CreateRouteTable returned no id for ${resource.address}.`);
      if (isPublic && !routesToInternet(table)) {
        const network = apply.resourceAt(networkAddress);
        let gatewayId = network.outputs.internetGatewayId;
        // A network an interrupted run left without its gateway: finished here, not refused.
        if (typeof gatewayId !== 'string') gatewayId = (await repairGateway(context, vpcId, { Name: network.name, ...apply.ownershipTags(networkAddress) })).InternetGatewayId;
        if (typeof gatewayId !== 'string') throw new ConflictError(`Network ${properties.network} has no internet gateway for public subnet ${resource.name}.`);
        await followUp(context, `route table ${tableId} to accept routes`, () =>
          tolerating(ConflictError.isInstance, () =>
            aws('CreateRoute', () => ec2.send(new CreateRouteCommand({ RouteTableId: tableId, DestinationCidrBlock: INTERNET, GatewayId: gatewayId }))),
          ),
        );
      }
      if (!isPublic && routesToInternet(table)) {
        await tolerating(NotFoundError.isInstance, () =>
          aws('DeleteRoute', () => ec2.send(new DeleteRouteCommand({ RouteTableId: tableId, DestinationCidrBlock: INTERNET }))),
        );
      }
      if (!(table.Associations ?? []).some((association) => association.SubnetId === subnetId)) {
        // Associating again with the same table answers the existing association (a retry after a
        // lost response succeeds); Resource.AlreadyAssociated means another table has the subnet.
        await followUp(context, `route table ${tableId} to associate`, () =>
          aws('AssociateRouteTable', () => ec2.send(new AssociateRouteTableCommand({ RouteTableId: tableId, SubnetId: subnetId }))),
        );
      }
      return tableId;
    };
    // Two independent chains of follow-ups: the public-IP attribute, and the route table.
    const [, tableId] = await Promise.all([
      mapPublicIp !== isPublic
        ? followUp(context, `subnet ${subnetId} to accept attributes`, () =>
            aws('ModifySubnetAttribute', () => ec2.send(new ModifySubnetAttributeCommand({ SubnetId: subnetId, MapPublicIpOnLaunch: { Value: isPublic } }))),
          )
        : undefined,
      routeTable(),
    ]);
    return tableId;
  }

  return {
    kind: 'subnet',
    replaceOn: ['network', 'cidr', 'zone'],
    async discover(discovery: DiscoverContext) {
      const [subnets, tables] = await Promise.all([
        collect('DescribeSubnets', paginateDescribeSubnets({ client: ec2, pageSize: context.pageSize }, { Filters: environmentFilter(discovery.environment) }), (page) => page.Subnets),
        collect('DescribeRouteTables', paginateDescribeRouteTables({ client: ec2, pageSize: context.pageSize }, { Filters: environmentFilter(discovery.environment) }), (page) => page.RouteTables),
      ]);
      return subnets.flatMap((subnet) => {
        const table = tables.find((candidate) => (candidate.Associations ?? []).some((association) => association.SubnetId === subnet.SubnetId));
        const network = discovery.findById(subnet.VpcId ?? '')?.name ?? `(foreign ${subnet.VpcId})`;
        return observedSubnet(subnet, network, table) ?? [];
      });
    },
    async create(resource, apply) {
      const { properties } = resource;
      const vpcId = apply.idOf(`network.${properties.network}`);
      const tags = { Name: resource.name, ...apply.ownershipTags(resource.address) };
      const ours = tagFilters(apply.ownershipTags(resource.address));
      const retried = isRetriedCreate(context, apply, resource.address);
      let subnet: Subnet | undefined = retried ? (await aws('DescribeSubnets', () => ec2.send(new DescribeSubnetsCommand({ Filters: ours })))).Subnets?.[0] : undefined;
      if (!subnet) {
        try {
          subnet = (
            await followUp(context, `VPC ${vpcId} to accept subnets`, () =>
              aws('CreateSubnet', () =>
                ec2.send(
                  new CreateSubnetCommand({
                    VpcId: vpcId,
                    CidrBlock: properties.cidr,
                    ...(properties.zone ? { AvailabilityZone: properties.zone } : {}),
                    TagSpecifications: tagSpecification('subnet', tags),
                  }),
                ),
              ),
            )
          ).Subnet;
        } catch (error) {
          if (!ConflictError.isInstance(error)) throw error;
          // The CIDR is taken: by our own subnet from an attempt whose answer was lost or that
          // EC2 did not show yet (adopt it), or by someone else's (refuse, naming it).
          subnet = await followUp(context, `the subnet holding ${properties.cidr} in ${vpcId} to be visible`, async () => {
            const holder = (
              await aws('DescribeSubnets', () =>
                ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'cidr-block', Values: [properties.cidr] }] })),
              )
            ).Subnets?.[0];
            if (!holder) throw new NotFoundError(`No visible subnet holds ${properties.cidr} yet.`, { provider: 'aws' });
            if (ownedAddress(fromTagList(holder.Tags))?.address !== resource.address) {
              throw new ConflictError(`The CIDR ${properties.cidr} of ${resource.address} is taken by subnet ${holder.SubnetId}, which is not this environment's.`, {
                provider: 'aws',
                resource: resource.address,
              });
            }
            return holder;
          });
        }
      }
      const subnetId = subnet?.SubnetId;
      if (!subnet || !subnetId) throw new ConflictError(`CreateSubnet returned no subnet id for ${resource.address}.`);
      // Instances need only the subnet id (they ask for their public IP themselves): let them start.
      apply.announce({ address: resource.address, kind: 'subnet', name: resource.name, id: subnetId, properties, outputs: { subnetId, cidr: subnet.CidrBlock, zone: subnet.AvailabilityZone } });
      const tableId = await provideAccess(resource, subnetId, apply, { lookForTable: retried, mapPublicIp: subnet.MapPublicIpOnLaunch ?? false });
      return {
        address: resource.address,
        kind: 'subnet',
        name: resource.name,
        id: subnetId,
        properties: { ...properties, ...(subnet.AvailabilityZone ? { zone: subnet.AvailabilityZone } : {}) },
        outputs: { subnetId, cidr: subnet.CidrBlock, zone: subnet.AvailabilityZone, routeTableId: tableId },
      };
    },
    /**
     * Access changes in place (instances keep running; those launched public keep the public IP
     * they have), and a subnet an interrupted run left half made is finished.
     */
    async update(resource, current, apply) {
      // The attribute is set whatever it is now: the observed access does not say which half is missing.
      const tableId = await provideAccess(resource, current.id, apply, { lookForTable: true, mapPublicIp: undefined });
      const { unfinished: _finished, ...finished } = current;
      return { ...finished, properties: { ...current.properties, access: resource.properties.access }, outputs: { ...current.outputs, routeTableId: tableId } };
    },
    async delete(current, apply) {
      const tables = [
        ...(await routeTables(tagFilters(apply.ownershipTags(current.address)))),
        ...(await routeTables([{ Name: 'association.subnet-id', Values: [current.id] }])),
      ];
      for (const table of new Map(tables.map((entry) => [entry.RouteTableId, entry])).values()) {
        for (const association of table.Associations ?? []) {
          if (association.Main || !association.RouteTableAssociationId) continue;
          const associationId = association.RouteTableAssociationId;
          await ignoreNotFound(() => aws('DisassociateRouteTable', () => ec2.send(new DisassociateRouteTableCommand({ AssociationId: associationId }))));
        }
        // Only delete route tables this subnet owns, never a main or foreign one.
        if (ownedAddress(fromTagList(table.Tags))?.address === current.address && table.RouteTableId) {
          const tableId = table.RouteTableId;
          await ignoreNotFound(() => aws('DeleteRouteTable', () => ec2.send(new DeleteRouteTableCommand({ RouteTableId: tableId }))));
        }
      }
      await ignoreNotFound(() => aws('DeleteSubnet', () => ec2.send(new DeleteSubnetCommand({ SubnetId: current.id }))));
    },
  };
}
