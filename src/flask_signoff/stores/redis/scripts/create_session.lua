-- Store.create_session: insert a new session, then cap the user's sessions.
--
-- KEYS[1]  the session hash, base .. 's:' .. member
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  member, the session key (hash of the id)
-- ARGV[3]  drop_ms, when Redis drops the session (PEXPIREAT)
-- ARGV[4]  cap, the most sessions the user keeps ('' for no cap)
-- ARGV[5..] the session's field/value pairs
--
-- Never overwrites: an existing key is an error reply. With a cap, the
-- user's oldest sessions beyond it go in the same step, so no reader sees
-- more than `cap`. Returns 1.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('SIGNOFF session key exists')
end
insert_session(ARGV[1], ARGV[2], ARGV[3], ARGV[4], slice(ARGV, 5))
return 1
