-- The study's baseline: the script verifyd ran before it kept a recipient's state as one record
-- (commit 7c256b8), kept here unchanged so the figures stay comparable. Not used by verifyd.
-- A send's admission (Store.admit) in one script, on one server or one cluster slot.
-- KEYS: the gate (when there is one), the counters, the markers of the counters that have one
-- (in counter order), then the verification (when there is a secret).
-- ARGV: gate flag, counter count, gate value, gate TTL, secret flag, hash, TTL, keep, binding,
-- data ('' when absent, else '+' and the data), max attempts, then per counter: window, max,
-- marker flag, marker TTL.
-- Returns {'admitted', binding, joined, counted...}, {'gated', value} or
-- {'exceeded', index, pttl}; joined and counted are 1 or 0, binding '' without a secret.
--
-- What a call costs is mostly the commands it runs, so a new verification is written by one HSET
-- (after one EXISTS) and nothing is read that the outcome does not need.
--
-- Counters are counted first and taken back when one is full: the script runs alone, so nobody
-- sees the counts in between, and an admitted send (the usual case) reads no counter before
-- counting it. A counter this call opened is deleted rather than left at 0.
--
-- The verification is a hash: b (binding), i (codes written so far), h<k>/d<k> (the k-th code's
-- hash and data), and n and m (attempts in the open and the bound lane, absent until the first).
-- A new code joins a live verification and the oldest beyond `keep` drops out; a verification
-- with a used-up lane is replaced instead (see SecretWrite).
local hasGate, counters = tonumber(ARGV[1]), tonumber(ARGV[2])
if hasGate == 1 then
  if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[4]) then
    return {'gated', redis.call('GET', KEYS[1]) or ''}
  end
end

-- Counts 1 at `key`; returns the count and whether this call opened the window.
local function count(key, window)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, window) end
  return n, n == 1
end

local first = hasGate
local nextMarker = first + counters + 1
local counts, opened, markers = {}, {}, {}
for i = 1, counters do
  local arg = 12 + (i - 1) * 4
  local key = KEYS[first + i]
  counts[i] = 1
  if ARGV[arg + 2] == '1' then
    local marker = KEYS[nextMarker]
    nextMarker = nextMarker + 1
    if redis.call('SET', marker, 1, 'NX', 'EX', ARGV[arg + 3]) then
      markers[i] = marker
    else
      counts[i] = 0
    end
  end
  if counts[i] == 1 then
    local n
    n, opened[i] = count(key, ARGV[arg])
    if n > tonumber(ARGV[arg + 1]) then
      for j = 1, i do
        if counts[j] == 1 then
          local counted = KEYS[first + j]
          if opened[j] then redis.call('DEL', counted) else redis.call('DECR', counted) end
          if markers[j] then redis.call('DEL', markers[j]) end
        end
      end
      -- A counter left without a TTL (written by something else) would refuse forever.
      local ttl = redis.call('PTTL', key)
      if ttl == -1 then
        redis.call('EXPIRE', key, ARGV[arg])
        ttl = ARGV[arg] * 1000
      end
      return {'exceeded', i - 1, ttl}
    end
  end
end

local binding, joined = '', 0
if ARGV[5] == '1' then
  local key, hash, ttl = KEYS[nextMarker], ARGV[6], ARGV[7]
  local held = nil
  if redis.call('EXISTS', key) == 1 then
    -- Anything at the key that is not a verification (an older layout) is replaced.
    held = redis.pcall('HMGET', key, 'b', 'i', 'n', 'm')
    local max = tonumber(ARGV[11])
    if held.err or not held[1] or (tonumber(held[3]) or 0) >= max
        or (tonumber(held[4]) or 0) >= max then
      redis.call('DEL', key)
      held = nil
    end
  end
  local k = 1
  if held then
    joined = 1
    binding = held[1]
    k = (tonumber(held[2]) or 0) + 1
    redis.call('HSET', key, 'i', k, 'h' .. k, hash)
    local old = k - tonumber(ARGV[8])
    if old >= 1 then redis.call('HDEL', key, 'h' .. old, 'd' .. old) end
  else
    binding = ARGV[9]
    redis.call('HSET', key, 'b', binding, 'i', 1, 'h1', hash)
  end
  if ARGV[10] ~= '' then redis.call('HSET', key, 'd' .. k, string.sub(ARGV[10], 2)) end
  redis.call('EXPIRE', key, ttl)
end
return {'admitted', binding, joined, unpack(counts)}
