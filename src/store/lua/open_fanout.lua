-- Opens (or resumes) the delivery of one notification id: the body is stored once, and the
-- idempotency record says who already got it (or is getting it). A first send stores its
-- body and opens the record; a send within the record's window is a retry and gets the
-- first body back, so every recipient sees the same content.
--
-- KEYS[1]  body (string)
-- KEYS[2]  sent (hash user → "d" delivered | "c<ms>" claimed; field ":open")
-- ARGV[1]  body JSON      ARGV[2]  body TTL (inbox retention), ms
-- ARGV[3]  idempotency window, ms      ARGV[4]  now, ms     ARGV[5]  claim lease, ms
-- Returns {retry 0|1, body JSON, user delivered or claimed within the lease, ...}.

if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('HSET', KEYS[2], ':open', ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {0, ARGV[1]}
end
local body = redis.call('GET', KEYS[1])
if not body then
  body = ARGV[1]
  redis.call('SET', KEYS[1], body, 'PX', ARGV[2])
end
local now, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {1, body}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  local u, v = flat[i], flat[i + 1]
  if u ~= ':open' then
    local at = tonumber(string.sub(v, 2))
    if v == 'd' or (at and now - at < lease) then table.insert(out, u) end
  end
end
return out
