-- Insert idempotent on the id, count, and cap trim, in one step.
-- KEYS: inbox, entries, statuses, unread, seq. ARGV: id, json, status, cap.
-- Returns {inserted 0|1, unread}.

local id = ARGV[1]
if redis.call('HEXISTS', KEYS[2], id) == 1 then
  return {0, redis.call('SCARD', KEYS[4])}
end
local seq = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[1], seq, id)
redis.call('HSET', KEYS[2], id, ARGV[2])
redis.call('HSET', KEYS[3], id, ARGV[3])
if ARGV[3] == 'UNREAD' then
  redis.call('SADD', KEYS[4], id)
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
  for _, o in ipairs(old) do
    redis.call('HDEL', KEYS[2], o)
    redis.call('HDEL', KEYS[3], o)
    redis.call('SREM', KEYS[4], o)
  end
end
return {1, redis.call('SCARD', KEYS[4])}
