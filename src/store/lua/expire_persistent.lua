-- Gives a key that has no TTL (written before membership expired with inactivity) its
-- idle TTL; a key that has one keeps it (migrate-keys).
-- KEYS[1]  the key   ARGV[1]  idle TTL, ms
-- Returns 1 when a TTL was set.

if redis.call('PTTL', KEYS[1]) ~= -1 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
