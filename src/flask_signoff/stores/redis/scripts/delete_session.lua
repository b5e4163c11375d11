-- Store.delete_session: delete a session with its index entry and link.
--
-- KEYS[1]  the session hash
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  member, the session key
--
-- Tolerates absence. Returns 1 if the session existed, else 0.
return drop_session(ARGV[1], ARGV[2])
