-- Store.revoke_user_families: delete every family of a user with its tokens.
--
-- KEYS[1]  the user's families, base .. 'uf:' .. user_id
-- ARGV[1]  base, the user's key prefix `P{T}:`
--
-- Writes no markers: the caller bumps the user's epoch, which kills the
-- access tokens. All in one step. Returns how many families existed.
local n = 0
for _, fid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. 'f:' .. fid)
  local tokens = ARGV[1] .. 'ft:' .. fid
  for _, m in ipairs(redis.call('SMEMBERS', tokens)) do
    redis.call('DEL', ARGV[1] .. 'r:' .. m)
  end
  redis.call('DEL', tokens)
end
redis.call('DEL', KEYS[1])
return n
