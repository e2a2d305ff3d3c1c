/**
 * The wire formats of the AWS emulator: EC2 Query form bodies in, XML out.
 */

/** A decoded EC2 Query body: `Filter.1.Value.2=x` becomes `{ Filter: [ { Value: [ , 'x'] } ] }` (lists 0-based here). */
export type QueryValue = string | QueryValue[] | { [key: string]: QueryValue };
export type QueryObject = { [key: string]: QueryValue };

export function decodeQuery(body: string): QueryObject {
  const root: QueryObject = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const segments = key.split('.');
    let node: QueryObject | QueryValue[] = root;
    segments.forEach((segment, index) => {
      const last = index === segments.length - 1;
      const next = segments[index + 1];
      const slot: string | number = /^\d+$/.test(segment) ? Number(segment) - 1 : segment;
      const container = node as Record<string | number, QueryValue>;
      if (last) {
        container[slot] = value;
        return;
      }
      if (container[slot] === undefined || typeof container[slot] === 'string') container[slot] = next !== undefined && /^\d+$/.test(next) ? [] : {};
      node = container[slot] as QueryObject | QueryValue[];
    });
  }
  return root;
}

/** Typed readers over a decoded body. */
export class QueryReader {
  constructor(readonly data: QueryObject) {}
  string(key: string): string | undefined {
    const value = this.data[key];
    return typeof value === 'string' ? value : undefined;
  }
  number(key: string): number | undefined {
    const value = this.string(key);
    return value === undefined ? undefined : Number(value);
  }
  /** `InstanceId.1=a&InstanceId.2=b` -> ['a', 'b']. */
  strings(key: string): string[] {
    const value = this.data[key];
    return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : [];
  }
  objects(key: string): QueryReader[] {
    const value = this.data[key];
    return Array.isArray(value) ? value.filter((entry): entry is QueryObject => typeof entry === 'object' && !Array.isArray(entry)).map((entry) => new QueryReader(entry)) : [];
  }
  object(key: string): QueryReader | undefined {
    const value = this.data[key];
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? new QueryReader(value) : undefined;
  }
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (character) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[character] ?? character);
}

/**
 * A value to XML, EC2 style: objects become child elements, arrays become `<item>` lists,
 * undefined is left out. `named(items, 'ResourceRecordSet')` gives Route 53's named list items.
 */
export type XmlValue = string | number | boolean | undefined | null | XmlValue[] | NamedList | { [key: string]: XmlValue };
export class NamedList {
  constructor(
    readonly itemName: string,
    readonly items: XmlValue[],
  ) {}
}
export const named = (itemName: string, items: XmlValue[]) => new NamedList(itemName, items);

export function toXml(value: XmlValue): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'object') return escapeXml(String(value));
  if (value instanceof NamedList) return value.items.map((item) => `<${value.itemName}>${toXml(item)}</${value.itemName}>`).join('');
  if (Array.isArray(value)) return value.map((item) => `<item>${toXml(item)}</item>`).join('');
  return Object.entries(value)
    .filter(([, child]) => child !== undefined)
    .map(([key, child]) => `<${key}>${toXml(child)}</${key}>`)
    .join('');
}

/** `*` and `?` wildcards, as EC2 filters take them. */
export function wildcardMatches(pattern: string, value: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(value);
}
