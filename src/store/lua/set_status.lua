-- One status change (read or dismiss); a dismissed entry is never "read" again. A change
-- is activity: every key of the user gets the idle TTL again, together. (inbox_lib.lua is
-- prepended.)
--
-- KEYS[1]  inbox     KEYS[2]  state     KEYS[3]  the user's course index (its TTL)
-- ARGV[1]  id        ARGV[2]  to: R | D      ARGV[3]  now, ms     ARGV[4]  idle TTL, ms
-- Returns {-1 not found | 0 unchanged | 1 changed, unread}.

local inbox, state = KEYS[1], KEYS[2]
local id, to, now = ARGV[1], ARGV[2], ARGV[3]
inbox_upgrade(state)
if not redis.call('ZSCORE', inbox, id) then return {-1, inbox_unread(inbox, state)} end
local cur = redis.call('HGET', state, id) or 'U'
local dismissed = string.sub(cur, 1, 1) == 'D'
if dismissed or cur == to then return {0, inbox_unread(inbox, state)} end
if to == 'D' then
  redis.call('HSET', state, id, 'D' .. now)
  if not redis.call('HGET', state, ':dmin') then redis.call('HSET', state, ':dmin', now) end
else
  redis.call('HSET', state, id, 'R')
end
inbox_touch(ARGV[4])
return {1, inbox_unread(inbox, state)}
