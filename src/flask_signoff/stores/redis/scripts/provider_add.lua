-- Store.end_provider_sessions, the writing side: enter a session or a
-- family in the index of one provider session, before the record is made.
--
-- KEYS[1]  the index, P{p<h>}:px:<h> (a set)
-- KEYS[2]  its logout counter, P{p<h>}:pn:<h>
-- ARGV[1]  member: 's:' .. session key, or 'f:' .. family_id .. ':' .. user_id
-- ARGV[2]  until_ms, when the record expires at the latest (PEXPIREAT)
--
-- The index and the counter share a slot of their own (not a user's: a
-- provider session may span users). Returns the counter as it is now ('0'
-- when absent): the caller reads it again once the record is made, and a
-- change means a logout of this provider session ran meanwhile.
redis.call('SADD', KEYS[1], ARGV[1])
extend(KEYS[1], ARGV[2])
local n = redis.call('GET', KEYS[2])
if not n then return '0' end
extend(KEYS[2], ARGV[2])
return n
