-- Drops references whose body is gone (expired or lost), so the inbox and its count heal.
-- (inbox_lib.lua is prepended.)
-- KEYS[1]  inbox     KEYS[2]  state     (KEYS[3], the course index, is not used)
-- ARGV  ids
-- Returns the unread count after.

inbox_upgrade(KEYS[2])
for _, id in ipairs(ARGV) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
return inbox_unread(KEYS[1], KEYS[2])
