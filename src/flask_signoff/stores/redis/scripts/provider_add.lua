-- Store.end_provider_sessions, the writing side: enter a session or a
-- family in the index of one provider session, before the record is made.
--
-- KEYS[1]  the index, P{p<h>}:px:<h> (a sorted set)
-- KEYS[2]  its logout counter, P{p<h>}:pn:<h>
-- ARGV[1]  member: 's:' .. session key, or 'f:' .. family_id .. ':' .. user_id
-- ARGV[2]  until_ms, when the record expires at the latest (PEXPIREAT)
-- ARGV[3]  the member's score: until_ms for a session, '+inf' for a family
--
-- The index and the counter share a slot of their own (not a user's: a
-- provider session may span users). Members whose score has passed, by
-- this server's clock (the one that expires the records), are removed
-- first: their sessions are gone, so an index that newer sign-ins keep
-- alive does not keep every session it ever named. A family's member is
-- never removed here: a logout must still mark it revoked after it
-- expired, for the access tokens it issued last. Returns the counter as
-- it is now ('0' when absent): the caller reads it again once the record
-- is made, and a change means a logout of this provider session ran
-- meanwhile.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_ms)
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
extend(KEYS[1], ARGV[2])
local n = redis.call('GET', KEYS[2])
if not n then return '0' end
extend(KEYS[2], ARGV[2])
return n
