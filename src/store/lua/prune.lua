-- Removes a record's parts whose end has passed (Store.cleanup); see record.lua for their layout.
-- KEYS[1]: the record. Returns how many parts it removed.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local ended = {}
for j = 1, #all, 2 do
  local raw = all[j + 1]
  local space = string.find(raw, ' ', 1, true)
  local ends = space and tonumber(string.sub(raw, 1, space - 1))
  if not ends or ends <= now then ended[#ended + 1] = all[j] end
end
if #ended > 0 then redis.call('HDEL', KEYS[1], unpack(ended)) end
return #ended
