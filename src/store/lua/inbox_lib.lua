-- Shared by every inbox script (prepended to it): the unread count, and the upgrade of a
-- state hash written by the first per-user layout.
--
-- A user's inbox is the order key (zset id → µs score), which holds every entry, and the
-- state key (hash id → R | D<dismissed at, ms>, plus `:dmin`), which exists only once an
-- entry was read or dismissed: an id in the order without a state is unread. So a user's
-- first notification creates one key, and the unread count is derived, never stored.

-- The unread count: entries less those read or dismissed (`:dmin` is not an entry).
local function inbox_unread(inbox, state)
  local n = redis.call('ZCARD', inbox) - redis.call('HLEN', state)
  if redis.call('HEXISTS', state, ':dmin') == 1 then n = n + 1 end
  if n < 0 then return 0 end
  return n
end

-- Activity of the user: every key of theirs the script names (the order, the statuses,
-- the course index) gets the same idle TTL at once, so a user's keys expire together.
local function inbox_touch(ttl)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
end

-- The first per-user layout kept `U` for unread entries and a stored `:unread` count in the
-- state hash; they are dropped once, here, so that nodes and data of either version agree.
local function inbox_upgrade(state)
  if redis.call('HEXISTS', state, ':unread') == 0 then return end
  local flat = redis.call('HGETALL', state)
  for i = 1, #flat, 2 do
    if flat[i + 1] == 'U' then redis.call('HDEL', state, flat[i]) end
  end
  redis.call('HDEL', state, ':unread')
end

