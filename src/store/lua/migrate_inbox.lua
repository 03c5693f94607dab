-- Merges one user's old inbox into the new layout (migrate-keys): ids the new inbox
-- already has are kept as they are, so a second run, or a run beside live traffic, never
-- counts an entry twice. (inbox_lib.lua is prepended.)
--
-- KEYS[1]  inbox     KEYS[2]  state     KEYS[3]  the user's course index (its TTL)
-- ARGV[1]  idle TTL, ms;   then triples (id, score, U | R | D<ms>)
-- Returns how many entries were added.

inbox_upgrade(KEYS[2])
local added = 0
for i = 2, #ARGV, 3 do
  local id, score, st = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if not redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], score, id)
    if st ~= 'U' then redis.call('HSET', KEYS[2], id, st) end
    if string.sub(st, 1, 1) == 'D' and not redis.call('HGET', KEYS[2], ':dmin') then
      redis.call('HSET', KEYS[2], ':dmin', string.sub(st, 2))
    end
    added = added + 1
  end
end
if added > 0 then
  inbox_touch(ARGV[1])
end
return added
