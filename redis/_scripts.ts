/**
 * The Lua scripts that {@linkcode RedisStore} runs on the server, one per operation that
 * changes a store, so that each is applied whole or not at all, whatever other clients do.
 *
 * Keys of a store called `N` (all in the hash slot `{N}`, so the store runs on Redis Cluster):
 *
 * | key                    | type   | holds                                                     |
 * | ---------------------- | ------ | --------------------------------------------------------- |
 * | `memalloc:{N}:e:<name>`| hash   | one entry: `d` value bytes, `k` kind, `s` size, `c`       |
 * |                        |        | created, `w` written, `v` version, `x` expires (0: never) |
 * | `memalloc:{N}:order`   | zset   | name -> version: the write order                          |
 * | `memalloc:{N}:exp`     | zset   | name -> expiry time in ms, for entries with a TTL         |
 * | `memalloc:{N}:size`    | hash   | name -> bytes the entry counts for (name + value)         |
 * | `memalloc:{N}:meta`    | hash   | maxMemory, autoclean, created, bytes, version, counters   |
 *
 * Expiry: an entry with a TTL gets `PEXPIREAT` on its hash, so the server itself stops serving
 * it at that instant (reads are plain `HMGET`s). Its accounting lives outside that hash: its
 * size in `size`, its place in `order` and `exp`, none of which expire. Every script first
 * reaps a few members of `exp` whose time has passed (all of them when room is needed, and in
 * `clean` and `stats`), subtracting their sizes from `bytes`; a write over a name whose hash
 * the server has already expired subtracts the size recorded in `size`, not the hash's. So the
 * byte counter is always the sum of `size`, and `size`, `order` and `exp` always name the same
 * entries, expired or not yet reaped; nothing depends on the server telling us about expiry.
 *
 * Every change is published on `memalloc:{N}:changes` with the name (the empty message: every
 * name, after a purge), which is what `watch` listens to.
 *
 * @module
 */

/**
 * Helpers every script starts with. ARGV[1] is the entry key prefix, ARGV[2] the channel,
 * ARGV[3] and ARGV[4] the maxMemory and autoclean of a store that has no settings yet (a new
 * store, or one whose server lost its data: restarted without persistence, flushed); the
 * operation's own arguments start at ARGV[5].
 */
const PRELUDE = `
local meta, order, exp, sizes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, channel = ARGV[1], ARGV[2]
local function int(n) return string.format('%.0f', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now = now_ms()
if redis.call('HSETNX', meta, 'maxMemory', ARGV[3]) == 1 then
  redis.call('HSET', meta, 'autoclean', ARGV[4], 'created', int(now))
end
-- Drops an entry and its accounting; returns the bytes it counted for.
local function forget(name)
  local size = tonumber(redis.call('HGET', sizes, name) or '0')
  redis.call('HDEL', sizes, name)
  redis.call('ZREM', order, name)
  redis.call('ZREM', exp, name)
  local existed = redis.call('DEL', prefix .. name)
  if size ~= 0 then redis.call('HINCRBY', meta, 'bytes', -size) end
  return size, existed
end
-- Removes up to limit entries whose expiry time has passed.
local function reap(limit)
  local names = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, limit)
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
local function evict(target, keep)
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local n = 0
  while bytes > target do
    local oldest = redis.call('ZRANGE', order, 0, 0)[1]
    if not oldest or oldest == keep then break end
    bytes = bytes - forget(oldest)
    redis.call('PUBLISH', channel, oldest)
    n = n + 1
  end
  if n > 0 then redis.call('HINCRBY', meta, 'evictions', n) end
  return n
end
local function limits()
  local m = redis.call('HMGET', meta, 'maxMemory', 'autoclean')
  local max = tonumber(m[1])
  return max, math.floor(max * tonumber(m[2]))
end
-- Writes a whole entry; returns its version. created: the creation time to keep, or nil.
local function put(name, kind, data, ttl, created)
  local key = prefix .. name
  local version = redis.call('HINCRBY', meta, 'version', 1)
  local expires = 0
  if ttl > 0 then expires = now + ttl end
  redis.call('DEL', key)
  redis.call('HSET', key, 'd', data, 'k', kind, 's', #data, 'c', created or int(now),
    'w', int(now), 'v', int(version), 'x', int(expires))
  if ttl > 0 then
    redis.call('PEXPIREAT', key, expires)
    redis.call('ZADD', exp, expires, name)
  else
    redis.call('ZREM', exp, name)
  end
  local size = #data + #name
  local old = tonumber(redis.call('HGET', sizes, name) or '0')
  redis.call('HSET', sizes, name, size)
  redis.call('HINCRBY', meta, 'bytes', size - old)
  redis.call('ZADD', order, version, name)
  redis.call('HINCRBY', meta, 'writes', 1)
  redis.call('PUBLISH', channel, name)
  return version
end
-- After a write: past maxMemory, expired entries go first, then the oldest-written.
local function make_room(keep)
  local max, target = limits()
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  if bytes <= max then return end
  reap_all()
  evict(target, keep)
end
`;

/**
 * Creates the store's settings unless they exist (the prelude does). Returns maxMemory,
 * autoclean and created as the store has them.
 */
export const INIT = `${PRELUDE}
return redis.call('HMGET', meta, 'maxMemory', 'autoclean', 'created')
`;

