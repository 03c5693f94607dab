-- What a tenant's webhook has yet to deliver.
-- KEYS[1]  the webhook hash   KEYS[2]  the queue   KEYS[3]  its ordinal counter
-- KEYS[4]  the dead letters
-- Returns {pending, id of the oldest pending event or '', dead letters}.

local dead = redis.call('LLEN', KEYS[4])
local cursor = redis.call('HMGET', KEYS[1], 'cursor', 'n')
if not cursor[1] then return {0, '', dead} end
local len = redis.call('XLEN', KEYS[2])
local appended = tonumber(redis.call('GET', KEYS[3]) or '0')
local seen = tonumber(cursor[2]) or 0
local pending = len
-- The counter restarts when an idle queue expired: then everything kept is pending.
if appended >= seen then pending = math.min(len, appended - seen) end
local first = redis.call('XRANGE', KEYS[2], '(' .. cursor[1], '+', 'COUNT', 1)
local oldest = ''
if #first > 0 then oldest = first[1][1] else pending = 0 end
return {pending, oldest, dead}
