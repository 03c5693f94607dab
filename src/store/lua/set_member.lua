-- KEYS[1]  course members.   ARGV[1]  user   ARGV[2]  role.   Returns the previous role.

local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return prev
