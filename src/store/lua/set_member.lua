-- A change is activity: the course's hash gets its idle TTL again.
-- KEYS[1]  course members.   ARGV[1]  user   ARGV[2]  role   ARGV[3]  idle TTL, ms.
-- Returns the previous role.

local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return prev
