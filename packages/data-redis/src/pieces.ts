/** Keys too large to DUMP at once, copied with their type's own commands, piece by piece. */
import { ArmadaError } from '@armada/core';
import type { Redis } from 'ioredis';

/** Copies one key with its type's commands, piece by piece (for keys too large to DUMP at once): the bytes copied, or -1 if the key is gone. */
export async function copyInPieces(source: Redis, target: Redis, key: Buffer, ttl: number): Promise<number> {
  const type = await source.type(key);
  const pieces = 1000;
  let bytes = 0;
  await target.del(key);
  if (type === 'string') {
    const length = await source.strlen(key);
    for (let offset = 0; offset < length; offset += 1 << 20) {
      const chunk = await source.getrangeBuffer(key, offset, Math.min(length, offset + (1 << 20)) - 1);
      await target.setrange(key, offset, chunk);
      bytes += chunk.length;
    }
  } else if (type === 'hash' || type === 'set' || type === 'zset') {
    let cursor = '0';
    do {
      const [next, items] =
        type === 'hash' ? await source.hscanBuffer(key, cursor, 'COUNT', pieces) : type === 'set' ? await source.sscanBuffer(key, cursor, 'COUNT', pieces) : await source.zscanBuffer(key, cursor, 'COUNT', pieces);
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
    } while (cursor !== '0');
  } else if (type === 'list') {
    const length = await source.llen(key);
    for (let start = 0; start < length; start += pieces) {
      const items = await source.lrangeBuffer(key, start, start + pieces - 1);
      bytes += items.reduce((sum, item) => sum + item.length, 0);
      if (items.length > 0) await target.rpush(key, ...items);
    }
  } else if (type === 'stream') {
    let start = '-';
    for (;;) {
      const entries = (await source.xrangeBuffer(key, start, '+', 'COUNT', pieces)) as Array<[Buffer, Buffer[]]>;
      for (const [id, fields] of entries) {
        await target.xadd(key, id, ...fields);
        bytes += fields.reduce((sum, field) => sum + field.length, 0);
      }
      if (entries.length < pieces) break;
      start = `(${(entries.at(-1) as [Buffer, Buffer[]])[0].toString()}`;
    }
  } else if (type === 'none') {
    return -1; // expired or deleted meanwhile
  } else {
    throw new ArmadaError('Unsupported', `Key ${key.toString()} has type ${type}, which the piecewise copy does not handle.`);
  }
  if (ttl > 0) await target.pexpire(key, ttl);
  return bytes;
}
