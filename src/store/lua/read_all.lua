-- Every unread entry → READ.
-- KEYS[1]  inbox     KEYS[2]  state      ARGV[1]  idle TTL, ms
-- Returns how many changed.

local flat = redis.call('HGETALL', KEYS[2])
local changed = 0
for i = 1, #flat, 2 do
  if flat[i + 1] == 'U' and string.sub(flat[i], 1, 1) ~= ':' then
    redis.call('HSET', KEYS[2], flat[i], 'R')
    changed = changed + 1
  end
end
if changed > 0 then
  redis.call('HSET', KEYS[2], ':unread', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return changed
