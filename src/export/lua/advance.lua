-- Moves a webhook's delivery cursor, only while ARGV[1] holds the lease (a fence: a node
-- that lost its lease cannot move a cursor another node now owns).
-- KEYS[1]  the lease   KEYS[2]  the webhook hash   KEYS[3]  the dead letters (list)
-- ARGV[1]  holder   ARGV[2]  stream id   ARGV[3]  ordinal
-- ARGV[4]  dead-letter cap   ARGV[5]  dead-letter lifetime, ms   ARGV[6..]  events to
-- dead-letter on the way (JSON each; none for a delivered batch)
-- Returns 1 when moved, 0 when the lease or the webhook is gone.

if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
if #ARGV > 5 then
  for i = 6, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
redis.call('HSET', KEYS[2], 'cursor', ARGV[2], 'n', ARGV[3])
return 1
