-- A send in the record layout (record.lua and a store-*.lua come first).
-- KEYS: the recipient's record, the client's distinct-recipient counter, the SMS budget.
-- ARGV: now, cooldown, send window, sends allowed, client tag (4 bytes), binding (8), code HMAC
-- (10), code TTL, client window, recipients a client may send to, budget window, budget.
local now = tonumber(ARGV[1])
local raw = readRecord()
local r
if raw then
  r = unpackRecord(raw)
  if r.cooldownEnd > now then return {'gated', r.cooldownEnd} end
else
  r = { cooldownEnd = 0, sends = 0, sendsEnd = 0, hourFailures = 0, hourEnd = 0, dayFailures = 0,
    dayEnd = 0, clientTag = '\0\0\0\0', clientEnd = 0, openLane = 0, boundLane = 0, codeEnd = 0 }
end
if r.sendsEnd <= now then
  r.sends = 0
  r.sendsEnd = now + tonumber(ARGV[3])
end
if r.sends >= tonumber(ARGV[4]) then return {'exceeded', 0} end

-- The client counts this recipient once per its window: the marker is the record's, not a key of
-- its own.
local counted = not (r.clientTag == ARGV[5] and r.clientEnd > now)
if counted then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[9]) end
  if n > tonumber(ARGV[10]) then
    redis.call('DECR', KEYS[2])
    return {'exceeded', 1}
  end
end
local spent = redis.call('INCR', KEYS[3])
if spent == 1 then redis.call('EXPIRE', KEYS[3], ARGV[11]) end
if spent > tonumber(ARGV[12]) then
  redis.call('DECR', KEYS[3])
  if counted then redis.call('DECR', KEYS[2]) end
  return {'exceeded', 2}
end

r.sends = r.sends + 1
r.cooldownEnd = now + tonumber(ARGV[2])
if counted then
  r.clientTag = ARGV[5]
  r.clientEnd = now + tonumber(ARGV[9])
end
r.openLane, r.boundLane, r.binding, r.hash = 0, 0, ARGV[6], ARGV[7]
r.codeEnd = now + tonumber(ARGV[8])
writeRecord(packRecord(r), lastEnd(r))
return {'admitted'}
