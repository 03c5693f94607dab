-- Moves the oldest ARGV[1] dead letters back to the queue (same event ids), bounded like
-- an append.
-- KEYS[1]  the dead letters   KEYS[2]  the queue   KEYS[3]  its ordinal counter
-- ARGV[1]  how many   ARGV[2]  oldest id kept (ms)   ARGV[3]  cap   ARGV[4]  retention, ms
-- Returns how many were moved.

local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return 0 end
for _, e in ipairs(items) do
  local n = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '*', 'n', n, 'e', e)
end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return #items
