-- Store.load_routing_key: keep the first routing key ever offered.
--
-- KEYS[1]  the routing key, P .. 'routing-key'
-- ARGV[1]  a new key (hex), kept only if there is none yet
--
-- Set-if-absent: of any number of stores starting at once, one key wins
-- and every call returns that one. Never changes a key once set. Returns
-- the key kept.
local kept = redis.call('GET', KEYS[1])
if kept then return kept end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
