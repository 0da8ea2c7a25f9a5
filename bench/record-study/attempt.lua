-- A check in the record layout (record.lua comes first).
-- KEYS: the recipient's record. ARGV: now, code HMAC (10 bytes), attempts allowed, hour window,
-- wrong codes allowed per hour, per day.
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
local r = unpackRecord(raw)
if r.codeEnd <= now then return {'missing'} end
if r.hourEnd > now and r.hourFailures >= tonumber(ARGV[5]) then return {'exhausted', 0} end
if r.dayEnd > now and r.dayFailures >= tonumber(ARGV[6]) then return {'exhausted', 1} end
local n = r.openLane + 1
if n > tonumber(ARGV[3]) then return {'locked'} end
if r.hash == ARGV[2] then
  -- Consumed: the code is gone, the hour's wrong codes start over, the rest stays.
  r.hash, r.codeEnd, r.openLane, r.hourFailures = string.rep('\0', 10), 0, 0, 0
  redis.call('SET', KEYS[1], packRecord(r), 'EXAT', math.max(lastEnd(r), now + 1))
  return {'match', n}
end
r.openLane = n
if r.hourEnd <= now then
  r.hourFailures = 0
  r.hourEnd = now + tonumber(ARGV[4])
end
if r.dayEnd <= now then
  r.dayFailures = 0
  r.dayEnd = now + 86400
end
r.hourFailures = r.hourFailures + 1
r.dayFailures = r.dayFailures + 1
redis.call('SET', KEYS[1], packRecord(r), 'EXAT', lastEnd(r))
return {'mismatch', n}
