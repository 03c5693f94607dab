-- Claims the live push of a notification to one user, so that two concurrent sends of one
-- id push it once. A claim older than the lease belongs to a node that died before its push
-- and can be taken over; without a record (its window is over) the caller just pushes.
--
-- KEYS[1]  sent     ARGV[1]  user    ARGV[2]  now, ms     ARGV[3]  claim lease, ms
-- Returns 1 when the caller is to push.

if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == 'd' then return 0 end
local at = v and tonumber(string.sub(v, 2))
if at and tonumber(ARGV[2]) - at < tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'c' .. ARGV[2])
return 1
