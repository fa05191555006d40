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
 * | `memalloc:{N}:size`    | hash   | name -> bytes an entry with a TTL counts for (name+value) |
 * | `memalloc:{N}:meta`    | hash   | maxMemory, autoclean, created, bytes, version (= writes), |
 * |                        |        | evictions, expired, deletes, hits, misses                 |
 *
 * Expiry: an entry with a TTL gets `PEXPIREAT` on its hash, so the server itself stops serving
 * it at that instant (reads are plain `HMGET`s). Its accounting lives outside that hash, in
 * keys that never expire: its size in `size`, its expiry time in `exp`, its place in `order`.
 * Every script first reaps a few members of `exp` whose time has passed (all of them when room
 * is needed, and in `clean` and `stats`), subtracting the sizes recorded in `size` from
 * `bytes`; a write over a name whose hash the server has already expired subtracts the size
 * recorded in `size`, not the (gone) hash's. An entry without a TTL keeps its size only in its
 * own hash (`s`), which nothing but these scripts removes, so the common overwrite touches no
 * `size` field. So `bytes` is always the sum over `order` of each entry's recorded size,
 * expired or not yet reaped; nothing depends on the server telling us about expiry.
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
 * operation's own arguments start at ARGV[5]. The byte counter and the version counter are read
 * once into locals and saved once by save(): a write costs about seven server calls.
 */
const PRELUDE = `
local meta, order, exp, sizes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, channel = ARGV[1], ARGV[2]
local function int(n) return string.format('%.0f', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', meta, 'maxMemory', 'autoclean', 'bytes', 'version')
if not m[1] then
  redis.call('HSET', meta, 'maxMemory', ARGV[3], 'autoclean', ARGV[4], 'created', int(now),
    'bytes', 0, 'version', 0)
  m = {ARGV[3], ARGV[4], '0', '0'}
end
local max = tonumber(m[1])
local target = math.floor(max * tonumber(m[2]))
local bytes, version = tonumber(m[3] or '0'), tonumber(m[4] or '0')
local dirty = false
local counts = {}
local function count(what, n) counts[what] = (counts[what] or 0) + n end
-- Saves the byte and version counters, and adds to the other counters.
local function save()
  if dirty then redis.call('HSET', meta, 'bytes', int(bytes), 'version', int(version)) end
  for what, n in pairs(counts) do redis.call('HINCRBY', meta, what, n) end
end
-- Drops an entry and its accounting; returns the bytes it counted for, and whether its hash
-- was still there. An entry with a TTL has its size in the sizes hash (its own hash may be
-- gone); one without has it in its hash, which only this store's scripts remove.
local function forget(name)
  local key = prefix .. name
  local size = redis.call('HGET', sizes, name)
  if size then
    redis.call('HDEL', sizes, name)
    redis.call('ZREM', exp, name)
    size = tonumber(size)
  else
    size = tonumber(redis.call('HGET', key, 's') or '-1') + #name
    if size < #name then size = 0 end
  end
  redis.call('ZREM', order, name)
  local existed = redis.call('DEL', key)
  bytes = bytes - size
  dirty = true
  return size, existed
end
-- Removes up to limit entries whose expiry time has passed.
local function reap(limit)
  local names = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, limit)
  for _, name in ipairs(names) do forget(name) end
  if #names > 0 then count('expired', #names) end
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
  local n = 0
  while bytes > target do
    local oldest = redis.call('ZRANGE', order, 0, 0)[1]
    if not oldest or oldest == keep then break end
    forget(oldest)
    redis.call('PUBLISH', channel, oldest)
    n = n + 1
  end
  if n > 0 then count('evictions', n) end
  return n
end
-- Writes a whole entry. cur: its hash's v, c, s, x (all nil when there is none).
local function put(name, kind, data, ttl, cur)
  local key = prefix .. name
  version = version + 1
  dirty = true
  local expires = 0
  if ttl > 0 then expires = now + ttl end
  local plain = cur[1] and cur[4] == '0' -- a live entry without a TTL
  local old = 0
  local recorded = false
  if plain then
    old = tonumber(cur[3]) + #name
  else
    -- It has a TTL, or it expired before it was reaped, or it is new.
    local size = redis.call('HGET', sizes, name)
    if size then old, recorded = tonumber(size), true end
  end
  local size = #data + #name
  bytes = bytes + size - old
  redis.call('HSET', key, 'd', data, 'k', kind, 's', #data, 'c', cur[2] or int(now),
    'w', int(now), 'v', int(version), 'x', int(expires))
  if ttl > 0 then
    redis.call('PEXPIREAT', key, expires)
    redis.call('ZADD', exp, expires, name)
    redis.call('HSET', sizes, name, size)
  elseif not plain then
    if cur[1] then redis.call('PERSIST', key) end
    if recorded then
      redis.call('ZREM', exp, name)
      redis.call('HDEL', sizes, name)
    end
  end
  redis.call('ZADD', order, version, name)
  redis.call('PUBLISH', channel, name)
end
-- What a write reaps on its way: every 16th write, up to 64 expired entries. That bounds the
-- accounting that entries the server expired can leave (the bytes counter counts them until
-- reaped, so they are reaped first of all when room is needed) at no cost to most writes.
local function reap_some()
  if version % 16 == 0 then reap(64) end
end
-- After a write: past maxMemory, expired entries go first, then the oldest-written.
local function make_room(keep)
  if bytes <= max then return end
  reap_all()
  evict(keep)
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
 * ARGV (after the four common ones): name, kind, data, ttl (whole ms, 0: none), condition ('':
 * none, 'absent': only when there is no entry, else the version to write over). Returns
 * {1, version} when written, {0, 0} when the condition failed, {-1, size} when the value cannot
 * fit in the store at all.
 */
export const WRITE = `${PRELUDE}
local name, kind, data, ttl, cond = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
reap_some()
local cur = redis.call('HMGET', prefix .. name, 'v', 'c', 's', 'x')
local refused
if cond == 'absent' then
  if cur[1] then refused = {0, 0} end
