-- Records that a user got a notification live, unless the record has already expired
-- (then nothing is resurrected without its TTL).
-- KEYS[1]  sent     ARGV[1]  user
-- Returns 1 when recorded.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'd')
return 1
