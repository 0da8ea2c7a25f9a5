-- One primitive on a record's part (Store.get, set, setIfAbsent, delete, increment, decrement), as
-- the body of record.lua's main(): a plain key takes Redis's own commands instead.
-- KEYS[1]: the record. ARGV[1]: the primitive, then its arguments, then record.lua's place.
-- Returns get: the value or false; set: 1; setIfAbsent and delete: 1 or 0; increment:
-- {count, milliseconds left}; decrement: 1. And for scan, `parts`: each live part of the record
-- by name and the milliseconds it has left, {name, left, name, left, ...}, or false when the key
-- holds something that is not a record (not verifyd's: scan lists it as a plain key).
local op = ARGV[1]
if op == 'get' then
  local value = read(1)
  -- A verification is a Lua array in its record; its bytes are as opaque as a plain key's.
  if type(value) == 'table' then return cmsgpack.pack(value) end
  return value or false
elseif op == 'set' then
  write(1, ARGV[2], now() + ARGV[3] * 1000)
  return 1
elseif op == 'setIfAbsent' then
  return claim(1, ARGV[2], ARGV[3]) and 1 or 0
elseif op == 'delete' then
  return remove(1) and 1 or 0
elseif op == 'increment' then
  local window = tonumber(ARGV[2])
  local n = count(1, window)
  return {n, left(1, window)}
elseif op == 'decrement' then
  uncount(1, false)
  return 1
elseif op == 'parts' then
  local listed, record = {}, records[KEYS[1]]
  if record.foreign then return false end
  for name, j in pairs(record.at) do
    listed[#listed + 1] = name
    listed[#listed + 1] = ms(record.items[j + 1] - now())
  end
  return listed
end
return redis.error_reply('unknown primitive ' .. tostring(op))
