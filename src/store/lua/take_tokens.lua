-- Takes tokens from a token bucket shared by every node (GCRA: the bucket is kept as its
-- "theoretical arrival time", one number), timed by the server's clock so that every node
-- charges it by one clock.
-- KEYS[1]: the bucket. ARGV[1]: µs per token; ARGV[2]: the burst (tokens); ARGV[3]: cost.
-- Returns 0 when the tokens were taken, else the µs to wait before `cost` tokens fit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local per_token = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + tonumber(ARGV[3]) * per_token
local wait = new_tat - now - tonumber(ARGV[2]) * per_token
if wait > 0 then
  return wait
end
-- The key lives until the bucket is full again: an idle tenant costs nothing.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  math.floor((new_tat - now) / 1000) + 1)
return 0
