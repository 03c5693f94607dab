-- Merges one user's old inbox into the new layout (migrate-keys): ids the new inbox
-- already has are kept as they are, so a second run, or a run beside live traffic, never
-- counts an entry twice.
--
-- KEYS[1]  inbox     KEYS[2]  state
-- ARGV[1]  idle TTL, ms;   then triples (id, score, U | R | D<ms>)
-- Returns how many entries were added.

local added = 0
for i = 2, #ARGV, 3 do
  local id, score, st = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    redis.call('ZADD', KEYS[1], score, id)
    redis.call('HSET', KEYS[2], id, st)
    if st == 'U' then redis.call('HINCRBY', KEYS[2], ':unread', 1) end
    if string.sub(st, 1, 1) == 'D' and not redis.call('HGET', KEYS[2], ':dmin') then
      redis.call('HSET', KEYS[2], ':dmin', string.sub(st, 2))
    end
    added = added + 1
  end
end
if added > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return added
