/**
 * The Redis mover's preflight check (DataMoverV1.check): what a copy would refuse before its first
 * write, found by reading only. Both servers reachable with their credentials; the source login may
 * read keys (SCAN, DUMP); the target login may write them (RESTORE); source and target are not the
 * same server (same run_id: a copy onto itself); the target's databases are empty unless
 * `replaceExisting`; the data set fits the target's maxmemory (capacity.ts).
 */
import { issuesOfError, type CheckOptions, type DataEndpoint, type ValidationIssue } from '@armada/core';
import type { Redis } from 'ioredis';
import { checkCapacity } from './capacity.js';
import { keyspace, open, where } from './connection.js';

// Only a refused command counts: "no permissions to access a key" is about the probe's key name,
// which an ACL key pattern may exclude though the copy's own keys are allowed.
const refused = (error: unknown) => /NOPERM.*permissions to run/i.test((error as Error).message ?? '');

/** Runs a command only to learn whether the login may: any answer but NOPERM means it may. */
async function may(client: Redis, command: string, args: string[]): Promise<boolean> {
  try {
    await client.call(command, ...args);
    return true;
  } catch (error) {
    return !refused(error);
  }
}

/**
 * Commands an ACL user may not run, asked with ACL DRYRUN (Redis 7.2+), which runs nothing. A
 * server that cannot answer (older, or the login may not ask) says nothing: the command is then
 * tried when it is needed.
 */
async function deniedByAcl(client: Redis, endpoint: DataEndpoint, side: 'source' | 'target', commands: string[][]): Promise<ValidationIssue[]> {
  const user = endpoint.user ?? 'default';
  const denied: string[] = [];
  for (const command of commands) {
    try {
      const answer = String(await client.call('ACL', 'DRYRUN', user, ...command));
      if (answer !== 'OK') denied.push(command[0] as string);
    } catch {
      return [];
    }
  }
  return denied.length === 0 ? [] : [{ path: `${side}.user`, message: `the ${side} login ${user} may not run ${denied.join(', ')}, which replication needs`, fix: `grant it ${denied.map((name) => `+${name.toLowerCase()}`).join(' ')} (ACL SETUSER ${user} ...)` }];
}

async function runId(client: Redis): Promise<string | undefined> {
  return (await client.info('server')).match(/^run_id:(\w+)/m)?.[1];
}

export async function checkRedis(sourceEndpoint: DataEndpoint, targetEndpoint: DataEndpoint | undefined, options: CheckOptions = {}): Promise<ValidationIssue[]> {
  const issues: ValidationIssue[] = [];
  const connect = (endpoint: DataEndpoint, role: 'source' | 'target') =>
    open(endpoint, role).catch((error: unknown) => {
      issues.push(...issuesOfError(error, role));
      return undefined;
    });
  const source = await connect(sourceEndpoint, 'source');
  const target = targetEndpoint ? await connect(targetEndpoint, 'target') : undefined;
  try {
    // A key no one has: the answer (nil, or an error about the payload) says only whether the login may.
    const probe = `armada:preflight:${process.pid}:${Date.now()}`;
    if (source && !((await may(source, 'SCAN', ['0', 'COUNT', '1'])) && (await may(source, 'DUMP', [probe])))) {
      issues.push({ path: 'source.user', message: `the source login at ${where(sourceEndpoint)} may not read keys (SCAN, DUMP)`, fix: 'grant it +@read +@keyspace (ACL SETUSER ...), or use a login that has them' });
    }
    if (options.mode === 'replicate') {
      // The target syncs from the source (PSYNC) and the cutover pauses the source's writes.
      if (source) issues.push(...(await deniedByAcl(source, sourceEndpoint, 'source', [['PSYNC', '?', '-1'], ['CLIENT', 'PAUSE', '1', 'WRITE']])));
      if (target && targetEndpoint) issues.push(...(await deniedByAcl(target, targetEndpoint, 'target', [['REPLICAOF', 'NO', 'ONE'], ['CONFIG', 'SET', 'masterauth', 'x']])));
    }
    if (!source || !target || !targetEndpoint) return issues;
    const [sourceId, targetId] = await Promise.all([runId(source), runId(target)]);
    if (sourceId && sourceId === targetId) {
      issues.push({ path: 'target', message: `the target ${where(targetEndpoint)} is the source server itself (run_id ${sourceId}): the copy would overwrite what it reads`, fix: 'name the new server as the target' });
      return issues;
    }
    if (!(await may(target, 'RESTORE', [probe, '0', 'not-a-payload']))) {
      issues.push({ path: 'target.user', message: `the target login at ${where(targetEndpoint)} may not write keys (RESTORE)`, fix: 'grant it +@write +@keyspace +restore, or use a login that has them' });
    }
    const present = await keyspace(source);
    const databases = (sourceEndpoint.databases?.map(Number) ?? [...present.keys()]).sort((a, b) => a - b);
    const databaseMap = (options.options?.databaseMap ?? {}) as Record<number, number>;
    const mapped = (db: number) => databaseMap[db] ?? db;
    const held = await keyspace(target);
    if (!options.replaceExisting) {
      for (const db of databases) {
        const keys = held.get(mapped(db)) ?? 0;
        if (keys > 0) issues.push({ path: `target.db${mapped(db)}`, message: `database ${mapped(db)} of the target ${where(targetEndpoint)} holds ${keys.toLocaleString('en-US')} keys`, fix: 'empty it, choose another target, or set replaceExisting: true' });
      }
    }
    await checkCapacity(source, target, { databases, replaceExisting: options.replaceExisting ?? false, mapped }).catch((error: unknown) => issues.push(...issuesOfError(error, 'target')));
    return issues;
  } finally {
    source?.disconnect();
    target?.disconnect();
  }
}
