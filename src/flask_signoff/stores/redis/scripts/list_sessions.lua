-- Store.list_sessions: every session of a user, read in one step.
--
-- KEYS[1]  the user's session index, base .. 'si:' .. user_id
-- ARGV[1]  base, the user's key prefix `P{T}:`
--
-- Index members whose session has expired are dropped on the way, so the
-- index never outgrows the live sessions. Returns
-- {member, {field, value, ...}, member, {...}, ...}.
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[1] .. 's:' .. m)
  if #h == 0 then
    redis.call('ZREM', KEYS[1], m)
  else
    out[#out + 1] = m
    out[#out + 1] = h
  end
end
return out
