/** Keys too large to DUMP at once, copied with their type's own commands, piece by piece. */
import { ArmadaError } from '@armada/core';
import type { ChainableCommander, Redis } from 'ioredis';

/** Elements read and written per command (entries per XRANGE page, XCLAIMs per pipeline). */
const PIECES = 1000;

/**
 * Copies one key with its type's commands, piece by piece (for keys too large to DUMP at once):
 * the bytes copied, or -1 if the key is gone (deleted, or expired before or during the copy).
 *
 * The expiry is the source's absolute one (PEXPIRETIME), read before the first piece, and set with
 * PEXPIREAT: a relative TTL set after the pieces would add the copy's duration to it. It is set
 * after the first piece (so a copy killed midway leaves a key that still expires) and again after
 * the last: a key whose expiry passes during the copy is recreated without TTL by the later pieces,
 * and that second PEXPIREAT, now in the past, deletes it.
 */
export async function copyInPieces(source: Redis, target: Redis, key: Buffer): Promise<number> {
  const expireAt = await absoluteExpiry(source, key);
  if (expireAt === -2) return -1; // gone already
  const type = await source.type(key);
  let bytes = 0;
  await target.del(key);
  let expirySet = false;
  const setExpiry = async () => {
    if (expireAt < 0 || expirySet) return;
    expirySet = true;
    await target.pexpireat(key, expireAt);
  };
  if (type === 'string') {
    const length = await source.strlen(key);
    for (let offset = 0; offset < length; offset += 1 << 20) {
      const chunk = await source.getrangeBuffer(key, offset, Math.min(length, offset + (1 << 20)) - 1);
      await target.setrange(key, offset, chunk);
      await setExpiry();
      bytes += chunk.length;
    }
  } else if (type === 'hash' || type === 'set' || type === 'zset') {
    let cursor = '0';
    do {
      const [next, items] =
        type === 'hash' ? await source.hscanBuffer(key, cursor, 'COUNT', PIECES) : type === 'set' ? await source.sscanBuffer(key, cursor, 'COUNT', PIECES) : await source.zscanBuffer(key, cursor, 'COUNT', PIECES);
      cursor = String(next);
      if (items.length === 0) continue;
      bytes += items.reduce((sum, item) => sum + item.length, 0);
      if (type === 'hash') await target.hset(key, ...items);
      else if (type === 'set') await target.sadd(key, ...items);
      else {
        // ZSCAN gives member, score pairs; ZADD takes score, member.
        const pairs: Buffer[] = [];
        for (let index = 0; index < items.length; index += 2) pairs.push(items[index + 1] as Buffer, items[index] as Buffer);
        await target.zadd(key, ...(pairs as unknown as [number, Buffer]));
      }
      await setExpiry();
    } while (cursor !== '0');
  } else if (type === 'list') {
    const length = await source.llen(key);
    for (let start = 0; start < length; start += PIECES) {
      const items = await source.lrangeBuffer(key, start, start + PIECES - 1);
      bytes += items.reduce((sum, item) => sum + item.length, 0);
      if (items.length > 0) await target.rpush(key, ...items);
      await setExpiry();
    }
  } else if (type === 'stream') {
    bytes = await copyStreamInPieces(source, target, key, { afterFirstPiece: setExpiry });
  } else if (type === 'none') {
    return -1; // expired or deleted meanwhile
  } else {
    throw new ArmadaError('Unsupported', `Key ${key.toString()} has type ${type}, which the piecewise copy does not handle.`);
  }
  if (expireAt >= 0) {
    expirySet = false;
    await setExpiry();
    // An expiry that passed during the copy: PEXPIREAT in the past deleted the key on the target.
    if ((await target.exists(key)) === 0) return -1;
  }
  return bytes;
}

/** The source's absolute expiry in Unix ms: -1 none, -2 no such key. PEXPIRETIME (Redis 7), else TIME + PTTL. */
async function absoluteExpiry(source: Redis, key: Buffer): Promise<number> {
  try {
    return Number(await source.call('PEXPIRETIME', key));
  } catch (error) {
    if (!/unknown command/i.test((error as Error).message)) throw error;
  }
  // Before Redis 7: the server's clock and the TTL read together, so the sum is the server's expiry.
  const [time, ttl] = ((await source.multi().time().pttl(key).exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  }) as [[string, string], number];
  return ttl < 0 ? ttl : Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) + ttl;
}

