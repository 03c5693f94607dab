-- Up to ARGV[2] events after stream id ARGV[1], oldest first; entries past the age bound
-- are trimmed first, so an idle queue never serves them.
-- KEYS[1]  the queue   ARGV[3]  oldest id kept (ms)
-- Returns a flat list: id, ordinal, event JSON, id, ...

redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
local out = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])) do
  local f, n, e = entry[2], '0', ''
  for i = 1, #f, 2 do
    if f[i] == 'n' then n = f[i + 1] elseif f[i] == 'e' then e = f[i + 1] end
  end
  out[#out + 1] = entry[1]
  out[#out + 1] = n
  out[#out + 1] = e
end
return out