/**
 * ARGV (after the four common ones): name, kind, data, ttl (whole ms, 0: none), condition ('': none,
 * 'absent': only when there is no entry, else the version to write over).
 * Returns {1, version} when written, {0, 0} when the condition failed, {-1, size} when the
 * value cannot fit in the store at all.
 */
export const WRITE = `${PRELUDE}
local name, kind, data, ttl, cond = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
reap(16)
local cur = redis.call('HMGET', prefix .. name, 'v', 'c')
if cond == 'absent' then
  if cur[1] then return {0, 0} end
elseif cond ~= '' then
  if not cur[1] or tonumber(cur[1]) ~= tonumber(cond) then return {0, 0} end
end
local max = limits()
if #data + #name > max then return {-1, #data + #name} end
local version = put(name, kind, data, ttl, cur[2])
make_room(name)
return {1, version}
`;

/**
 * ARGV (after the four common ones): name, delta (float64 LE), initial (float64 LE), ttl of a new entry.
 * Returns {1, version, value as float64 LE}; {-2, kind} when the entry is not a number;
 * {-3, 0, result} when the result is not finite.
 */
export const INCREMENT = `${PRELUDE}
local name, ttl = ARGV[5], tonumber(ARGV[8])
local key = prefix .. name
reap(16)
local cur = redis.call('HMGET', key, 'k', 'd')
local value
if cur[1] then
  if cur[1] ~= '4' or #cur[2] ~= 8 then return {-2, tonumber(cur[1])} end
  value = struct.unpack('<d', cur[2])
else
  value = struct.unpack('<d', ARGV[7])
end
local result = value + struct.unpack('<d', ARGV[6])
local packed = struct.pack('<d', result)
if result ~= result or result == math.huge or result == -math.huge then return {-3, 0, packed} end
local version
if cur[1] then
  -- The entry keeps its creation time and its expiry (HSET leaves the TTL alone).
  version = redis.call('HINCRBY', meta, 'version', 1)
  redis.call('HSET', key, 'd', packed, 'w', int(now), 'v', int(version))
  redis.call('ZADD', order, version, name)
  redis.call('HINCRBY', meta, 'writes', 1)
  redis.call('PUBLISH', channel, name)
else
  version = put(name, '4', packed, ttl, nil)
  make_room(name)
end
return {1, version, packed}
`;

/** ARGV (after the four common ones): name, condition ('' or a version). Returns 1 when deleted, else 0. */
export const DELETE = `${PRELUDE}
local name, cond = ARGV[5], ARGV[6]
reap(16)
local version = redis.call('HGET', prefix .. name, 'v')
if not version then
  -- Absent, or expired by the server and not reaped yet: settle its accounting.
  if redis.call('HEXISTS', sizes, name) == 1 then forget(name) end
  return 0
end
if cond ~= '' and tonumber(version) ~= tonumber(cond) then return 0 end
forget(name)
redis.call('HINCRBY', meta, 'deletes', 1)
redis.call('PUBLISH', channel, name)
return 1
`;

/** No arguments of its own. Removes expired entries, then evicts down to the watermark. */
export const CLEAN = `${PRELUDE}
local _, target = limits()
return reap_all() + evict(target, false)
`;

/** No arguments of its own. Removes every entry; returns how many there were (live ones). */
export const PURGE = `${PRELUDE}
local removed = 0
while true do
  local names = redis.call('ZRANGE', order, 0, 511)
  if #names == 0 then break end
  for _, name in ipairs(names) do
    local _, existed = forget(name)
    removed = removed + existed
  end
end
redis.call('DEL', exp, sizes, order)
redis.call('HSET', meta, 'bytes', 0)
redis.call('PUBLISH', channel, '')
return removed
`;

/**
 * ARGV (after the four common ones): hits, misses (this client's, to add). Reaps expired entries, then
 * returns the meta hash as a flat list followed by 'entries' and the entry count.
 */
export const STATS = `${PRELUDE}
reap_all()
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', meta, 'hits', ARGV[5]) end
if tonumber(ARGV[6]) > 0 then redis.call('HINCRBY', meta, 'misses', ARGV[6]) end
local result = redis.call('HGETALL', meta)
table.insert(result, 'entries')
table.insert(result, redis.call('ZCARD', order))
return result
`;

/**
 * One chunk of a walk in write order. ARGV (after the four common ones): after (the last version seen),
 * count, name prefix, mode ('keys', 'list' or 'entries'). Returns {last version looked at,
 * then per live entry: name, then for 'list' k s c w v x, for 'entries' k d}.
 */
export const SCAN = `
local order = KEYS[2]
local prefix, after, count, want, mode = ARGV[1], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local found = redis.call('ZRANGEBYSCORE', order, '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, count)
local result = {#found > 0 and found[#found] or after}
for i = 1, #found, 2 do
  local name = found[i]
  if want == '' or string.sub(name, 1, #want) == want then
    local key = prefix .. name
    if mode == 'keys' then
      if redis.call('EXISTS', key) == 1 then table.insert(result, name) end
    elseif mode == 'list' then
      local f = redis.call('HMGET', key, 'k', 's', 'c', 'w', 'v', 'x')
      if f[1] then
        table.insert(result, name)
        for j = 1, 6 do table.insert(result, f[j]) end
      end
    else
      local f = redis.call('HMGET', key, 'k', 'd')
      if f[1] then
        table.insert(result, name)
        table.insert(result, f[1])
        table.insert(result, f[2])
      end
    end
  end
end
return result
`;
