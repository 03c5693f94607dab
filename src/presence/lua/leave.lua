-- A node process no longer holds a user in a scope. Idempotent per process.
--
-- KEYS as in join.lua.
-- ARGV[1] user   ARGV[2] now, ms   ARGV[3] debounce, ms   ARGV[4] '1' when it announces
-- Returns {flipped 0|1, verdict, recheck_at}.
if redis.call('SREM', KEYS[3], ARGV[1]) == 0 then
  return {0, 'quiet', 0}
end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) > 0 then
  return {0, 'quiet', 0}
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[4] ~= '1' then
  return {1, 'quiet', 0}
end
local v = decide(KEYS[4], ARGV[1], false, tonumber(ARGV[2]), ARGV[2], tonumber(ARGV[3]))
return {1, v[1], v[2]}
