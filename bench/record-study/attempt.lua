-- A check in the record layout (record.lua and a store-*.lua come first).
-- KEYS: the recipient's record. ARGV: now, code HMAC (10 bytes), attempts allowed, hour window,
-- wrong codes allowed per hour, per day.
local now = tonumber(ARGV[1])
local raw = readRecord()
if not raw then return {'missing'} end
local codeEnd, hash, openLane, boundLane, hourFailures, hourEnd, dayFailures, dayEnd =
  struct.unpack(CHECK, raw)
if codeEnd <= now then return {'missing'} end
if hourEnd > now and hourFailures >= tonumber(ARGV[5]) then return {'exhausted', 0} end
if dayEnd > now and dayFailures >= tonumber(ARGV[6]) then return {'exhausted', 1} end
local n = openLane + 1
if n > tonumber(ARGV[3]) then return {'locked'} end
if hash == ARGV[2] then
  -- Consumed: the code is gone and the hour's wrong codes start over; the rest stays.
  rewrite(raw, 0, struct.pack('>I4c10BBI2', 0, string.rep('\0', 10), 0,
    boundLane, 0))
  return {'match', n}
end
if hourEnd <= now then
  hourFailures = 0
  hourEnd = now + tonumber(ARGV[4])
end
local dayOpened = dayEnd <= now
if dayOpened then
  dayFailures = 0
  dayEnd = now + 86400
end
rewrite(raw, COUNTS_AT, struct.pack(COUNTS, n, boundLane, hourFailures + 1,
  hourEnd, dayFailures + 1, dayEnd))
-- A day window opened now outlives everything else the record holds.
if dayOpened then outlive(dayEnd) end
return {'mismatch', n}
