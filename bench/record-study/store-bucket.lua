-- Where a record lives (comes after record.lua): a field of a hash shared by many recipients.
-- KEYS[1] is the bucket, the last ARGV the recipient's field. A hash of up to 128 short fields is
-- one listpack, with no key, key-table entry or expiry-table entry per record, which is what makes
-- it smaller than a key per record. The price: Redis 7.0 has no TTL per field (7.4's HEXPIRE
-- would), so a record whose ends have all passed stays until sweep.lua removes it, and a bucket
-- has no TTL of its own (it disappears with its last field).
local FIELD = ARGV[#ARGV]

local function readRecord()
  return redis.call('HGET', KEYS[1], FIELD)
end

local function writeRecord(value, _expiresAt)
  redis.call('HSET', KEYS[1], FIELD, value)
end

local function rewrite(raw, offset, bytes)
  redis.call('HSET', KEYS[1], FIELD, raw:sub(1, offset) .. bytes .. raw:sub(offset + #bytes + 1))
end

local function outlive(_expiresAt) end
