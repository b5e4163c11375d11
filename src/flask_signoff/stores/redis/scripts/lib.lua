-- Functions shared by the scripts: lua.py loads every script as this file
-- followed by the script's own file, so they can call these.
--
-- `base` is a user's key prefix `P{T}:` (keys.py); a function builds the
-- names of that user's keys from it (`base .. 's:' .. member` is a session
-- hash, `si:` the session index, `sp:` a public-id link). All of them share
-- the hash tag `{T}`, so they live in the slot of the keys the script was
-- given, which a cluster requires.

-- Make `key` live at least until `ms` (never shorten its life).
local function extend(key, ms)
  if redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, ms)
  else
    redis.call('PEXPIREAT', key, ms, 'GT')
  end
end

-- Delete a session with its index entry and public-id link; 1 if it existed.
local function drop_session(base, member)
  local skey = base .. 's:' .. member
  local f = redis.call('HMGET', skey, 'user_id', 'public_id')
  if redis.call('DEL', skey) == 0 then return 0 end
  if f[1] then
    redis.call('ZREM', base .. 'si:' .. f[1], member)
    local pub = base .. 'sp:' .. f[2] .. ':' .. f[1]
    if redis.call('GET', pub) == member then redis.call('DEL', pub) end
  end
  return 1
end

-- Insert a session (the caller checked that the key is new). With `cap`,
-- evict the user's oldest sessions (created_at, then key descending) beyond it.
local function insert_session(base, member, drop_ms, cap, fields)
  local skey = base .. 's:' .. member
  redis.call('HSET', skey, unpack(fields))
  redis.call('PEXPIREAT', skey, drop_ms)
  local user = redis.call('HGET', skey, 'user_id')
  if not user then return end
  local idx = base .. 'si:' .. user
  redis.call('ZADD', idx, redis.call('HGET', skey, 'created_at'), member)
  extend(idx, drop_ms)
  local pub = base .. 'sp:' .. redis.call('HGET', skey, 'public_id') .. ':' .. user
  redis.call('SET', pub, member)
  redis.call('PEXPIREAT', pub, drop_ms)
  -- Drop members whose session has expired, then apply the cap.
  local all = redis.call('ZRANGE', idx, 0, -1, 'WITHSCORES')
  local live = {}
  for i = 1, #all, 2 do
    if redis.call('EXISTS', base .. 's:' .. all[i]) == 1 then
      live[#live + 1] = {all[i], tonumber(all[i + 1])}
    else
      redis.call('ZREM', idx, all[i])
    end
  end
  if cap ~= '' and #live > tonumber(cap) then
    table.sort(live, function(a, b)
      if a[2] ~= b[2] then return a[2] > b[2] end
      return a[1] < b[1]
    end)
    for i = tonumber(cap) + 1, #live do drop_session(base, live[i][1]) end
  end
end

-- After a session's expiry moved: its index and link follow, or go with it.
local function follow(base, member, user, public_id, drop_ms)
  if not user then return end
  local idx = base .. 'si:' .. user
  local pub = base .. 'sp:' .. public_id .. ':' .. user
  if redis.call('EXISTS', base .. 's:' .. member) == 1 then
    extend(idx, drop_ms)
    if redis.call('GET', pub) == member then
      redis.call('PEXPIREAT', pub, drop_ms)
    end
  else
    redis.call('ZREM', idx, member)
    if redis.call('GET', pub) == member then redis.call('DEL', pub) end
  end
end

-- The elements of `t` from index `from` on (the record's field/value pairs
-- after the fixed arguments).
local function slice(t, from)
  local out = {}
  for i = from, #t do out[#out + 1] = t[i] end
  return out
end
