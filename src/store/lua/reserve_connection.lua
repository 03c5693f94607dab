-- Reserves one socket for a user (and its tenant) against cluster-wide caps, exactly:
-- Redis runs the script atomically, so two nodes can never both take the last slot.
--
-- Each counter is a hash: field <instance> = sockets that node process holds, field
-- <instance>:t = when it last touched the key (ms). A field counts while its instance is
-- live (in ARGV[6..], from the heartbeat registry), or is this instance, or touched the
-- key within the grace period (a node that just started may not be in other nodes' lists
-- yet). Anything else belongs to a crashed node: it is deleted here, which is how a dead
-- node's share is released once its heartbeat has expired.
--
-- KEYS[1]  the user's counter     KEYS[2]  the tenant's counter (ignored when ARGV[5] = 0)
-- ARGV[1]  this instance          ARGV[2]  now, ms      ARGV[3]  grace, ms
-- ARGV[4]  user cap               ARGV[5]  tenant cap (0: the tenant is not counted)
-- ARGV[6..] live instances
-- Returns 1 when reserved, -1 when the user is at its cap, -2 when the tenant is.

local me, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local user_cap, tenant_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local live = {}
for i = 6, #ARGV do live[ARGV[i]] = true end
live[me] = true

-- Sums the live shares of one counter and deletes the dead ones.
local function live_total(key)
  local flat = redis.call('HGETALL', key)
  local counts, touched = {}, {}
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    if string.sub(f, -2) == ':t' then
      touched[string.sub(f, 1, -3)] = tonumber(v)
    else
      counts[f] = tonumber(v)
    end
  end
  local total = 0
  for inst, n in pairs(counts) do
    if live[inst] or (now - (touched[inst] or 0)) < grace then
      total = total + n
    else
      redis.call('HDEL', key, inst, inst .. ':t')
    end
  end
  return total
end

if live_total(KEYS[1]) >= user_cap then return -1 end
if tenant_cap > 0 and live_total(KEYS[2]) >= tenant_cap then return -2 end

local ttl = 7 * 24 * 3600 * 1000
redis.call('HINCRBY', KEYS[1], me, 1)
redis.call('HSET', KEYS[1], me .. ':t', now)
redis.call('PEXPIRE', KEYS[1], ttl)
if tenant_cap > 0 then
  redis.call('HINCRBY', KEYS[2], me, 1)
  redis.call('HSET', KEYS[2], me .. ':t', now)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