// ---------------------------------------------------------------------------------------------
// Streams, rebuilt the way Redis's own AOF rewrite does (aof.c rewriteStreamObject): the entries
// with their ids, XSETID (last id, entries-added, max-deleted-entry-id), each group with its
// last-delivered id and entries-read, its consumers, and its pending entries by XCLAIM ... FORCE
// with their delivery time and count.
//
// Unlike the AOF, pending entries whose message was deleted (XDEL, XTRIM) are kept: on Redis 7.0
// XCLAIM ... FORCE of an id the stream does not hold claims nothing (checked on 7.0.15), so such
// an id is added as a placeholder entry, claimed, and deleted again: XTRIM for those before the
// first real entry, XDEL for the others. Neither moves the facts XSETID set (XTRIM does not touch
// max-deleted-entry-id; XDEL raises it only above its value, and a deleted id is never above the
// source's), so the stream ends as on the source.
// ---------------------------------------------------------------------------------------------

/** Test hooks: `exactPendingBytes` bounds the XINFO STREAM FULL reply read for exact delivery times. */
export interface StreamCopyOptions {
  /** Called once the target stream exists (the caller sets the key's expiry there). */
  afterFirstPiece?: () => Promise<void>;
  /**
   * XINFO STREAM FULL COUNT n is the only reply with each pending entry's delivery time, but it
   * has no cursor and returns n entries too. It is used when n (the largest group's pending count)
   * times the size of an entry stays under this many bytes (default 16 MiB); larger PELs are
   * paged with XPENDING, whose idle times give the delivery time to the millisecond.
   */
  exactPendingBytes?: number;
}

interface Pending {
  id: string;
  consumer: Buffer;
  deliveryTime: number;
  deliveryCount: number;
}
interface StreamGroup {
  name: Buffer;
  lastDeliveredId: string;
  /** -1 where XINFO says nil (a group whose entries-read Redis does not know); undefined before Redis 7. */
  entriesRead: number | undefined;
  pelCount: number;
  consumers: Array<{ name: Buffer; pelCount: number }>;
  pending: Pending[];
}
interface StreamFacts {
  length: number;
  lastId: string;
  /** Both undefined on a source before Redis 7, which has neither (the target then counts its own). */
  maxDeletedId: string | undefined;
  entriesAdded: number | undefined;
  firstEntryBytes: number;
  groups: StreamGroup[];
}

