-- KEYS[1]  course members.   ARGV[1]  user   ARGV[2]  idle TTL, ms.
-- Returns the removed role.

local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return prev
