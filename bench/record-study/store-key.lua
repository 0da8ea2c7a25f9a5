-- Where a record lives (comes after record.lua): one key per recipient, KEYS[1], which lives until
-- the last thing it holds ends.
local function readRecord()
  return redis.call('GET', KEYS[1])
end

local function writeRecord(value, expiresAt)
  redis.call('SET', KEYS[1], value, 'EXAT', expiresAt)
end

-- Overwrites part of the stored record `raw` with `bytes`, from the zero-based `offset`.
local function rewrite(_raw, offset, bytes)
  redis.call('SETRANGE', KEYS[1], offset, bytes)
end

-- The record now holds something that ends at `expiresAt`, later than anything before.
local function outlive(expiresAt)
  redis.call('EXPIREAT', KEYS[1], expiresAt)
end
