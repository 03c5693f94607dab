-- The debounce rule of presence/mod.rs `decide`, prepended to the scripts that need it.
-- announced: hash user -> "<1|0>|<ms>", what the course's instructors last heard and when.
-- Returns {verdict, recheck_at}: 'announce' (tell them now, recorded here), 'suppressed'
-- (told too recently: ask again at recheck_at), or 'quiet' (they already know).
local function decide(announced, user, online, now, now_raw, debounce)
  local last = redis.call('HGET', announced, user)
  local state, at = '0', 0
  if last then
    local sep = string.find(last, '|', 1, true)
    state = string.sub(last, 1, sep - 1)
    at = tonumber(string.sub(last, sep + 1))
  end
  local want = online and '1' or '0'
  local open = last and (at + debounce > now)
  if state == want then
    if want == '0' and last and not open then
      redis.call('HDEL', announced, user)
    end
    return {'quiet', 0}
  end
  if open then
    return {'suppressed', at + debounce}
  end
  redis.call('HSET', announced, user, want .. '|' .. now_raw)
  return {'announce', 0}
end
