-- Every unread entry → READ. KEYS: statuses, unread. Returns how many changed.

local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do
  redis.call('HSET', KEYS[1], id, 'READ')
end
redis.call('DEL', KEYS[2])
return #ids
