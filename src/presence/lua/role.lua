-- A user present in a scope holds another role there now (its membership changed while it
-- was online). Keeps `since`; does nothing when the user is not present.
--
-- KEYS[1] info (hash user -> "role|since")
-- ARGV[1] user   ARGV[2] role
-- Returns 1 when the role was written, 0 when the user is not present.
local info = redis.call('HGET', KEYS[1], ARGV[1])
if not info then
  return 0
end
local since = string.match(info, '|(.*)$') or '0'
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. since)
return 1
