-- Reads a room's recovery stream (bounded when appended) from a stream id, and says where
-- it starts when it has dropped entries (recovery/redis.rs).
--
-- KEYS[1]  the room's stream
-- ARGV[1]  first stream id to read (the offset's ms minus the clock allowance)
-- Returns { offset of the first kept entry when entries were trimmed, else '';
--           entries as XRANGE gives them }.
-- Trimming does not set XINFO's max-deleted-entry-id (Redis 7.0), so a trim shows as
-- entries-added > length.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'', {}}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local length, added, first = 0, 0, nil
for i = 1, #info, 2 do
  if info[i] == 'length' then
    length = info[i + 1]
  elseif info[i] == 'entries-added' then
    added = info[i + 1]
  elseif info[i] == 'first-entry' then
    first = info[i + 1]
  end
end
local floor = ''
if added > length and first then
  local fields = first[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'o' then
      floor = fields[j + 1]
    end
  end
end
return {floor, redis.call('XRANGE', KEYS[1], ARGV[1], '+')}
