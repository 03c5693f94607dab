-- One status change (read or dismiss); a dismissed entry is never "read" again.
-- KEYS: statuses, unread. ARGV: id, to. Returns {-1 not found | 0 unchanged | 1 changed, unread}.

local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  return {-1, redis.call('SCARD', KEYS[2])}
end
local to = ARGV[2]
if cur == to or (cur == 'DISMISSED' and to == 'READ') then
  return {0, redis.call('SCARD', KEYS[2])}
end
redis.call('HSET', KEYS[1], ARGV[1], to)
redis.call('SREM', KEYS[2], ARGV[1])
return {1, redis.call('SCARD', KEYS[2])}
