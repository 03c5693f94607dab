-- Every unread entry → READ. (inbox_lib.lua is prepended.)
-- KEYS[1]  inbox     KEYS[2]  state     KEYS[3]  the user's course index (its TTL)
-- ARGV[1]  idle TTL, ms
-- Returns how many changed.

local inbox, state = KEYS[1], KEYS[2]
inbox_upgrade(state)
if inbox_unread(inbox, state) == 0 then return 0 end
local changed = 0
for _, id in ipairs(redis.call('ZRANGE', inbox, 0, -1)) do
  if redis.call('HSETNX', state, id, 'R') == 1 then changed = changed + 1 end
end
if changed > 0 then
  inbox_touch(ARGV[1])
end
return changed
