-- Appends events to a room's recovery stream and keeps the stream bounded (recovery/redis.rs).
--
-- KEYS[1]  the room's stream
-- ARGV[1]  max entries (approximate trim: whole nodes, so a little more may stay)
-- ARGV[2]  entries older than this stream id (ms of the age bound) are trimmed
-- ARGV[3]  the stream's lifetime after its last append, ms (a quiet room's stream vanishes)
-- ARGV[4..] one group of four per event, in order: offset, event, payload JSON, pid left
--          out ('' for none)
-- Returns the last entry's stream id.

local id
for i = 4, #ARGV, 4 do
  local fields = {'o', ARGV[i], 'e', ARGV[i + 1], 'd', ARGV[i + 2]}
  if ARGV[i + 3] ~= '' then
    fields[#fields + 1] = 'x'
    fields[#fields + 1] = ARGV[i + 3]
  end
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return id
