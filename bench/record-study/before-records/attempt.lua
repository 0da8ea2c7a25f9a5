-- The study's baseline: the script verifyd ran before it kept a recipient's state as one record
-- (commit 7c256b8), kept here unchanged so the figures stay comparable. Not used by verifyd.
-- One attempt at a verification (Store.attempt) in one script.
-- KEYS[1]: the verification (a hash, as admit.lua writes it), then the failure counters, then the
-- keys to delete on a match.
-- ARGV: hash, max attempts, binding ('' for the open lane, else '+' and the binding), the number
-- of failure counters, then per failure counter its window and max.
-- Returns {'missing'}, {'exhausted', index, pttl}, {'locked'}, {'match', attempts, data?} or
-- {'mismatch', attempts}.
--
-- The verification is read whole (one HGETALL of a few short fields) and the failure counters
-- together (one MGET): reads are cheap, and each write (the lane's count, a failure counted or its
-- window opened, the deletes of a match) is one command.
local all = redis.pcall('HGETALL', KEYS[1])
-- Absent, or not a verification (an older layout): nothing to attempt.
if all.err or #all == 0 then return {'missing'} end
local v = {}
for j = 1, #all, 2 do v[all[j]] = all[j + 1] end

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

local n = redis.call('HINCRBY', KEYS[1], lane, 1)
-- A locked lane is kept (not deleted), so every later attempt in it stays locked until expiry.
if n > tonumber(ARGV[2]) then return {'locked'} end

-- The codes still held are h<k> for the newest k down to the first one dropped.
local k = tonumber(v.i) or 0
while k >= 1 do
  local stored = v['h' .. k]
  if not stored then break end
  if stored == ARGV[1] then
    redis.call('DEL', KEYS[1], unpack(KEYS, failures + 2))
    local data = v['d' .. k]
    if data then return {'match', n, data} end
    return {'match', n}
  end
  k = k - 1
end

-- A window's first failure opens it: the counts read above tell which windows are open, so each
-- is counted by one command, an INCR or a SET that opens it (nothing ran in between: the script
-- runs alone). A counter that somehow has no TTL gets one when it refuses, above, so it can never
-- refuse forever.
for i = 1, failures do
  local key = KEYS[i + 1]
  if counts[i] then
    redis.call('INCR', key)
  else
    redis.call('SET', key, 1, 'EX', ARGV[3 + i * 2])
  end
end
return {'mismatch', n}
