-- A page, newest first, from one consistent snapshot.
-- KEYS: inbox, entries, statuses. ARGV: max score ("+inf" or "(<before>"), limit, status or "".
-- Returns {more 0|1, seq, json, status, seq, json, status, ...}.

local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES')
local limit = tonumber(ARGV[2])
local want = ARGV[3]
local out = {0}
local taken = 0
for i = 1, #ids, 2 do
  local id = ids[i]
  local st = redis.call('HGET', KEYS[3], id)
  if st and (want == '' or st == want) then
    if taken == limit then
      out[1] = 1
      break
    end
    table.insert(out, ids[i + 1])
    table.insert(out, redis.call('HGET', KEYS[2], id))
    table.insert(out, st)
    taken = taken + 1
  end
end
return out
