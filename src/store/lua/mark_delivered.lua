-- Records that users got a notification live, unless the record has already expired
-- (then nothing is resurrected without its TTL).
-- KEYS[1]  sent     ARGV  the users (one call for a whole fan-out's pushes)
-- Returns 1 when recorded.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fields = {}
for i = 1, #ARGV do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = 'd'
end
redis.call('HSET', KEYS[1], unpack(fields))
return 1
