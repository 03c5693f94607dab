-- Removes a dead node process's share of a scope: its users stop counting, and those it
-- was the last holder of go away (announced like any leave). Idempotent: a second purge
-- of the same process finds its set gone.
--
-- KEYS[1] holders   KEYS[2] info   KEYS[3] the dead process's users   KEYS[4] announced
-- ARGV[1] now, ms   ARGV[2] debounce, ms   ARGV[3] '1' when the scope announces
-- Returns {{user, role, verdict, recheck_at}, ...} for the users that went away.
local out = {}
for _, u in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('HINCRBY', KEYS[1], u, -1) <= 0 then
    redis.call('HDEL', KEYS[1], u)
    local info = redis.call('HGET', KEYS[2], u)
    redis.call('HDEL', KEYS[2], u)
    local role = ''
    if info then
      role = string.sub(info, 1, string.find(info, '|', 1, true) - 1)
    end
    local v = {'quiet', 0}
    if ARGV[3] == '1' then
      v = decide(KEYS[4], u, false, tonumber(ARGV[1]), ARGV[1], tonumber(ARGV[2]))
    end
    table.insert(out, {u, role, v[1], v[2]})
  end
end
redis.call('DEL', KEYS[3])
return out
