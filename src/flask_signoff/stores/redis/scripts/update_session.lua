-- Store.update_session and Store.touch_session: a conditional write.
--
-- KEYS[1]  the session hash
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  member, the session key
-- ARGV[3]  drop_ms, the session's new drop time (PEXPIREAT)
-- ARGV[4..] the field/value pairs to write
--
-- Writes only if the session still exists, so a save racing a sign-out
-- never brings it back (0). The user's index and public-id link follow the
-- new expiry. Returns 1 when written.
local f = redis.call('HMGET', KEYS[1], 'user_id', 'public_id')
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(slice(ARGV, 4)))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
follow(ARGV[1], ARGV[2], f[1], f[2], ARGV[3])
return 1
