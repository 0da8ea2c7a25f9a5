-- Takes 1 back from a counter (Store.decrement). DECR keeps the TTL, but on an absent key it would
-- create a permanent -1, hence the checks; anything but a positive integer string is left alone.
-- KEYS[1]: the counter. Returns the new count, or 0 when nothing was taken.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < 1 then return 0 end
return redis.call('DECR', KEYS[1])
