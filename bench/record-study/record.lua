-- Design study, not used by verifyd (see README.md beside this file): all of one recipient's
-- send and check state in ONE string, so that a send to a new number creates one key and a wrong
-- code creates none. Packed with Redis's `struct` library, 54 bytes:
--
--   cooldown end | sends: count, window end | wrong codes this hour: count, window end |
--   wrong codes today: count, window end | the last client counted: tag, end |
--   attempts in the open and the bound lane | binding (8 bytes) | code HMAC (10 bytes) |
--   the code's end
--
-- Times are epoch seconds (the caller's clock), counts unsigned. One pending code, one purpose and
-- one client marker: enough to measure what the layout costs, not a complete store.
local LAYOUT = '>I4I2I4I2I4I2I4c4I4BBc8c10I4'

local function unpackRecord(raw)
  local r = {}
  r.cooldownEnd, r.sends, r.sendsEnd, r.hourFailures, r.hourEnd, r.dayFailures, r.dayEnd,
    r.clientTag, r.clientEnd, r.openLane, r.boundLane, r.binding, r.hash, r.codeEnd =
    struct.unpack(LAYOUT, raw)
  return r
end

local function packRecord(r)
  return struct.pack(LAYOUT, r.cooldownEnd, r.sends, r.sendsEnd, r.hourFailures, r.hourEnd,
    r.dayFailures, r.dayEnd, r.clientTag, r.clientEnd, r.openLane, r.boundLane, r.binding, r.hash,
    r.codeEnd)
end

-- The record lives as long as the longest of what it holds.
local function lastEnd(r)
  return math.max(r.cooldownEnd, r.sendsEnd, r.hourEnd, r.dayEnd, r.clientEnd, r.codeEnd)
end
