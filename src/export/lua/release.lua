-- Gives a delivery lease back, if ARGV[1] still holds it.
-- KEYS[1]  the lease   ARGV[1]  holder

if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
