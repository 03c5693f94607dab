-- Up to ARGV[1] entries of a presence info hash, as a flat {user, "role|since", ...}.
-- HSCAN in steps, so that a tenant-wide list stops at its limit instead of reading all.
--
-- KEYS[1] info (hash user -> "role|since")   ARGV[1] limit
local limit = tonumber(ARGV[1]) * 2
local out, cursor = {}, '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    if #out >= limit then
      return out
    end
    out[#out + 1] = fields[i]
    out[#out + 1] = fields[i + 1]
  end
until cursor == '0'
return out
