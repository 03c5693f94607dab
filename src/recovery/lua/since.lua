-- Reads a room's recovery stream (bounded when appended) from a stream id, and what it has dropped (recovery/redis.rs).
--
-- KEYS[1]  the room's stream
-- ARGV[1]  first stream id to read (the offset's ms minus the clock allowance)
-- Returns { max deleted stream id ('0-0' when nothing was trimmed), entries as XRANGE gives them }.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'0-0', {}}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local deleted = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then
    deleted = info[i + 1]
  end
end
return {deleted, redis.call('XRANGE', KEYS[1], ARGV[1], '+')}
