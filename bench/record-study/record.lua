-- Design study, not used by verifyd (see README.md beside this file): all of one recipient's
-- send and check state in ONE string, so that a send to a new number creates one key and a wrong
-- code creates none. Packed with Redis's `struct` library, 54 bytes, in two parts:
--
--   what a check reads and writes: the code's end | code HMAC (10 bytes) | attempts in the open
--     and the bound lane | wrong codes this hour: count, window end | today: count, window end
--   what only a send needs: cooldown end | sends: count, window end | the last client counted:
--     tag (4 bytes), end | binding (8 bytes)
--
-- A check unpacks only the first part and rewrites only its counts (SETRANGE), so it never
-- decodes or re-encodes the whole record. Times are epoch seconds (the caller's clock). One
-- pending code, one purpose and one client marker: enough to measure what the layout costs, not
-- a complete store.
local CHECK = '>I4c10BBI2I4I2I4'
local COUNTS = '>BBI2I4I2I4'
local COUNTS_AT = 14 -- zero-based offset of the counts: after the code's end and its HMAC
local SEND = 'I4I2I4c4I4c8'

local function unpackRecord(raw)
  local r = {}
  r.codeEnd, r.hash, r.openLane, r.boundLane, r.hourFailures, r.hourEnd, r.dayFailures, r.dayEnd,
    r.cooldownEnd, r.sends, r.sendsEnd, r.clientTag, r.clientEnd, r.binding =
    struct.unpack(CHECK .. SEND, raw)
  return r
end

local function packRecord(r)
  return struct.pack(CHECK .. SEND, r.codeEnd, r.hash, r.openLane, r.boundLane, r.hourFailures,
    r.hourEnd, r.dayFailures, r.dayEnd, r.cooldownEnd, r.sends, r.sendsEnd, r.clientTag,
    r.clientEnd, r.binding)
end

-- The record lives as long as the longest of what it holds.
local function lastEnd(r)
  return math.max(r.cooldownEnd, r.sendsEnd, r.hourEnd, r.dayEnd, r.clientEnd, r.codeEnd)
end
