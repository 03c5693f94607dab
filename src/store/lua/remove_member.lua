-- KEYS: course members, user courses. ARGV: user, course. Returns the removed role.

local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return prev
