-- Store.revoke_family: delete a family and its tokens; mark it revoked.
--
-- KEYS[1]  the family hash, base .. 'f:' .. family_id
-- KEYS[2]  the family's token set, base .. 'ft:' .. family_id
-- KEYS[3]  the user's families, base .. 'uf:' .. user_id
-- KEYS[4]  the revocation marker, base .. 'rv:' .. family_id
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  family_id
-- ARGV[3]  until (seconds): the marker holds this value...
-- ARGV[4]  until_ms: ...and expires then (PEXPIREAT)
--
-- The marker only ever lives longer, never shorter, so a second revocation
-- with an earlier `until` cannot shorten the first. Tolerates absence.
-- Returns 1 if the family existed, else 0.
local cur = redis.call('GET', KEYS[4])
if not cur or tonumber(cur) < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[4], ARGV[3])
  redis.call('PEXPIREAT', KEYS[4], ARGV[4])
end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[1] .. 'r:' .. m)
end
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return existed
