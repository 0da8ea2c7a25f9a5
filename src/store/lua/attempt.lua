-- One attempt at a verification (Store.attempt) in one script; verification.lua comes first.
-- KEYS[1]: the verification (as admit.lua writes it), then the failure counters, then the keys to
-- delete on a match.
-- ARGV: hash, max attempts, binding ('' for the open lane, else '+' and the binding), the number
-- of failure counters, then per failure counter its window and max.
-- Returns {'missing'}, {'exhausted', index, pttl}, {'locked'}, {'match', attempts, data?} or
-- {'mismatch', attempts}.
--
-- Reads are one GET (the verification) and one MGET (the failure counters); a wrong code writes
-- the lane's new count back with one SET that keeps the TTL, and counts each failure with one
-- command (INCR, or a SET that opens the window).
local v = decode(redis.pcall('GET', KEYS[1]))
-- Absent, or not a verification (an older layout): nothing to attempt.
if not v then return {'missing'} end

local lane = 'n'
if ARGV[3] ~= '' then
  if v.b ~= string.sub(ARGV[3], 2) then return {'missing'} end
  lane = 'm'
end

local failures = tonumber(ARGV[4])
local counts = {}
if failures > 0 then
  counts = redis.call('MGET', unpack(KEYS, 2, failures + 1))
  for i = 1, failures do
    local count = tonumber(counts[i])
    if count and count >= tonumber(ARGV[4 + i * 2]) then
      local key = KEYS[i + 1]
      local ttl = redis.call('PTTL', key)
      if ttl < 0 then
        redis.call('EXPIRE', key, ARGV[3 + i * 2])
        ttl = ARGV[3 + i * 2] * 1000
      end
      return {'exhausted', i - 1, ttl}
    end
  end
end

local n = v[lane] + 1
-- A used-up lane stays as it is, so every later attempt in it stays locked until expiry.
if n > tonumber(ARGV[2]) then return {'locked'} end

-- Newest first: the code a person most likely typed.
for k = #v.codes, 1, -1 do
  local code = v.codes[k]
  if code[1] == ARGV[1] then
    redis.call('DEL', KEYS[1], unpack(KEYS, failures + 2))
    if code[2] ~= '' then return {'match', n, string.sub(code[2], 2)} end
    return {'match', n}
  end
end

v[lane] = n
redis.call('SET', KEYS[1], encode(v), 'KEEPTTL')
-- A window's first failure opens it: the counts read above tell which windows are open, so one
-- command counts each (nothing ran in between: the script runs alone). A counter that somehow has
-- no TTL gets one when it refuses, above, so it can never refuse forever.
for i = 1, failures do
  local key = KEYS[i + 1]
  if counts[i] then
    redis.call('INCR', key)
  else
    redis.call('SET', key, 1, 'EX', ARGV[3 + i * 2])
  end
end
return {'mismatch', n}
