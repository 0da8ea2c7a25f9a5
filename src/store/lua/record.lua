-- The prelude of every script that may touch a record's part (see Store, "Records"). The script's
-- own text follows it as the body of main(), and flush() runs after main() returns.
--
-- KEYS: the Redis keys, each a plain key or the key of a part's record (a record's key may appear
-- more than once). ARGV: the script's own arguments, then one per key saying where its value is:
-- '' in the plain key, '+' and the part's name in the record.
--
-- A record is one string: a MessagePack array of its parts, three items each: name, end (epoch ms)
-- and value. A record is read whole, by one GET, before the script's body runs, and written whole,
-- by one SET, when the body changed it; it expires with the latest end of its parts. In between
-- the body works on Lua values, so however many parts a call touches, a record costs two commands
-- (the commands a script runs are most of what it costs), and its flat layout is one Lua table to
-- decode. A part whose end has passed is absent, as an expired key would be, and is left out when
-- the record is written again: nothing needs sweeping.
local FIELD, WHERE = {}, #ARGV - #KEYS
local records = {}
for i = 1, #KEYS do
  local where = ARGV[WHERE + i]
  if where ~= '' then
    FIELD[i] = string.sub(where, 2)
    records[KEYS[i]] = false
  end
end

-- Redis's clock, read once and only when needed (a check of a number with no record needs none).
local NOW
local function now()
  if not NOW then
    local clock = redis.call('TIME')
    NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  end
  return NOW
end

local function ms(n) return string.format('%.0f', n) end

-- Each record this call names: `items`, as stored (and appended to); `at`, where each live part's
-- name is in `items`; `changed`; `foreign` when something else is at the record's key (another
-- type, or bytes that are not a record), which reads as an empty record.
for key in pairs(records) do
  local items, at, foreign = {}, {}, false
  local raw = redis.pcall('GET', key)
  if type(raw) == 'string' then
    local ok, stored = pcall(cmsgpack.unpack, raw)
    if ok and type(stored) == 'table' then
      items = stored
      for j = 1, #items, 3 do
        local ends = items[j + 1]
        if type(ends) == 'number' and ends > now() then at[items[j]] = j end
      end
    else
      foreign = true
    end
  elseif raw then
    foreign = true -- an error reply: a key of another type
  end
  records[key] = {items = items, at = at, changed = false, foreign = foreign}
end

-- KEYS[i]'s value, or nil when absent or ended; for a part also when it ends (epoch ms).
local function read(i)
  local field = FIELD[i]
  if not field then
    local value = redis.call('GET', KEYS[i])
    if not value then return nil end
    return value
  end
  local record = records[KEYS[i]]
  local j = record.at[field]
  if not j then return nil end
  return record.items[j + 2], record.items[j + 1]
end

-- Writes KEYS[i]'s value, to end at `ends` (epoch ms). A plain key written with no end keeps its
-- TTL (a part always knows its end from the read before).
local function write(i, value, ends)
  local field = FIELD[i]
  if field then
    local record = records[KEYS[i]]
    local items, j = record.items, record.at[field]
    if not j then
      j = #items + 1
      items[j] = field
      record.at[field] = j
    end
    items[j + 1] = ends
    items[j + 2] = value
    record.changed = true
  elseif ends then
    redis.call('SET', KEYS[i], value, 'PX', ms(ends - now()))
  else
    redis.call('SET', KEYS[i], value, 'KEEPTTL')
  end
end

-- Removes KEYS[i]; true when a live value was there.
local function remove(i)
  local field = FIELD[i]
  if not field then return redis.call('DEL', KEYS[i]) == 1 end
  local record = records[KEYS[i]]
  if not record.at[field] then return false end
  record.at[field] = nil
  record.changed = true
  return true
end

-- Writes KEYS[i] only when absent, for `ttl` seconds. Returns true, or false and the value there.
local function claim(i, value, ttl)
  if not FIELD[i] then
    if redis.call('SET', KEYS[i], value, 'NX', 'EX', ttl) then return true end
    return false, redis.call('GET', KEYS[i]) or ''
  end
  local held = read(i)
  if held then return false, held end
  write(i, value, now() + ttl * 1000)
  return true
end

-- Milliseconds left in KEYS[i]'s window of `window` seconds; 0 when absent. A plain counter that
-- somehow has no TTL gets one here, so it can never refuse forever.
local function left(i, window)
  if FIELD[i] then
    local _, ends = read(i)
    return ends and ends - now() or 0
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
  write(i, 1, now() + window * 1000)
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

-- A verification (see SecretWrite) at KEYS[i]: {binding, attempts in the open lane, attempts in
-- the bound lane, then its newest codes oldest first, two items each: hash, and data or false},
-- and when it ends (parts only). In a record it is that array; in a plain key, the array in
-- MessagePack. Anything else there (an older layout) reads as no verification.
local function readVerification(i)
  local v, ends
  if FIELD[i] then
    v, ends = read(i)
  else
    local raw = redis.pcall('GET', KEYS[i])
    if type(raw) == 'string' then
      local ok, decoded = pcall(cmsgpack.unpack, raw)
      if ok then v = decoded end
    end
  end
  if type(v) ~= 'table' or type(v[1]) ~= 'string' or type(v[2]) ~= 'number'
      or type(v[3]) ~= 'number' then
    return nil
  end
  return v, ends
end

local function writeVerification(i, v, ends)
  if FIELD[i] then write(i, v, ends) else write(i, cmsgpack.pack(v), ends) end
end

-- Writes each record the call changed, whole and with its live parts only, to expire with its
-- latest part; a record left with no part is deleted.
local function flush()
  for key, record in pairs(records) do
    if record.changed then
      local items, kept, last = record.items, {}, nil
      for name, j in pairs(record.at) do
        local ends = items[j + 1]
        kept[#kept + 1] = name
        kept[#kept + 1] = ends
        kept[#kept + 1] = items[j + 2]
        if not last or ends > last then last = ends end
      end
      if last then
        redis.call('SET', key, cmsgpack.pack(kept), 'PX', ms(last - now()))
      else
        redis.call('DEL', key)
      end
    end
  end
end

local function main()
