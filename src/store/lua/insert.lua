-- Inserts one reference into a user's inbox (idempotent on the id), unread, and trims:
-- entries older than the retention, dismissed entries older than theirs, and the oldest past
-- the cap. An insert is activity: every key of the inbox gets the same idle TTL here, so a
-- user's inbox expires as a whole. With an empty id it only trims (before a read, and in the
-- retention sweep), which is not activity. (inbox_lib.lua is prepended.)
--
-- KEYS[1]  inbox (zset id → µs score)     KEYS[2]  state (hash id → R|D<ms>, :dmin)
-- KEYS[3]  the user's course index (only its TTL is set)
-- ARGV[1]  id or ""      ARGV[2]  now, ms      ARGV[3]  cap
-- ARGV[4]  inbox retention, ms       ARGV[5]  dismissed retention, ms
-- ARGV[6]  idle TTL of the inbox, ms      ARGV[7]  1 when this is activity (sets the TTL)
-- Returns {inserted 0|1, unread, trimmed}.

local inbox, state = KEYS[1], KEYS[2]
local id, now = ARGV[1], tonumber(ARGV[2])
local cap, keep, dkeep, idle = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local trimmed = 0
inbox_upgrade(state)

local function forget(ids)
  for _, old in ipairs(ids) do
    redis.call('HDEL', state, old)
    redis.call('ZREM', inbox, old)
    trimmed = trimmed + 1
  end
end

forget(redis.call('ZRANGEBYSCORE', inbox, '-inf', '(' .. string.format('%.0f', (now - keep) * 1000)))

local dmin = tonumber(redis.call('HGET', state, ':dmin') or '')
if dmin and now - dmin > dkeep then
  local flat, expired, oldest = redis.call('HGETALL', state), {}, nil
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    if string.sub(v, 1, 1) == 'D' and string.sub(f, 1, 1) ~= ':' then
      local at = tonumber(string.sub(v, 2)) or 0
      if now - at > dkeep then
        table.insert(expired, f)
      elseif not oldest or at < oldest then
        oldest = at
      end
    end
  end
  forget(expired)
  if oldest then redis.call('HSET', state, ':dmin', oldest) else redis.call('HDEL', state, ':dmin') end
end

local inserted = 0
if id ~= '' and not redis.call('ZSCORE', inbox, id) then
  local score = now * 1000
  local last = redis.call('ZRANGE', inbox, -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
  redis.call('HDEL', state, id)
  redis.call('ZADD', inbox, string.format('%.0f', score), id)
  local excess = redis.call('ZCARD', inbox) - cap
  if excess > 0 then forget(redis.call('ZRANGE', inbox, 0, excess - 1)) end
  inserted = 1
end

local unread = inbox_unread(inbox, state)
if redis.call('ZCARD', inbox) == 0 then
  redis.call('DEL', inbox, state)
  unread = 0
elseif ARGV[7] == '1' then
  inbox_touch(idle)
end
return {inserted, unread, trimmed}
