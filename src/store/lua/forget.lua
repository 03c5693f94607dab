-- Drops references whose body is gone (expired or lost), so the inbox and its count heal.
-- KEYS[1]  inbox     KEYS[2]  state      ARGV  ids
-- Returns the unread count after.

for _, id in ipairs(ARGV) do
  if redis.call('HGET', KEYS[2], id) == 'U' then redis.call('HINCRBY', KEYS[2], ':unread', -1) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
return tonumber(redis.call('HGET', KEYS[2], ':unread') or '0')
