-- Store.delete_session_by_public_id: delete a session found by its public
-- id, only if the given user owns it.
--
-- KEYS[1]  the public-id link, base .. 'sp:' .. public_id .. ':' .. user_id
-- ARGV[1]  base, the user's key prefix `P{T}:`
-- ARGV[2]  user_id
-- ARGV[3]  public_id
--
-- Another user's public id is exactly like an unknown one (false). A link
-- whose session is gone is deleted. Returns {member, {field, value, ...}}
-- of the deleted session, or false.
local member = redis.call('GET', KEYS[1])
if not member then return false end
local skey = ARGV[1] .. 's:' .. member
local h = redis.call('HGETALL', skey)
local f = redis.call('HMGET', skey, 'user_id', 'public_id')
if f[1] ~= ARGV[2] or f[2] ~= ARGV[3] then
  if #h == 0 then redis.call('DEL', KEYS[1]) end
  return false
end
drop_session(ARGV[1], member)
return {member, h}
