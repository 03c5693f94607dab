-- A tenant's storage estimate (usage.rs): writes add to it, the sweep's measure replaces
-- it. It expires with the tenant's inactivity, like the data it describes.
-- KEYS[1]  usage (hash bytes, entries)
-- ARGV[1]  add | set     ARGV[2]  bytes     ARGV[3]  entries     ARGV[4]  idle TTL, ms
-- Returns 1.

if ARGV[1] == 'add' then
  redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'entries', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'bytes', ARGV[2], 'entries', ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
