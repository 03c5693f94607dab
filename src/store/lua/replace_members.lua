-- Replaces a course's membership in one step on the course's own slot; the caller then
-- updates each changed user's course index (a second, per-user step).
--
-- KEYS[1]  course members
-- ARGV[1]  idle TTL, ms (the replacement is activity);  ARGV[2..]  pairs (user, role) of
--          the wanted membership
-- Returns {op, user, role, ...} with op "+" (upserted) or "-" (removed, former role).

local wanted = {}
for i = 2, #ARGV, 2 do wanted[ARGV[i]] = ARGV[i + 1] end
local out = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  if not wanted[flat[i]] then
    redis.call('HDEL', KEYS[1], flat[i])
    table.insert(out, '-')
    table.insert(out, flat[i])
    table.insert(out, flat[i + 1])
  end
end
for i = 2, #ARGV, 2 do
  local u, want = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[1], u) ~= want then
    redis.call('HSET', KEYS[1], u, want)
    table.insert(out, '+')
    table.insert(out, u)
    table.insert(out, want)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
