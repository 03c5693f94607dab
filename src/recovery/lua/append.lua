-- Appends one event to a room's recovery stream and keeps the stream bounded (recovery/redis.rs).
--
-- KEYS[1]  the room's stream
-- ARGV[1]  max entries (approximate trim: whole nodes, so a little more may stay)
-- ARGV[2]  entries older than this stream id (ms of the age bound) are trimmed
-- ARGV[3]  the stream's lifetime after its last append, ms (a quiet room's stream vanishes)
-- ARGV[4]  offset, ARGV[5] event, ARGV[6] payload JSON, ARGV[7] pid left out ('' for none)
-- Returns the entry's stream id.

local fields = {'o', ARGV[4], 'e', ARGV[5], 'd', ARGV[6]}
if ARGV[7] ~= '' then
  fields[#fields + 1] = 'x'
  fields[#fields + 1] = ARGV[7]
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return id
