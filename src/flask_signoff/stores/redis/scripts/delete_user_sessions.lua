-- Store.delete_user_sessions: delete every session of a user but one.
--
-- KEYS[1]  the user's session index, base .. 'si:' .. user_id
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  the session key to keep ('' for none)
--
-- All in one step: a session created meanwhile is either deleted or
-- created after. Returns how many sessions were deleted.
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then n = n + drop_session(ARGV[1], m) end
end
return n
