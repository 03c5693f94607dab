-- Gives a recovery session its window after its socket left, if that socket still holds it.
--
-- KEYS[1]  the session key
-- ARGV[1]  the socket id that left
-- ARGV[2]  the window, ms
-- Returns 1 when the window was set.

local saved = redis.call('GET', KEYS[1])
if not saved then
  return 0
end
local ok, s = pcall(cjson.decode, saved)
if not ok or s['sid'] ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
