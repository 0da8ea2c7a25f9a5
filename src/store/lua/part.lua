-- One primitive on a record's part (Store.get, set, setIfAbsent, delete, increment, decrement), as
-- the body of record.lua's main(): a plain key takes Redis's own commands instead.
-- KEYS[1]: the record. ARG[1]: the primitive, then its arguments.
-- Returns get: the value or false; set: 1; setIfAbsent and delete: 1 or 0; increment:
-- {count, milliseconds left}; decrement: 1.
local op = ARG[1]
if op == 'get' then
  return read(1) or false
elseif op == 'set' then
  write(1, ARG[2], NOW + ARG[3] * 1000)
  return 1
elseif op == 'setIfAbsent' then
  return claim(1, ARG[2], ARG[3]) and 1 or 0
elseif op == 'delete' then
  return remove(1) and 1 or 0
elseif op == 'increment' then
  local window = tonumber(ARG[2])
  local n = count(1, window)
  return {n, left(1, window)}
elseif op == 'decrement' then
  uncount(1, false)
  return 1
end
return redis.error_reply('unknown primitive ' .. tostring(op))
