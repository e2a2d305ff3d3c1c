/** Small helpers shared by the EC2 services: tags, filters, pagination, ownership. */
import type { Filter, Tag, TagSpecification, _InstanceType, ResourceType } from '@aws-sdk/client-ec2';
import { OWNERSHIP_TAG_ENVIRONMENT, OWNERSHIP_TAG_RESOURCE, parseAddress, type ResourceAddress } from '@armada/core';
import { aws } from './errors.js';

export type Tags = Record<string, string>;

export function toTagList(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function fromTagList(tags: Tag[] | undefined): Tags {
  return Object.fromEntries((tags ?? []).flatMap((tag) => (tag.Key ? [[tag.Key, tag.Value ?? '']] : [])));
}

export function tagSpecification(resourceType: ResourceType, tags: Tags): TagSpecification[] {
  return [{ ResourceType: resourceType, Tags: toTagList(tags) }];
}

/** Tags Armada keeps for itself (ownership, role, digests): never shown as user tags. */
export function userTags(tags: Tags): Tags {
  return Object.fromEntries(Object.entries(tags).filter(([key]) => !key.startsWith('armada:') && !key.startsWith('aws:')));
}

export function tagFilters(tags: Tags): Filter[] {
  return Object.entries(tags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] }));
}

export function environmentFilter(environment: string): Filter[] {
  return tagFilters({ [OWNERSHIP_TAG_ENVIRONMENT]: environment });
}

/** The address and logical name an owned resource carries in its tags. */
export function ownedAddress(tags: Tags): { address: ResourceAddress; name: string } | undefined {
  const address = tags[OWNERSHIP_TAG_RESOURCE];
  if (!address) return undefined;
  try {
    return { address: address as ResourceAddress, name: parseAddress(address).name };
  } catch {
    return undefined;
  }
}

/** Every item of every page of an SDK paginator, errors mapped. */
export async function collect<Page, Item>(context: string, pages: AsyncIterable<Page>, pick: (page: Page) => Item[] | undefined): Promise<Item[]> {
  const items: Item[] = [];
  await aws(context, async () => {
    for await (const page of pages) items.push(...(pick(page) ?? []));
  });
  return items;
}

export type InstanceType = _InstanceType;
