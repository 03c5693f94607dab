-- Replaces a course's membership. The caller passes every user it knows of (current and
-- wanted) with the key of their course hash; if the course gained a member the caller did
-- not know, the script changes nothing and answers "retry".
-- KEYS: course members, then one user-courses key per user.
-- ARGV: course, n, then n pairs (user, wanted role or "" to remove).
-- Returns {"retry"} or {"ok", op, user, role, ...} with op "+" (upserted) or "-" (removed).

local n = tonumber(ARGV[2])
local known = {}
for i = 1, n do
  known[ARGV[1 + 2 * i]] = true
end
for _, u in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not known[u] then
    return {'retry'}
  end
end
local out = {'ok'}
for i = 1, n do
  local u = ARGV[1 + 2 * i]
  local want = ARGV[2 + 2 * i]
  local cur = redis.call('HGET', KEYS[1], u)
  if want == '' then
    if cur then
      redis.call('HDEL', KEYS[1], u)
      redis.call('HDEL', KEYS[1 + i], ARGV[1])
      table.insert(out, '-')
      table.insert(out, u)
      table.insert(out, cur)
    end
  elseif cur ~= want then
    redis.call('HSET', KEYS[1], u, want)
    redis.call('HSET', KEYS[1 + i], ARGV[1], want)
    table.insert(out, '+')
    table.insert(out, u)
    table.insert(out, want)
  end
end
return out