/** A stream rebuilt on the target from the live source: the bytes of the entries copied. */
export async function copyStreamInPieces(source: Redis, target: Redis, key: Buffer, options: StreamCopyOptions = {}): Promise<number> {
  // All facts before the first entry, and only entries up to the last id they name: entries added
  // meanwhile are left out, so XSETID's last id is at least the top entry on the target.
  const facts = await readPendingEntries(source, key, await readStreamFacts(source, key, 1), options.exactPendingBytes ?? 16 * 1024 * 1024);
  const pendingIds = [...new Set(facts.groups.flatMap((group) => group.pending.map((entry) => entry.id)))].sort(compareIds);
  const placeholders: string[] = [];
  let firstLive: string | undefined;
  let live = 0;
  let bytes = 0;
  let next = 0; // into pendingIds
  let created = false;
  const markCreated = async () => {
    if (created) return;
    created = true;
    await options.afterFirstPiece?.();
  };
  let start = '-';
  for (;;) {
    const entries = (await source.xrangeBuffer(key, start, facts.lastId, 'COUNT', PIECES)) as Array<[Buffer, Buffer[]]>;
    const write = target.pipeline();
    for (const [rawId, fields] of entries) {
      const id = rawId.toString();
      // Pending ids the stream no longer holds, below this entry: placeholders, in id order.
      for (; next < pendingIds.length && compareIds(pendingIds[next] as string, id) < 0; next++) {
        write.call('XADD', key, pendingIds[next] as string, 'x', 'y');
        placeholders.push(pendingIds[next] as string);
      }
      if (next < pendingIds.length && pendingIds[next] === id) next++;
      write.call('XADD', key, id, ...fields);
      firstLive ??= id;
      live++;
      bytes += rawId.length + fields.reduce((sum, field) => sum + field.length, 0);
    }
    if (entries.length > 0) {
      await execute(write, 'XADD');
      await markCreated();
    }
    if (entries.length < PIECES) break;
    start = `(${(entries.at(-1) as [Buffer, Buffer[]])[0].toString()}`;
  }
  const setup = target.pipeline();
  for (; next < pendingIds.length; next++) {
    setup.call('XADD', key, pendingIds[next] as string, 'x', 'y');
    placeholders.push(pendingIds[next] as string);
  }
  // A stream with no entry at all: the AOF's trick, an entry trimmed at once (XSETID resets the rest).
  if (live === 0 && placeholders.length === 0) setup.call('XADD', key, 'MAXLEN', '0', '0-1', 'x', 'y');
  const counters = facts.entriesAdded === undefined || facts.maxDeletedId === undefined ? [] : ['ENTRIESADDED', String(facts.entriesAdded), 'MAXDELETEDID', facts.maxDeletedId];
  setup.call('XSETID', key, facts.lastId, ...counters);
  for (const group of facts.groups) {
    setup.callBuffer('XGROUP', 'CREATE', key, group.name, group.lastDeliveredId, ...(group.entriesRead === undefined ? [] : ['ENTRIESREAD', String(group.entriesRead)]));
    for (const consumer of group.consumers) setup.callBuffer('XGROUP', 'CREATECONSUMER', key, group.name, consumer.name);
  }
  await execute(setup, 'XSETID / XGROUP');
  await markCreated();

  // Each pending entry with its consumer, delivery time (TIME: absolute, as the AOF writes it) and count.
  for (const group of facts.groups) {
    for (let from = 0; from < group.pending.length; from += PIECES) {
      const page = group.pending.slice(from, from + PIECES);
      const claims = target.pipeline();
      for (const entry of page) {
        claims.callBuffer('XCLAIM', key, group.name, entry.consumer, '0', entry.id, 'TIME', String(entry.deliveryTime), 'RETRYCOUNT', String(entry.deliveryCount), 'FORCE', 'JUSTID');
      }
      const replies = await execute(claims, 'XCLAIM');
      replies.forEach((reply, index) => {
        const claimed = (reply as Buffer[]).map(String);
        const entry = page[index] as Pending;
        if (!claimed.includes(entry.id)) {
          throw new ArmadaError('Unknown', `Stream ${key.toString()}: XCLAIM FORCE did not recreate pending entry ${entry.id} of group ${group.name.toString()} on the target.`);
        }
      });
    }
  }

  // The placeholders go: XTRIM for those before the first real entry (all, if none), XDEL for the rest.
  const cleanup = target.pipeline();
  const head = placeholders.filter((id) => firstLive === undefined || compareIds(id, firstLive) < 0);
  const inner = placeholders.filter((id) => firstLive !== undefined && compareIds(id, firstLive) > 0);
  if (head.length > 0) cleanup.call('XTRIM', key, ...(firstLive === undefined ? ['MAXLEN', '=', '0'] : ['MINID', '=', firstLive]));
  for (let from = 0; from < inner.length; from += PIECES) cleanup.call('XDEL', key, ...inner.slice(from, from + PIECES));
  if (placeholders.length > 0) await execute(cleanup, 'XTRIM / XDEL');

  // Ends exact or fails: the facts on the target must be the source's (as read before the entries).
  const copied = await readStreamFacts(target, key, 1);
  const expected: Array<[string, unknown, unknown]> = [
    ['length', live, copied.length],
    ['last-generated-id', facts.lastId, copied.lastId],
    ['max-deleted-entry-id', facts.maxDeletedId, copied.maxDeletedId],
    ['entries-added', facts.entriesAdded, copied.entriesAdded],
    ['groups', facts.groups.length, copied.groups.length],
    ...facts.groups.map((group, index): [string, unknown, unknown] => [`pel-count of group ${group.name.toString()}`, group.pending.length, copied.groups[index]?.pelCount]),
  ];
  const wrong = expected.filter(([, want, got]) => want !== undefined && want !== got);
  if (wrong.length > 0) {
    throw new ArmadaError('Unknown', `Stream ${key.toString()} did not come out as on the source: ${wrong.map(([what, want, got]) => `${what} ${String(got)} on the target, ${String(want)} expected`).join('; ')}.`);
  }
  return bytes;
}

