-- Appends to a tenant's progress log and bounds it by age and by count; an idle log expires.
-- KEYS[1]  progress stream
-- ARGV[1]  record JSON   ARGV[2]  now, ms   ARGV[3]  retention, ms   ARGV[4]  cap

local oldest = tonumber(ARGV[2]) - tonumber(ARGV[3])
redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', math.max(oldest, 0)))
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
