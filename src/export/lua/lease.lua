-- Takes or renews a tenant's delivery lease, while the tenant has a webhook.
-- KEYS[1]  the lease   KEYS[2]  the webhook hash
-- ARGV[1]  holder   ARGV[2]  ttl, ms
-- Returns 1 when ARGV[1] holds it now, 0 otherwise.

if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
