-- The second step of a membership change: a user's course index says the role (or
-- nothing). A change is activity: the index gets its idle TTL again.
-- KEYS[1]  user courses   ARGV[1]  course   ARGV[2]  role, or "" to remove   ARGV[3]  idle TTL, ms

if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
