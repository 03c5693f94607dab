-- Reads a membership hash (a course's members or a user's course index) and, since a read
-- is use (a fan-out, a role check, a connect), gives it its idle TTL again: a course or
-- index that nobody uses for the idle TTL expires.
-- A user's index is read with the user's other keys named after it: a connect is activity
-- of the user, and all of a user's keys expire together.
-- KEYS[1]  the hash   KEYS[2..]  keys that share its TTL (their TTL only)
-- ARGV[1]  idle TTL, ms   ARGV[2]  one field, or "" for all of them
-- Returns the field's value (or nil), or the flat field/value list.

for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
if ARGV[2] == '' then return redis.call('HGETALL', KEYS[1]) end
return redis.call('HGET', KEYS[1], ARGV[2])
