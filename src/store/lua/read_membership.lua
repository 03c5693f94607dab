-- Reads a membership hash (a course's members or a user's course index) and, since a read
-- is use (a fan-out, a role check, a connect), gives it its idle TTL again: a course or
-- index that nobody uses for the idle TTL expires.
-- KEYS[1]  the hash   ARGV[1]  idle TTL, ms   ARGV[2]  one field, or "" for all of them
-- Returns the field's value (or nil), or the flat field/value list.

redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ARGV[2] == '' then return redis.call('HGETALL', KEYS[1]) end
return redis.call('HGET', KEYS[1], ARGV[2])
