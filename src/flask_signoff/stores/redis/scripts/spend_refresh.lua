-- Store.spend_refresh: mark a refresh token spent, compare-and-set.
--
-- KEYS[1]  the refresh-token hash, base .. 'r:' .. member
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  now (seconds, the caller's clock), written as spent_at
--
-- Of any number of concurrent calls on one token exactly one gets
-- 'spent'; the others get 'already_spent' with the record as it was. A
-- token whose family is gone or expired by `now` is 'missing'. Returns
-- {'missing'} or {status, {field, value, ...}} (the fields before this call).
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {'missing'} end
local fid = redis.call('HGET', KEYS[1], 'family_id')
local exp = redis.call('HGET', ARGV[1] .. 'f:' .. fid, 'expires_at')
if not exp or tonumber(exp) <= tonumber(ARGV[2]) then return {'missing'} end
if redis.call('HEXISTS', KEYS[1], 'spent_at') == 1 then
  return {'already_spent', h}
end
redis.call('HSET', KEYS[1], 'spent_at', ARGV[2])
return {'spent', h}
