-- Store.reserve: take one attempt of a throttle window, if any is left.
--
-- KEYS[1]  the window, P .. 'tw:' .. key: a hash of count `n`, end `e`
-- ARGV[1]  limit, the attempts a window allows
-- ARGV[2]  the window's length in ms, used if a new window opens (PEXPIRE,
--          on Redis's own clock)
-- ARGV[3]  the window's end on the caller's clock, kept to name the window
--
-- At most `limit` calls per window are granted, each seeing its own count.
-- The window's end is set when the window opens and never moves: a refused
-- attempt writes nothing, so a locked key is free again once it expires.
-- Returns {granted (1 or 0), attempts counted, the window's end}.
local w = redis.call('HMGET', KEYS[1], 'n', 'e')
local n = tonumber(w[1])
if not n then
  redis.call('HSET', KEYS[1], 'n', 1, 'e', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 1, ARGV[3]}
end
if n >= tonumber(ARGV[1]) then return {0, n, w[2]} end
return {1, redis.call('HINCRBY', KEYS[1], 'n', 1), w[2]}