elseif cond ~= '' then
  if not cur[1] or tonumber(cur[1]) ~= tonumber(cond) then refused = {0, 0} end
end
if not refused and #data + #name > max then refused = {-1, #data + #name} end
if refused then
  save()
  return refused
end
put(name, kind, data, ttl, cur)
make_room(name)
save()
return {1, version}
`;

/**
 * ARGV (after the four common ones): name, delta (float64 LE), initial (float64 LE), ttl of a
 * new entry. Returns {1, version, value as float64 LE}; {-2, kind} when the entry is not a
 * number; {-3, 0, result} when the result is not finite.
 */
export const INCREMENT = `${PRELUDE}
local name, ttl = ARGV[5], tonumber(ARGV[8])
local key = prefix .. name
reap_some()
local cur = redis.call('HMGET', key, 'v', 'c', 's', 'x', 'k', 'd')
local value
if cur[1] then
  if cur[5] ~= '4' or #cur[6] ~= 8 then
    save()
    return {-2, tonumber(cur[5])}
  end
  value = struct.unpack('<d', cur[6])
else
  value = struct.unpack('<d', ARGV[7])
end
local result = value + struct.unpack('<d', ARGV[6])
local packed = struct.pack('<d', result)
if result ~= result or result == math.huge or result == -math.huge then
  save()
  return {-3, 0, packed}
end
if cur[1] then
  -- The entry keeps its creation time, size and expiry (HSET leaves the TTL alone).
  version = version + 1
  dirty = true
  redis.call('HSET', key, 'd', packed, 'w', int(now), 'v', int(version))
  redis.call('ZADD', order, version, name)
  redis.call('PUBLISH', channel, name)
else
  put(name, '4', packed, ttl, cur)
  make_room(name)
end
save()
return {1, version, packed}
`;

/**
 * ARGV (after the four common ones): name, condition ('' or a version). Returns 1 when
 * deleted, else 0.
 */
export const DELETE = `${PRELUDE}
local name, cond = ARGV[5], ARGV[6]
reap_some()
local current = redis.call('HGET', prefix .. name, 'v')
local deleted = 0
if not current then
  -- Absent, or expired by the server and not reaped yet: settle its accounting.
  if redis.call('HEXISTS', sizes, name) == 1 then forget(name) end
elseif cond == '' or tonumber(current) == tonumber(cond) then
  forget(name)
  count('deletes', 1)
  redis.call('PUBLISH', channel, name)
  deleted = 1
end
save()
return deleted
`;

/** No arguments of its own. Removes expired entries, then evicts down to the watermark. */
export const CLEAN = `${PRELUDE}
local n = reap_all() + evict(false)
save()
return n
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
bytes = 0
dirty = true
save()
redis.call('PUBLISH', channel, '')
return removed
`;

/**
 * ARGV (after the four common ones): hits, misses (this client's, to add). Reaps expired
 * entries, then returns the meta hash as a flat list followed by 'entries' and the entry count.
 */
export const STATS = `${PRELUDE}
reap_all()
if tonumber(ARGV[5]) > 0 then count('hits', tonumber(ARGV[5])) end
if tonumber(ARGV[6]) > 0 then count('misses', tonumber(ARGV[6])) end
save()
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
