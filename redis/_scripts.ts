/**
 * The Lua scripts that {@linkcode RedisStore} runs on the server, one per operation that
 * changes a store, so that each is applied whole or not at all, whatever other clients do.
 *
 * Keys of a store called `N`, all in the hash slot `{N}`, so the store runs on Redis Cluster (a
 * script declares the meta hash, which routes it to that slot, and reaches the others, entries
 * it evicts included, by the same prefix):
 *
 * | key                     | type   | holds                                                    |
 * | ----------------------- | ------ | -------------------------------------------------------- |
 * | `memalloc:{N}:e:<name>` | string | one entry: a 38-byte header ({@linkcode HEADER_BYTES}),  |
 * |                         |        | then the value's bytes as the codec encodes them         |
 * | `memalloc:{N}:order`    | zset   | name -> version: the write order                         |
 * | `memalloc:{N}:exp`      | zset   | name -> expiry time in ms, for entries with a TTL        |
 * | `memalloc:{N}:size`     | hash   | name -> bytes an entry with a TTL counts for             |
 * | `memalloc:{N}:meta`     | hash   | maxMemory, autoclean, created, bytes, version (= writes),|
 * |                         |        | evictions, expired, deletes, hits, misses                |
 *
 * The header, little-endian (`struct.pack('<BBI4dddd', ...)`): format (1), kind (the codec's),
 * value size (u32), created, written (ms since the epoch, the writer's clock), version, expires
 * (ms, the server's clock; 0: never). One string per entry: a read is one `GET`, a write one
 * `SET` (with `PXAT` for a TTL), and an entry costs the server about as much memory as the plain
 * `SET` of its value.
 *
 * A store's bytes are the sum over its entries of name and value bytes (UTF-8, raw or CBOR as
 * stored): what `maxMemory` bounds.
 *
 * Expiry: an entry with a TTL is written with `PXAT`, so the server itself stops serving it at
 * that instant. Its accounting lives outside its key, in keys that never expire: its size in
 * `size`, its expiry time in `exp`, its place in `order`. Expired entries are reaped from `exp`
 * (the sizes recorded in `size` subtracted from `bytes`): up to 64 by every 16th write, all of
 * them before anything is evicted, and in `clean` and `stats`; a write over a name whose key
 * the server has already expired subtracts the size recorded in `size`, not the (gone) key's.
 * An entry without a TTL has its size only in its own header, and nothing but these scripts
 * removes its key, so the common overwrite touches no `size` field. So `bytes` is always the
 * sum over `order` of each entry's recorded size, expired or not yet reaped; nothing depends on
 * the server telling us about expiry.
 *
 * Every change is published on `memalloc:{N}:changes` with the name (the empty message: every
 * name, after a purge), which is what `watch` listens to.
 *
 * Cost: an overwrite of an entry without a TTL is five server calls (`GETRANGE` of the header,
 * `HINCRBY` of the version, `SET`, `ZADD`, `PUBLISH`), one more when its size changes; the
 * server's clock (`TIME`) is read only for an expiry.
 *
 * @module
 */

/** Length of an entry's header, before its value's bytes. */
export const HEADER_BYTES = 38;
/** The header's format byte. */
export const HEADER_FORMAT = 1;

/**
 * Helpers every script starts with. KEYS[1] is the store's meta hash, the one key declared (it
 * puts the call on the store's hash slot); the other keys share its `memalloc:{N}:` prefix.
 * ARGV[1] and ARGV[2] are the store's maxMemory and autoclean (the settings the client read when
 * it connected, which also re-create a store whose server lost its data), ARGV[3] the client's
 * clock in ms (the entries' created and written times); the operation's own arguments start at
 * ARGV[4].
 */
