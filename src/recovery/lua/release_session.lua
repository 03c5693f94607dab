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
-- `<sid> <start>[ <course>…]`, or the JSON an older node wrote.
local sid
if string.sub(saved, 1, 1) == '{' then
  local ok, s = pcall(cjson.decode, saved)
  if ok then sid = s['sid'] end
else
  sid = string.match(saved, '^(%S+)')
end
if sid ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
