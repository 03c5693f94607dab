-- Records a user revocation, never narrowing an existing one (revocations.rs).
--
-- KEYS[1]  the user's revocation key
-- ARGV[1]  before: tokens issued at or before it are refused (seconds since the epoch)
-- ARGV[2]  how long to keep the record, seconds
-- Returns the `before` now recorded.

local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local before = math.max(current, tonumber(ARGV[1]))
local keep = tonumber(ARGV[2])
local ttl = redis.call('TTL', KEYS[1])
if ttl > keep then keep = ttl end
redis.call('SET', KEYS[1], tostring(before), 'EX', keep)
return before
