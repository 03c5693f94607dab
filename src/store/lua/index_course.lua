-- The second step of a membership change: a user's course index says the role (or
-- nothing). A change is activity of the user: every key of theirs (the index, the inbox
-- order and statuses) gets its idle TTL again, so a user's keys expire together.
-- KEYS[1]  user courses   KEYS[2..]  the user's other keys (their TTL only)
-- ARGV[1]  course   ARGV[2]  role, or "" to remove   ARGV[3]  idle TTL, ms

if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[3]) end
return 1
