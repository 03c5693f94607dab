-- One status change (read or dismiss); a dismissed entry is never "read" again. A change
-- is activity: both inbox keys get the idle TTL again, together.
--
-- KEYS[1]  inbox     KEYS[2]  state
-- ARGV[1]  id        ARGV[2]  to: R | D      ARGV[3]  now, ms     ARGV[4]  idle TTL, ms
-- Returns {-1 not found | 0 unchanged | 1 changed, unread}.

local inbox, state = KEYS[1], KEYS[2]
local id, to, now = ARGV[1], ARGV[2], ARGV[3]
local function unread() return tonumber(redis.call('HGET', state, ':unread') or '0') end
local cur = redis.call('HGET', state, id)
if not cur then return {-1, unread()} end
local dismissed = string.sub(cur, 1, 1) == 'D'
if dismissed or cur == to then return {0, unread()} end
if to == 'D' then
  redis.call('HSET', state, id, 'D' .. now)
  if not redis.call('HGET', state, ':dmin') then redis.call('HSET', state, ':dmin', now) end
else
  redis.call('HSET', state, id, 'R')
end
if cur == 'U' then redis.call('HINCRBY', state, ':unread', -1) end
redis.call('PEXPIRE', inbox, ARGV[4])
redis.call('PEXPIRE', state, ARGV[4])
return {1, unread()}
