-- The prelude of every script that may touch a record's part (see Store, "Records"). The script's
-- own text follows it as the body of main(), and outlive() runs after main() returns.
--
-- KEYS: the Redis keys, each a plain key or the hash that holds a part's record (a record's key
-- may appear more than once). ARGV[1..#KEYS] say where each value is: '' in the plain key, '+' and
-- the field in the record. The script's own arguments follow, as ARG.
--
-- A part is a field of its record's hash holding '<end> <value>': when it ends (epoch ms), a space,
-- then its value. A part whose end has passed is absent, as an expired key would be: reads skip it
-- and writes replace it; it takes space until written over, deleted, pruned by Store.cleanup or
-- until the whole record expires. The record's own TTL is kept at the latest end of any part
-- written, so a record never outlives the parts it holds and never lets a live one go.
local FIELD, ARG = {}, {}
for i = 1, #KEYS do
  if ARGV[i] ~= '' then FIELD[i] = string.sub(ARGV[i], 2) end
end
for i = #KEYS + 1, #ARGV do ARG[#ARG + 1] = ARGV[i] end

local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function ms(n) return string.format('%.0f', n) end

-- The latest end written to each record by this call, applied once by outlive().
local latest = {}

-- KEYS[i]'s value, or nil when absent or ended; for a part also when it ends (epoch ms).
local function read(i)
  local field = FIELD[i]
  if not field then
    local value = redis.call('GET', KEYS[i])
    if not value then return nil end
    return value
  end
  local raw = redis.call('HGET', KEYS[i], field)
  if not raw then return nil end
  local space = string.find(raw, ' ', 1, true)
  local ends = space and tonumber(string.sub(raw, 1, space - 1))
  if not ends or ends <= NOW then return nil end
  return string.sub(raw, space + 1), ends
end

-- Writes KEYS[i]'s value, to end at `ends` (epoch ms). A plain key written with no end keeps its
-- TTL (a part always knows its end from the read before).
local function write(i, value, ends)
  local field = FIELD[i]
  if field then
    redis.call('HSET', KEYS[i], field, ms(ends) .. ' ' .. value)
    local key = KEYS[i]
    if not latest[key] or latest[key] < ends then latest[key] = ends end
  elseif ends then
    redis.call('SET', KEYS[i], value, 'PX', ms(ends - NOW))
  else
    redis.call('SET', KEYS[i], value, 'KEEPTTL')
  end
end

-- Removes KEYS[i]; true when a live value was there.
local function remove(i)
  local field = FIELD[i]
  if not field then return redis.call('DEL', KEYS[i]) == 1 end
  local live = read(i) ~= nil
  redis.call('HDEL', KEYS[i], field)
  return live
end

-- Writes KEYS[i] only when absent, for `ttl` seconds. Returns true, or false and the value there.
local function claim(i, value, ttl)
  if not FIELD[i] then
    if redis.call('SET', KEYS[i], value, 'NX', 'EX', ttl) then return true end
    return false, redis.call('GET', KEYS[i]) or ''
  end
  local held = read(i)
  if held then return false, held end
  write(i, value, NOW + ttl * 1000)
  return true
end

-- Milliseconds left in KEYS[i]'s window of `window` seconds; 0 when absent. A plain counter that
-- somehow has no TTL gets one here, so it can never refuse forever.
local function left(i, window)
  if FIELD[i] then
    local _, ends = read(i)
    return ends and ends - NOW or 0
  end
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl == -1 then
    redis.call('EXPIRE', KEYS[i], window)
    return window * 1000
  end
  return math.max(ttl, 0)
end

-- Counts 1 in KEYS[i]'s fixed window of `window` seconds. Returns the count and whether this call
-- opened the window.
local function count(i, window)
  if not FIELD[i] then
    local n = redis.call('INCR', KEYS[i])
    if n == 1 then redis.call('EXPIRE', KEYS[i], window) end
    return n, n == 1
  end
  local value, ends = read(i)
  if value then
    local n = (tonumber(value) or 0) + 1
    write(i, n, ends)
    return n, false
  end
  write(i, 1, NOW + window * 1000)
  return 1, true
end

-- Takes back what count() counted: a window it opened goes, any other loses 1 (never below 0).
local function uncount(i, opened)
  if opened then
    remove(i)
    return
  end
  local value, ends = read(i)
  local n = tonumber(value)
  if not n or n < 1 then return end
  if FIELD[i] then write(i, n - 1, ends) else redis.call('DECR', KEYS[i]) end
end

-- A verification (see SecretWrite) at KEYS[i]: its binding, the attempts of the open (n) and the
-- bound (m) lane, and its newest codes oldest first, each {hash, data or false}; and when it ends
-- (parts only). Anything else there (an older layout) reads as no verification.
local function readVerification(i)
  local raw, ends
  if FIELD[i] then
    raw, ends = read(i)
  else
    raw = redis.pcall('GET', KEYS[i])
    if type(raw) ~= 'string' then raw = nil end
  end
  if not raw then return nil end
  local ok, b, n, m, codes = pcall(cmsgpack.unpack, raw)
  if not ok or type(b) ~= 'string' or type(n) ~= 'number' or type(m) ~= 'number'
      or type(codes) ~= 'table' then
    return nil
  end
  return {b = b, n = n, m = m, codes = codes}, ends
end

local function writeVerification(i, v, ends)
  write(i, cmsgpack.pack(v.b, v.n, v.m, v.codes), ends)
end

local function outlive()
  for key, ends in pairs(latest) do
    local ttl = redis.call('PTTL', key)
    if ttl < 0 or NOW + ttl < ends then redis.call('PEXPIRE', key, ms(ends - NOW)) end
  end
end

local function main()
