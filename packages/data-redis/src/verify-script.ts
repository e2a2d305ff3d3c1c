/**
 * The batch digest behind verify's fast path: one script per batch and side hashes, on the server,
 * every key's type, expiry and (for strings and small collections) value into one SHA-1, and
 * answers three small values instead of thousands of elements. Equal digests on both sides prove
 * the batch equal; a difference sends the batch to the exact key-by-key comparison, which names
 * the keys. So the digest only has to be sound (equal only for equal data), never complete: what
 * it cannot cover cheaply (long strings, large collections, streams, module types) it lists as
 * `special`, and those keys go the exact way too.
 *
 * Why this is faster: the per-key replies (TYPE, expiry, value prefixes, digests) were most of
 * the time in both Redis (building them) and this process (decoding them, and the GC after).
 */

/** Elements up to which a collection is read and digested in the script (more: `special`). */
export const SCRIPT_COLLECTION = 128;
/** Strings shorter than this are digested in the script (longer: `special`; GETRANGE bounds what is read). */
export const SCRIPT_STRING = 4096;

/**
 * ARGV[1]: the batch's keys, each a 4-byte big-endian length and its bytes (one argument instead
 * of a thousand: cheaper to build here and for Redis to read). ARGV[2]: the expiry bucket width.
 * Returns { keys present, SHA-1 hex of the batch, 1-based indexes of the special keys joined by "," }.
 *
 * Per key the digest takes: the type ('none' when absent: TYPE, like SCAN, never sees an expired
 * key); the absolute expiry (PEXPIRETIME) divided by the bucket width, so that two expiries in one
 * bucket are within the tolerance (a scan copy sets TTLs a few ms late); the value, each part
 * length-prefixed so that no two values frame alike. Hashes and sets come in an encoding- and
 * server-dependent order, so their elements are sorted first; lists and sorted sets (by score,
 * then member) have one order. Key names are not hashed: both sides digest the same list.
 */
export const BATCH_DIGEST_SCRIPT = `
local blob, width = ARGV[1], tonumber(ARGV[2])
local keys, at = {}, 1
while at <= #blob do
  local key
  key, at = struct.unpack('>I4c0', blob, at)
  keys[#keys + 1] = key
end
local lengths = { hash = 'HLEN', list = 'LLEN', set = 'SCARD', zset = 'ZCARD' }
local parts, n, present, special = {}, 0, 0, {}
local function put(value)
  parts[n + 1] = #value
  parts[n + 2] = ':'
  parts[n + 3] = value
  n = n + 3
end
for i = 1, #keys do
  local key = keys[i]
  local kind = redis.call('TYPE', key)['ok']
  n = n + 1
  parts[n] = kind
  if kind ~= 'none' then
    present = present + 1
    local expiry = redis.call('PEXPIRETIME', key)
    if expiry >= 0 then expiry = math.floor(expiry / width) end
    parts[n + 1] = ' '
    parts[n + 2] = string.format('%.0f', expiry)
    parts[n + 3] = ' '
    n = n + 3
    if kind == 'string' then
      local value = redis.call('GETRANGE', key, 0, ${SCRIPT_STRING - 1})
      if #value < ${SCRIPT_STRING} then put(value) else
        special[#special + 1] = i
        n = n + 1
        parts[n] = '*'
      end
    elseif lengths[kind] and redis.call(lengths[kind], key) <= ${SCRIPT_COLLECTION} then
      if kind == 'list' then
        for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do put(item) end
      elseif kind == 'zset' then
        for _, item in ipairs(redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')) do put(item) end
      else
        local items = redis.call(kind == 'hash' and 'HGETALL' or 'SMEMBERS', key)
        local elements = items
        if kind == 'hash' then
          elements = {}
          for j = 1, #items, 2 do elements[#elements + 1] = #items[j] .. ':' .. items[j] .. items[j + 1] end
        end
        table.sort(elements)
        for _, element in ipairs(elements) do put(element) end
      end
    else
      special[#special + 1] = i
      n = n + 1
      parts[n] = '*'
    end
  end
  n = n + 1
  parts[n] = '\\n'
end
return { present, redis.sha1hex(table.concat(parts)), table.concat(special, ',') }
`;

/** The keys as ARGV[1] of the script: each a 4-byte big-endian length, then its bytes. */
export function packKeys(keys: Buffer[]): Buffer {
  let size = 0;
  for (const key of keys) size += 4 + key.length;
  const packed = Buffer.allocUnsafe(size);
  let at = 0;
  for (const key of keys) {
    packed.writeUInt32BE(key.length, at);
    at += 4;
    at += key.copy(packed, at);
  }
  return packed;
}
