-- One attempt at a verification (Store.attempt) in one script.
-- KEYS[1]: the verification (a hash, as admit.lua writes it), then the failure counters, then the
-- keys to delete on a match.
-- ARGV: hash, max attempts, binding ('' for the open lane, else '+' and the binding), the number
-- of failure counters, then per failure counter its window and max.
-- Returns {'missing'}, {'exhausted', index, pttl}, {'locked'}, {'match', attempts, data?} or
-- {'mismatch', attempts}.
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {'missing'} end
local lane = 'n'
if ARGV[3] ~= '' then
  if redis.call('HGET', KEYS[1], 'b') ~= string.sub(ARGV[3], 2) then return {'missing'} end
  lane = 'm'
end
local failures = tonumber(ARGV[4])
for i = 1, failures do
  local key = KEYS[i + 1]
  local count = tonumber(redis.call('GET', key))
  if count and count >= tonumber(ARGV[4 + i * 2]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, ARGV[3 + i * 2])
      ttl = ARGV[3 + i * 2] * 1000
    end
    return {'exhausted', i - 1, ttl}
  end
end
local n = redis.call('HINCRBY', KEYS[1], lane, 1)
-- A locked lane is kept (not deleted), so every later attempt in it stays locked until expiry.
if n > tonumber(ARGV[2]) then return {'locked'} end
-- The codes still held are h<k> for the newest k down to the first one dropped.
local k = tonumber(redis.call('HGET', KEYS[1], 'i')) or 0
while k >= 1 do
  local stored = redis.call('HGET', KEYS[1], 'h' .. k)
  if not stored then break end
  if stored == ARGV[1] then
    local data = redis.call('HGET', KEYS[1], 'd' .. k)
    redis.call('DEL', KEYS[1])
    for c = failures + 2, #KEYS do redis.call('DEL', KEYS[c]) end
    if data then return {'match', n, data} end
    return {'match', n}
  end
  k = k - 1
end
for i = 1, failures do
  local key = KEYS[i + 1]
  if redis.call('INCR', key) == 1 or redis.call('PTTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[3 + i * 2])
  end
end
return {'mismatch', n}
