-- A send's admission (Store.admit) in one script, on one server or one cluster slot. Runs as the
-- body of record.lua's main(), whose read/write/claim/count helpers take a KEYS index and work
-- alike on a plain key and on a record's part.
-- KEYS: the gate (when there is one), the counters, the markers of the counters that have one
-- (in counter order), then the verification (when there is a secret).
-- ARGV: gate flag, counter count, gate value, gate TTL, secret flag, hash, TTL, keep, binding,
-- data ('' when absent, else '+' and the data), max attempts, then per counter: window, max,
-- marker flag, marker TTL; then record.lua's places.
-- Returns {'admitted', binding, joined, counted...}, {'gated', value} or
-- {'exceeded', index, pttl}; joined and counted are 1 or 0, binding '' without a secret.
--
-- Counters are counted first and taken back when one is full, and so is the gate this call
-- claimed: the script runs alone, so nobody sees the counts in between, and an admitted send (the
-- usual case) reads no counter before counting it. A counter this call opened is removed rather
-- than left at 0.
local hasGate, counters = tonumber(ARGV[1]), tonumber(ARGV[2])
if hasGate == 1 then
  local won, held = claim(1, ARGV[3], ARGV[4])
  if not won then return {'gated', held} end
end

local first = hasGate
local nextMarker = first + counters + 1
local counts, opened, markers = {}, {}, {}
for i = 1, counters do
  local arg = 12 + (i - 1) * 4
  local counter, window = first + i, tonumber(ARGV[arg])
  counts[i] = 1
  if ARGV[arg + 2] == '1' then
    local marker = nextMarker
    nextMarker = nextMarker + 1
    if claim(marker, '1', ARGV[arg + 3]) then
      markers[i] = marker
    else
      counts[i] = 0
    end
  end
  if counts[i] == 1 then
    local n
    n, opened[i] = count(counter, window)
    if n > tonumber(ARGV[arg + 1]) then
      for j = 1, i do
        if counts[j] == 1 then
          uncount(first + j, opened[j])
          if markers[j] then remove(markers[j]) end
        end
      end
      -- A refused send leaves no cooldown behind either (see Store.admit).
      if hasGate == 1 then remove(1) end
      return {'exceeded', i - 1, left(counter, window)}
    end
  end
end

-- The code joins the live verification, whose oldest code beyond `keep` drops out; a verification
-- with a used-up lane is replaced instead (see SecretWrite), as is anything that is not one.
local binding, joined = '', 0
if ARGV[5] == '1' then
  local at, max = nextMarker, tonumber(ARGV[11])
  local v = readVerification(at)
  if v and (v[2] >= max or v[3] >= max) then v = nil end
  if v then
    joined = 1
  else
    v = {ARGV[9], 0, 0}
  end
  binding = v[1]
  v[#v + 1] = ARGV[6]
  v[#v + 1] = ARGV[10] ~= '' and string.sub(ARGV[10], 2)
  -- The codes are pairs from v[4] onwards: the oldest beyond `keep` drops out.
  while (#v - 3) / 2 > tonumber(ARGV[8]) do
    table.remove(v, 4)
    table.remove(v, 4)
  end
  writeVerification(at, v, now() + ARGV[7] * 1000)
end
return {'admitted', binding, joined, unpack(counts)}
