-- Fixed-window counter (Store.increment).
-- KEYS[1]: the counter. ARGV[1]: the window in seconds.
-- Returns {count, milliseconds left in the window}.
-- The EXPIRE also runs when the key somehow has no TTL (-1), so a counter can never become
-- permanent and lock a caller out forever.
local count = redis.call('INCR', KEYS[1])
local ttl = -1
if count > 1 then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = ARGV[1] * 1000
end
return {count, ttl}