const PRELUDE = `
local meta = KEYS[1]
local base = string.sub(meta, 1, -5)
local order, exp, sizes = base .. 'order', base .. 'exp', base .. 'size'
local prefix, channel = base .. 'e:', base .. 'changes'
local max = tonumber(ARGV[1])
local target = math.floor(max * tonumber(ARGV[2]))
local clock = tonumber(ARGV[3])
local function int(n) return string.format('%.0f', n) end
local server_now
-- The server's clock in ms, read once: what expiry is measured against.
local function now()
  if not server_now then
    local t = redis.call('TIME')
    server_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return server_now
end
-- An entry's header: nil when it has none, else {kind, size, created, written, version, expires}.
local function header(key)
  local h = redis.call('GETRANGE', key, 0, ${HEADER_BYTES - 1})
  if #h ~= ${HEADER_BYTES} then return nil end
  local _, kind, size, created, written, version, expires = struct.unpack('<BBI4dddd', h)
  return {kind, size, created, written, version, expires}
end
local bytes
local function add_bytes(delta)
  bytes = tonumber(redis.call('HINCRBY', meta, 'bytes', delta))
  return bytes
end
-- Drops an entry and its accounting; returns whether its key was still there. An entry with a
-- TTL has its size in the sizes hash (its own key may be gone); one without has it in its own
-- header, and only these scripts remove its key.
local function forget(name)
  local key = prefix .. name
  local size = redis.call('HGET', sizes, name)
  if size then
    redis.call('HDEL', sizes, name)
    redis.call('ZREM', exp, name)
    size = tonumber(size)
  else
    local h = header(key)
    size = h and h[2] + #name or 0
  end
  redis.call('ZREM', order, name)
  local existed = redis.call('DEL', key)
  if size ~= 0 or not bytes then add_bytes(-size) end
  return existed
end
-- Removes up to limit entries whose expiry time has passed.
local function reap(limit)
  local names = redis.call('ZRANGEBYSCORE', exp, '-inf', now(), 'LIMIT', 0, limit)
  for _, name in ipairs(names) do forget(name) end
  if #names > 0 then redis.call('HINCRBY', meta, 'expired', #names) end
  return #names
end
local function reap_all()
  local total = 0
  while true do
    local n = reap(512)
    total = total + n
    if n < 512 then return total end
  end
end
-- Evicts the oldest-written entries (never keep) until bytes <= target; returns the count.
local function evict(keep)
  if not bytes then add_bytes(0) end
  local n = 0
  while bytes > target do
    local oldest = redis.call('ZRANGE', order, 0, 0)[1]
    if not oldest or oldest == keep then break end
    forget(oldest)
    redis.call('PUBLISH', channel, oldest)
    n = n + 1
  end
  if n > 0 then redis.call('HINCRBY', meta, 'evictions', n) end
  return n
end
-- Writes a whole entry with this version; cur is its header (nil when it has none). Past
-- maxMemory, expired entries go first, then the oldest-written.
local function put(name, kind, data, ttl, cur, version)
  local key = prefix .. name
  local plain = cur and cur[6] == 0 -- a live entry without a TTL
  local old = 0
  local recorded = false
  if plain then
    old = cur[2] + #name
  else
    -- It has a TTL, or it expired before it was reaped, or it is new.
    local size = redis.call('HGET', sizes, name)
    if size then old, recorded = tonumber(size), true end
  end
  local size = #data + #name
  local expires = 0
  if ttl > 0 then expires = now() + ttl end
  local value = struct.pack('<BBI4dddd', ${HEADER_FORMAT}, kind, #data, cur and cur[3] or clock,
    clock, version, expires) .. data
  if ttl > 0 then
    redis.call('SET', key, value, 'PXAT', int(expires))
    redis.call('ZADD', exp, expires, name)
    redis.call('HSET', sizes, name, size)
  else
    redis.call('SET', key, value)
    if recorded then
      redis.call('ZREM', exp, name)
      redis.call('HDEL', sizes, name)
    end
  end
  redis.call('ZADD', order, version, name)
  redis.call('PUBLISH', channel, name)
  if size ~= old and add_bytes(size - old) > max and size > old then
    reap_all()
    evict(name)
  end
  if version % 16 == 0 then reap(64) end
end
`;

/**
 * Creates the store's settings unless they exist. Returns maxMemory, autoclean and created as
 * the store has them.
 */
export const INIT = `${PRELUDE}
if redis.call('HSETNX', meta, 'maxMemory', ARGV[1]) == 1 then
  redis.call('HSET', meta, 'autoclean', ARGV[2], 'created', int(now()))
end
return redis.call('HMGET', meta, 'maxMemory', 'autoclean', 'created')
`;

/**
 * ARGV (after the three common ones): name, kind, data, ttl (whole ms, 0: none), condition ('':
 * none, 'absent': only when there is no entry, else the version to write over). Returns
 * {1, version} when written, {0, 0} when the condition failed, {-1, size} when the value cannot
 * fit in the store at all.
 */
export const WRITE = `${PRELUDE}
local name, kind, data, ttl, cond = ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
local cur = header(prefix .. name)
if cond == 'absent' then
  if cur then return {0, 0} end
elseif cond ~= '' then
  if not cur or cur[5] ~= tonumber(cond) then return {0, 0} end
end
if #data + #name > max then return {-1, #data + #name} end
local version = redis.call('HINCRBY', meta, 'version', 1)
put(name, kind, data, ttl, cur, version)
return {1, version}
`;

/**
 * ARGV (after the three common ones): name, delta (float64 LE), initial (float64 LE), ttl of a
 * new entry. Returns {1, version, value as float64 LE}; {-2, kind} when the entry is not a
 * number; {-3, 0, result} when the result is not finite.
 */
