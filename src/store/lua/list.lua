-- A page of references, newest first, from one consistent snapshot; an id without a state
-- is unread. (inbox_lib.lua is prepended.)
--
-- KEYS[1]  inbox     KEYS[2]  state     (KEYS[3], the course index, is not used)
-- ARGV[1]  max score ("+inf" or "(<before>")   ARGV[2]  limit   ARGV[3]  U | R | D | ""
-- Returns {more 0|1, skipped, score, id, status, score, id, status, ...}, status U | R | D.

inbox_upgrade(KEYS[2])
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES')
local limit, want = tonumber(ARGV[2]), ARGV[3]
local out = {0, 0}
local taken = 0
for i = 1, #ids, 2 do
  local id = ids[i]
  local st = string.sub(redis.call('HGET', KEYS[2], id) or 'U', 1, 1)
  if want == '' or st == want then
    if taken == limit then
      out[1] = 1
      break
    end
    table.insert(out, ids[i + 1])
    table.insert(out, id)
    table.insert(out, st)
    taken = taken + 1
  end
end
return out
