-- Store.end_provider_sessions, the ending side: count a logout of one
-- provider session and read what its index holds, in one step.
--
-- KEYS[1]  the index, P{p<h>}:px:<h> (a sorted set)
-- KEYS[2]  its logout counter, P{p<h>}:pn:<h>
-- ARGV[1]  floor_ms: the counter lives at least until then (PEXPIREAT)
--
-- Every member entered before this step is returned; a member entered
-- after it was entered by a sign-in that read the counter already
-- incremented, so that sign-in does not mistake this logout for its own.
-- Members are removed by the caller once their records are ended (ZREM):
-- an interrupted logout leaves them for the next one. Returns the members.
redis.call('INCR', KEYS[2])
extend(KEYS[2], ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
