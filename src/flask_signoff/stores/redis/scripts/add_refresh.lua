-- Store.add_refresh: the next refresh token of a family, if the family lives.
--
-- KEYS[1]  the family hash, base .. 'f:' .. family_id
-- KEYS[2]  the family's token set, base .. 'ft:' .. family_id
-- KEYS[3]  the user's families, base .. 'uf:' .. user_id
-- KEYS[4]  the refresh-token hash, base .. 'r:' .. member
-- ARGV[1]  family_id
-- ARGV[2]  member, the refresh-token key (hash of the token)
-- ARGV[3]  now (seconds, the caller's clock)
-- ARGV[4]  refresh_ms, when the token expires (PEXPIREAT)
-- ARGV[5..] the token's field/value pairs
--
-- Writes nothing and returns 0 if the family was revoked or has expired by
-- `now`, so a refresh racing a revocation cannot add a token to a dead
-- family. An existing token key is an error reply. Returns 1 when added.
local exp = redis.call('HGET', KEYS[1], 'expires_at')
if not exp or tonumber(exp) <= tonumber(ARGV[3]) then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return redis.error_reply('SIGNOFF refresh key exists')
end
redis.call('HSET', KEYS[4], unpack(slice(ARGV, 5)))
redis.call('PEXPIREAT', KEYS[4], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
extend(KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[1])
extend(KEYS[3], ARGV[4])
return 1
