-- Store.release: give back one attempt taken by reserve.lua.
--
-- KEYS[1]  the window, P .. 'tw:' .. key
-- ARGV[1]  the end of the window the attempt was taken from
--
-- Only to that window and never below zero. Returns 1 if an attempt was
-- given back, else 0.
local w = redis.call('HMGET', KEYS[1], 'n', 'e')
if w[2] ~= ARGV[1] or (tonumber(w[1]) or 0) < 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', -1)
return 1
