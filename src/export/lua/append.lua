-- Appends one event to a tenant's export queue, bounded by count and age (export/redis.rs).
-- KEYS[1]  the queue (stream)   KEYS[2]  its ordinal counter
-- ARGV[1]  event JSON   ARGV[2]  oldest id kept (ms)   ARGV[3]  cap   ARGV[4]  retention, ms
-- An idle queue and its counter expire after the retention.

local n = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '*', 'n', n, 'e', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n
