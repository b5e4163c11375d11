-- Store.create_family: a refresh family and its first token, in one step.
--
-- KEYS[1]  the family hash, base .. 'f:' .. family_id
-- KEYS[2]  the family's token set, base .. 'ft:' .. family_id
-- KEYS[3]  the user's families, base .. 'uf:' .. user_id
-- KEYS[4]  the refresh-token hash, base .. 'r:' .. member
-- ARGV[1]  family_id
-- ARGV[2]  member, the refresh-token key (hash of the token)
-- ARGV[3]  family_ms, when the family expires (PEXPIREAT)
-- ARGV[4]  refresh_ms, when the token expires
-- ARGV[5]  tokens_ms, the later of the two, for the token set and the
--          user's families
-- ARGV[6]  nf, how many ARGV hold the family's field/value pairs
-- ARGV[7..] nf family field/value pairs, then the token's
--
-- Never overwrites: an existing family or token is an error reply. The
-- user's families drop those that expired (by Redis's clock). Returns 1.
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return redis.error_reply('SIGNOFF family or refresh key exists')
end
local nf = tonumber(ARGV[6])
local ff, rf = {}, {}
for i = 7, 6 + nf do ff[#ff + 1] = ARGV[i] end
for i = 7 + nf, #ARGV do rf[#rf + 1] = ARGV[i] end
local t = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (t[1] * 1000))
redis.call('HSET', KEYS[1], unpack(ff))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[4], unpack(rf))
redis.call('PEXPIREAT', KEYS[4], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[3], 'GT', ARGV[5], ARGV[1])
  extend(KEYS[3], ARGV[5])
end
return 1
