/**
 * DNS cutover, last of a migration: lower the TTL of the records to move ahead of time, wait out
 * the old TTL so resolvers forget the long-lived answers, switch the records to the target's
 * addresses, and check them through the provider's API. A rollback puts back the records as they
 * were before anything was changed.
 */
import { NotFoundError, ValidationError } from '../errors.js';
import { sleep } from '../execute/retry.js';
import type { DnsService } from '../provider.js';
import type { DnsRecordProperties } from '../resources.js';

export interface RecordSwitch {
  name: string;
  type: 'A' | 'AAAA' | 'CNAME';
  /** The values after cutover: the target's addresses. */
  to: string[];
}

export interface DnsCutoverOptions {
  zone: string;
  records: RecordSwitch[];
  /** The TTL during and after the move (default 60 s). */
  lowTtl?: number;
  signal?: AbortSignal;
  /** How to wait out the old TTL (tests pass a fake); default: really wait. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
  onProgress?: (message: string) => void;
}

/** What the records were before the cutover touched them: what a rollback restores. */
export interface DnsSnapshot {
  zone: string;
  records: DnsRecordProperties[];
  /** The longest TTL lowered: how long resolvers may still hold the old answers. */
  longestTtl: number;
}

export interface DnsCutoverReport {
  snapshot: DnsSnapshot;
  switched: DnsRecordProperties[];
  waitedMs: number;
}

const same = (a: readonly string[], b: readonly string[]) => [...a].sort().join('\n') === [...b].sort().join('\n');

/** Step 1, ahead of time: lower the TTLs, keeping the records as they were. */
export async function lowerDnsTtl(dns: DnsService, options: DnsCutoverOptions): Promise<DnsSnapshot> {
  const lowTtl = options.lowTtl ?? 60;
  const existing = await dns.listRecords(options.zone, options.signal ? { signal: options.signal } : {});
  const records: DnsRecordProperties[] = [];
  const missing: string[] = [];
  for (const change of options.records) {
    const record = existing.find((entry) => entry.name === change.name && entry.type === change.type);
    if (!record) missing.push(`${change.name} ${change.type}`);
    else records.push(record);
  }
  if (missing.length > 0) {
    throw new ValidationError(`DNS records to move are not in ${options.zone}.`, {
      issues: missing.map((record) => ({ path: `${options.zone}: ${record}`, message: 'no such record', fix: 'check the record name and type, or create it before the cutover' })),
    });
  }
  for (const record of records) {
    if (record.ttl > lowTtl) {
      await dns.upsertRecord({ ...record, ttl: lowTtl }, options.signal ? { signal: options.signal } : {});
      options.onProgress?.(`lowered the TTL of ${record.name} ${record.type} from ${record.ttl} s to ${lowTtl} s`);
    }
  }
  return { zone: options.zone, records, longestTtl: Math.max(0, ...records.map((record) => record.ttl)) };
}

/** Steps 2 and 3: wait out the old TTL, switch the records, check them through the API. */
export async function switchDns(dns: DnsService, snapshot: DnsSnapshot, options: DnsCutoverOptions): Promise<DnsCutoverReport> {
  const lowTtl = options.lowTtl ?? 60;
  const wait = options.wait ?? sleep;
  const waitedMs = snapshot.longestTtl > lowTtl ? snapshot.longestTtl * 1000 : 0;
  if (waitedMs > 0) {
    options.onProgress?.(`waiting ${snapshot.longestTtl} s for resolvers to forget the old answers`);
    await wait(waitedMs, options.signal);
  }
  const switched: DnsRecordProperties[] = [];
  for (const change of options.records) {
    const record: DnsRecordProperties = { zone: options.zone, name: change.name, type: change.type, ttl: lowTtl, values: change.to };
    await dns.upsertRecord(record, options.signal ? { signal: options.signal } : {});
    switched.push(record);
    options.onProgress?.(`switched ${change.name} ${change.type} to ${change.to.join(', ')}`);
  }
  await checkDns(dns, options.zone, switched, options.signal);
  return { snapshot, switched, waitedMs };
}

/** Reads the records back through the provider's API and insists they say what was asked. */
export async function checkDns(dns: DnsService, zone: string, expected: DnsRecordProperties[], signal?: AbortSignal): Promise<void> {
  const live = await dns.listRecords(zone, signal ? { signal } : {});
  for (const record of expected) {
    const found = live.find((entry) => entry.name === record.name && entry.type === record.type);
    if (!found) throw new NotFoundError(`After the cutover, ${record.name} ${record.type} is missing from ${zone}.`);
    if (!same(found.values, record.values) || found.ttl !== record.ttl) {
      throw new ValidationError(`After the cutover, ${record.name} ${record.type} in ${zone} says ${found.values.join(', ')} (TTL ${found.ttl}), not ${record.values.join(', ')} (TTL ${record.ttl}).`);
    }
  }
}

/** Rollback: the records exactly as they were before the TTLs were lowered. */
export async function rollbackDns(dns: DnsService, snapshot: DnsSnapshot, options: { signal?: AbortSignal } = {}): Promise<void> {
  for (const record of snapshot.records) await dns.upsertRecord(record, options.signal ? { signal: options.signal } : {});
  await checkDns(dns, snapshot.zone, snapshot.records, options.signal);
}
