-- Stores a tenant's webhook; a first configuration puts its cursor at the queue's end,
-- a replaced one keeps it.
-- KEYS[1]  the webhook hash (url, secret, events, cursor, n)   KEYS[2]  the queue
-- KEYS[3]  the queue's ordinal counter
-- ARGV[1]  url   ARGV[2]  secret   ARGV[3]  events (JSON list)

redis.call('HSET', KEYS[1], 'url', ARGV[1], 'secret', ARGV[2], 'events', ARGV[3])
if redis.call('HEXISTS', KEYS[1], 'cursor') == 0 then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local id = '0-0'
  if #last > 0 then id = last[1][1] end
  redis.call('HSET', KEYS[1], 'cursor', id, 'n', redis.call('GET', KEYS[3]) or '0')
end
return 1
