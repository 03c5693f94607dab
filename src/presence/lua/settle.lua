-- After a suppressed announcement: announce now if instructors last heard another state
-- than the present one.
--
-- KEYS[1] holders   KEYS[2] announced
-- ARGV[1] user   ARGV[2] now, ms   ARGV[3] debounce, ms
-- Returns {verdict, recheck_at, online 0|1}.
local online = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
local v = decide(KEYS[2], ARGV[1], online, tonumber(ARGV[2]), ARGV[2], tonumber(ARGV[3]))
return {v[1], v[2], online and 1 or 0}
