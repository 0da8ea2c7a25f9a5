-- Removes the records of one bucket whose ends have all passed (record.lua comes first).
-- KEYS[1]: the bucket. ARGV[1]: now. Returns how many records it looked at and how many it removed.
local now = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local dead = {}
for i = 1, #all, 2 do
  if lastEnd(unpackRecord(all[i + 1])) <= now then dead[#dead + 1] = all[i] end
end
if #dead > 0 then redis.call('HDEL', KEYS[1], unpack(dead)) end
return {#all / 2, #dead}
