-- A node process now holds a user in a scope (its first socket there on that node).
-- Idempotent per process: a repeat (a resync) changes nothing.
--
-- KEYS[1] holders (hash user -> processes)   KEYS[2] info (hash user -> "role|since")
-- KEYS[3] this process's users (set)         KEYS[4] announced (see decide.lua)
-- ARGV[1] user   ARGV[2] role   ARGV[3] now, ms   ARGV[4] debounce, ms
-- ARGV[5] '1' when the scope announces (a course), '0' otherwise
-- Returns {flipped 0|1, verdict, recheck_at}.
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then
  return {0, 'quiet', 0}
end
if redis.call('HINCRBY', KEYS[1], ARGV[1], 1) > 1 then
  return {0, 'quiet', 0}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
if ARGV[5] ~= '1' then
  return {1, 'quiet', 0}
end
local v = decide(KEYS[4], ARGV[1], true, tonumber(ARGV[3]), ARGV[3], tonumber(ARGV[4]))
return {1, v[1], v[2]}