export const INCREMENT = `${PRELUDE}
local name, ttl = ARGV[4], tonumber(ARGV[7])
local key = prefix .. name
local stored = redis.call('GET', key)
local cur
local value
if stored then
  local _, kind, size, created, written, version, expires = struct.unpack('<BBI4dddd', stored)
  cur = {kind, size, created, written, version, expires}
  if kind ~= 4 or size ~= 8 then return {-2, kind} end
  value = struct.unpack('<d', stored, ${HEADER_BYTES + 1})
else
  value = struct.unpack('<d', ARGV[6])
end
local result = value + struct.unpack('<d', ARGV[5])
local packed = struct.pack('<d', result)
if result ~= result or result == math.huge or result == -math.huge then return {-3, 0, packed} end
local version = redis.call('HINCRBY', meta, 'version', 1)
if cur then
  -- The entry keeps its creation time, size and expiry.
  redis.call('SET', key, struct.pack('<BBI4dddd', ${HEADER_FORMAT}, 4, 8, cur[3], clock, version,
    cur[6]) .. packed, 'KEEPTTL')
  redis.call('ZADD', order, version, name)
  redis.call('PUBLISH', channel, name)
  if version % 16 == 0 then reap(64) end
else
  put(name, 4, packed, ttl, cur, version)
end
return {1, version, packed}
`;

/**
 * ARGV (after the three common ones): name, condition ('' or a version). Returns 1 when
 * deleted, else 0.
 */
export const DELETE = `${PRELUDE}
local name, cond = ARGV[4], ARGV[5]
local cur = header(prefix .. name)
if not cur then
  -- Absent, or expired by the server and not reaped yet: settle its accounting.
  if redis.call('HEXISTS', sizes, name) == 1 then forget(name) end
  return 0
end
if cond ~= '' and cur[5] ~= tonumber(cond) then return 0 end
forget(name)
redis.call('HINCRBY', meta, 'deletes', 1)
redis.call('PUBLISH', channel, name)
return 1
`;

/** No arguments of its own. Removes expired entries, then evicts down to the watermark. */
export const CLEAN = `${PRELUDE}
return reap_all() + evict(false)
`;

/** No arguments of its own. Removes every entry; returns how many there were (live ones). */
export const PURGE = `${PRELUDE}
local removed = 0
while true do
  local names = redis.call('ZRANGE', order, 0, 511)
  if #names == 0 then break end
  for _, name in ipairs(names) do removed = removed + forget(name) end
end
redis.call('DEL', exp, sizes, order)
redis.call('HSET', meta, 'bytes', 0)
redis.call('PUBLISH', channel, '')
return removed
`;

/**
 * ARGV (after the three common ones): hits, misses (this client's, to add). Re-creates the
 * settings if the server lost them, reaps expired entries, then returns the meta hash as a flat
 * list followed by 'entries' and the entry count.
 */
export const STATS = `${PRELUDE}
if redis.call('HSETNX', meta, 'maxMemory', ARGV[1]) == 1 then
  redis.call('HSET', meta, 'autoclean', ARGV[2], 'created', int(now()))
end
reap_all()
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', meta, 'hits', ARGV[4]) end
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', meta, 'misses', ARGV[5]) end
local result = redis.call('HGETALL', meta)
table.insert(result, 'entries')
table.insert(result, redis.call('ZCARD', order))
return result
`;

/**
 * One chunk of a walk in write order. ARGV (after the three common ones): after (the last
 * version seen), count, name prefix, mode ('keys', 'list' or 'entries'). Returns {last version
 * looked at, then per live entry: its name, then for 'list' its header, for 'entries' its whole
 * stored string}.
 */
export const SCAN = `
local base = string.sub(KEYS[1], 1, -5)
local order, prefix = base .. 'order', base .. 'e:'
local after, count, want, mode = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local found = redis.call('ZRANGEBYSCORE', order, '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, count)
local result = {#found > 0 and found[#found] or after}
for i = 1, #found, 2 do
  local name = found[i]
  if want == '' or string.sub(name, 1, #want) == want then
    local key = prefix .. name
    if mode == 'keys' then
      if redis.call('EXISTS', key) == 1 then table.insert(result, name) end
    else
      local stored
      if mode == 'list' then
        stored = redis.call('GETRANGE', key, 0, ${HEADER_BYTES - 1})
      else
        stored = redis.call('GET', key)
      end
      if stored and #stored >= ${HEADER_BYTES} then
        table.insert(result, name)
        table.insert(result, stored)
      end
    end
  end
end
return result
`;
