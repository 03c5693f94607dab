-- KEYS[1]  course members.   ARGV[1]  user.   Returns the removed role.

local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return prev
