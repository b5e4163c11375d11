-- Store.rotate_session, when the old and new keys share a slot: delete the
-- old session and insert the new one in one step.
--
-- KEYS[1]  the new session hash
-- KEYS[2]  the old session hash (absent when there is no old key)
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  member, the new session key
-- ARGV[3]  drop_ms, when Redis drops the new session (PEXPIREAT)
-- ARGV[4]  require_old: '1' to write nothing unless the old session existed
-- ARGV[5]  the old session key ('' for none)
-- ARGV[6..] the new session's field/value pairs
--
-- No reader ever sees both sessions alive; with require_old, a revoked
-- session is never replaced (0). An existing new key is an error reply.
-- Returns 1 when the new session was written.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('SIGNOFF session key exists')
end
local gone = 0
if ARGV[5] ~= '' then gone = drop_session(ARGV[1], ARGV[5]) end
if ARGV[4] == '1' and gone == 0 then return 0 end
insert_session(ARGV[1], ARGV[2], ARGV[3], '', slice(ARGV, 6))
return 1
