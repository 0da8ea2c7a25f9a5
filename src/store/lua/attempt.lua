-- One attempt at a verification (Store.attempt) in one script, as the body of record.lua's main().
-- KEYS[1]: the verification (as admit.lua writes it), then the failure counters, then the keys to
-- delete on a match.
-- ARGV: hash, max attempts, binding ('' for the open lane, else '+' and the binding), the number
-- of failure counters, then per failure counter its window and max; then record.lua's places.
-- Returns {'missing'}, {'exhausted', index, pttl}, {'locked'}, {'match', attempts, data?} or
-- {'mismatch', attempts}.
local v, verificationEnds = readVerification(1)
if not v then return {'missing'} end

-- v[2] counts the open lane's attempts, v[3] the bound lane's.
local lane = 2
if ARGV[3] ~= '' then
  if v[1] ~= string.sub(ARGV[3], 2) then return {'missing'} end
  lane = 3
end

local failures = tonumber(ARGV[4])
local held, ends = {}, {}
for i = 1, failures do
  local value
  value, ends[i] = read(i + 1)
  held[i] = tonumber(value)
  if held[i] and held[i] >= tonumber(ARGV[4 + i * 2]) then
    return {'exhausted', i - 1, left(i + 1, tonumber(ARGV[3 + i * 2]))}
  end
end

-- A lane past its max stays so (its count was written when it reached the max), so every later
-- attempt in it is locked until the verification ends; nothing needs writing.
local n = v[lane] + 1
if n > tonumber(ARGV[2]) then return {'locked'} end

-- The codes are pairs (hash, data) from v[4] onwards, newest last: the code most likely typed is
-- the last one sent.
for k = #v - 1, 4, -2 do
  if v[k] == ARGV[1] then
    remove(1)
    for j = failures + 2, #KEYS do remove(j) end
    if v[k + 1] then return {'match', n, v[k + 1]} end
    return {'match', n}
  end
end

v[lane] = n
writeVerification(1, v, verificationEnds)
-- Each failure window is counted by one step, from what was read above: the script runs alone,
-- so nothing changed in between. A window not open yet is opened by a write with its end.
for i = 1, failures do
  if not held[i] then
    write(i + 1, 1, now() + ARGV[3 + i * 2] * 1000)
  elseif FIELD[i + 1] then
    write(i + 1, held[i] + 1, ends[i])
  else
    redis.call('INCR', KEYS[i + 1])
  end
end
return {'mismatch', n}