/** XINFO STREAM key FULL COUNT n (Redis 7.0 shape: groups with pending [id, consumer, delivery-time, count], consumers). */
async function readStreamFacts(client: Redis, key: Buffer, count: number): Promise<StreamFacts> {
  const info = fieldsOf(await client.callBuffer('XINFO', 'STREAM', key, 'FULL', 'COUNT', String(count)));
  const entries = info.get('entries') as Array<[Buffer, Buffer[]]>;
  const first = entries[0];
  return {
    length: Number(info.get('length')),
    lastId: String(info.get('last-generated-id')),
    maxDeletedId: info.has('max-deleted-entry-id') ? String(info.get('max-deleted-entry-id')) : undefined,
    entriesAdded: info.has('entries-added') ? Number(info.get('entries-added')) : undefined,
    firstEntryBytes: first ? first[0].length + first[1].reduce((sum, field) => sum + field.length, 0) : 0,
    groups: (info.get('groups') as unknown[]).map((reply) => {
      const group = fieldsOf(reply);
      const entriesRead = group.get('entries-read');
      return {
        name: group.get('name') as Buffer,
        lastDeliveredId: String(group.get('last-delivered-id')),
        entriesRead: !group.has('entries-read') ? undefined : entriesRead === null ? -1 : Number(entriesRead),
        pelCount: Number(group.get('pel-count')),
        consumers: (group.get('consumers') as unknown[]).map((consumer) => {
          const fields = fieldsOf(consumer);
          return { name: fields.get('name') as Buffer, pelCount: Number(fields.get('pel-count')) };
        }),
        pending: (group.get('pending') as Array<[Buffer, Buffer, number, number]>).map(([id, consumer, deliveryTime, deliveryCount]) => ({
          id: id.toString(),
          consumer,
          deliveryTime: Number(deliveryTime),
          deliveryCount: Number(deliveryCount),
        })),
      };
    }),
  };
}

/** Every group's whole PEL: from XINFO FULL when that reply stays small, else XPENDING pages. */
async function readPendingEntries(source: Redis, key: Buffer, facts: StreamFacts, exactPendingBytes: number): Promise<StreamFacts> {
  const complete = (read: StreamFacts) => read.groups.every((group) => group.pending.length === group.pelCount);
  if (complete(facts)) return facts;
  const largest = Math.max(...facts.groups.map((group) => group.pelCount));
  if (largest * Math.max(64, facts.firstEntryBytes) <= exactPendingBytes) {
    const full = await readStreamFacts(source, key, largest);
    if (complete(full)) return full;
    facts = full; // the PEL grew meanwhile: page the rest
  }
  for (const group of facts.groups) {
    if (group.pending.length === group.pelCount) continue;
    group.pending = [];
    let start = '-';
    for (;;) {
      // XPENDING gives idle times, not delivery times: TIME in the same MULTI turns them back.
      const replies = (await source.multi().time().callBuffer('XPENDING', key, group.name, start, '+', String(PIECES)).exec()) ?? [];
      const [time, rows] = replies.map(([error, value]) => {
        if (error) throw error;
        return value;
      }) as [[string, string], Array<[Buffer, Buffer, number, number]>];
      const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      for (const [id, consumer, idle, deliveryCount] of rows) group.pending.push({ id: id.toString(), consumer, deliveryTime: now - Number(idle), deliveryCount: Number(deliveryCount) });
      if (rows.length < PIECES) break;
      start = `(${(rows.at(-1) as [Buffer, ...unknown[]])[0].toString()}`;
    }
    group.pelCount = group.pending.length;
  }
  return facts;
}

/** A RESP2 map (a flat array of names and values) by name. */
function fieldsOf(reply: unknown): Map<string, unknown> {
  const flat = reply as unknown[];
  const fields = new Map<string, unknown>();
  for (let index = 0; index + 1 < flat.length; index += 2) fields.set(String(flat[index]), flat[index + 1]);
  return fields;
}

/** Stream ids (`ms-seq`, both 64-bit) in numeric order. */
function compareIds(left: string, right: string): number {
  const [leftMs, leftSeq] = left.split('-').map(BigInt) as [bigint, bigint];
  const [rightMs, rightSeq] = right.split('-').map(BigInt) as [bigint, bigint];
  if (leftMs !== rightMs) return leftMs < rightMs ? -1 : 1;
  return leftSeq === rightSeq ? 0 : leftSeq < rightSeq ? -1 : 1;
}

/** Runs a pipeline on the target; the first error fails the copy, naming the commands. */
async function execute(pipeline: ChainableCommander, what: string): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([error]) => error);
  if (failed?.[0]) throw new ArmadaError('Unknown', `${what} failed on the target: ${failed[0].message}`, { cause: failed[0] });
  return results.map(([, value]) => value);
}
