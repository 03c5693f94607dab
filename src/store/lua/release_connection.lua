-- Gives back one socket reserved by reserve_connection.lua.
--
-- KEYS[1]  the user's counter     KEYS[2]  the tenant's counter (ignored when ARGV[2] = 0)
-- ARGV[1]  this instance          ARGV[2]  1 when the tenant was counted, else 0
-- ARGV[3]  now, ms
-- Returns the user's remaining count on this instance.

local me, now = ARGV[1], ARGV[3]
local function give_back(key)
  local n = redis.call('HINCRBY', key, me, -1)
  if n <= 0 then
    redis.call('HDEL', key, me, me .. ':t')
  else
    redis.call('HSET', key, me .. ':t', now)
  end
  return n
end

local left = give_back(KEYS[1])
if ARGV[2] == '1' then give_back(KEYS[2]) end
return left
