"""Redis store on redis-py: a standalone server or a Redis Cluster.

URLs
----

``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS) and
``unix:///path/to/redis.sock?db=0`` reach one server (or a proxy).
``redis+cluster://[user:password@]host:port`` (``rediss+cluster://`` with TLS)
reaches a Redis Cluster through any one of its nodes; the client learns the
others from it. A separate scheme, rather than a query flag, makes the choice
visible at a glance and keeps ``redis://`` URLs meaning what redis-py says.

Key layout
----------

Every key of one user shares the hash tag ``{<tag>}``, where ``tag`` is
:func:`~flask_signoff.core.ids.key_tag` of a store key or
:meth:`RedisStore.user_tag` of a user id (the two agree: a signed-in user's
session ids and refresh tokens carry the user's tag). So on a cluster all of a
user's keys live in one slot, every script below touches one slot, and a
lookup from a cookie or a token goes to the right node at once, without a
second round trip: that is why the tag is in the credential at all.

The tag is HMAC-SHA256 of the user id under the routing key
``Prouting-key``: 32 random bytes (hex), made by the first store that needs
them (``GET``, then a set-if-absent script if there is none) and never
changed. It has no TTL, so no ``volatile-*`` eviction policy can drop it (an
``allkeys-*`` one can drop any key, this one too). It is no secret from
whoever can read the other keys, which name their user ids anyway; to anyone
else, a credential's tag does not tell whose it is. Deleted alone, it would
move every user to another slot, and a sign-out everywhere would miss the
sessions made before: delete it only with everything else under the prefix,
every worker stopped.

With ``P`` the key prefix:

==============================  ======  ========================================
key                             type    holds
==============================  ======  ========================================
``P{T}:s:<key>``                hash    a session (fields of SessionRecord)
``P{T}:si:<user_id>``           zset    the user's session keys by created_at
``P{T}:sp:<public_id>:<user>``  string  public id -> session key
``P{T}:e:<user_id>``            string  the user's epoch (INCR)
``P{T}:f:<family_id>``          hash    a refresh family
``P{T}:ft:<family_id>``         set     the family's refresh-token keys
``P{T}:uf:<user_id>``           zset    the user's family ids, by expiry (ms)
``P{T}:r:<key>``                hash    a refresh token
``P{T}:rv:<family_id>``         string  revocation marker (value: ``until``)
``Prouting-key``                string  the routing key (hex), for every user
``Ptw:<key>``                   hash    a throttle window: count ``n``, end ``e``
==============================  ======  ========================================

Throttle windows belong to an account or an address, not to a user's slot:
they carry no hash tag, and each script on them touches that one key.

A record is one hash with one field per attribute (``None`` is an absent
field; floats are written with :func:`repr`, which round-trips exactly).
Hashes rather than JSON strings because the scripts change single fields
(``last_seen_at``, ``spent_at``) in place: Redis's Lua JSON encoder prints
numbers with 14 significant digits and would round the times.

Expiry is native: each record gets ``PEXPIREAT`` at its ``drop_at`` (session),
``expires_at`` (family, refresh token) or ``until`` (marker), so no purge job is
needed and :meth:`RedisStore.purge_expired` returns 0. The session index and
the public-id links expire with the sessions they point to, and the index drops
members whose session is gone whenever a session is created or listed, so it
never grows past the per-user cap. Only the hashes of secrets are stored.

Atomicity
---------

Every operation that must be atomic (conditional save and touch, rotation,
creation with cap eviction, spending a refresh token, adding one to a live
family, revocations) is one Lua script. Lua rather than WATCH/MULTI/EXEC:
a script runs in one round trip and cannot lose a race, where an optimistic
transaction costs at least three round trips and must be retried under
contention (eight clients spending one refresh token would mostly retry);
scripts also work the same on a cluster, while redis-py's cluster pipelines
support transactions only in recent versions. Single-key operations (reads,
``INCR`` of an epoch) are plain commands.

Eviction
--------

Revocation markers and epochs are ordinary keys. A Redis that evicts keys
when it reaches ``maxmemory`` (any ``maxmemory-policy`` but ``noeviction``,
common on a server shared with a cache) may drop them, and a revoked token
then works again. :meth:`RedisStore.check_config` reads the policy of the
server, or of every master of a cluster, and refuses anything else unless
the store was made with ``allow_eviction`` (``SIGNOFF_REDIS_ALLOW_EVICTION``):
the extension calls it before serving anything. Under ``noeviction`` a full
Redis refuses writes with ``OOM``, which fails closed (below).

Failures
--------

Socket connect and read timeouts are ``timeout`` seconds. Commands are not
retried by the client: retrying a write after a timeout could apply it twice
(spend a refresh token twice, bump an epoch twice). Any connection, timeout or
cluster-state error, and the replies of a server that is up but refuses
writes (``OOM`` at ``maxmemory`` under ``noeviction``, ``MISCONF``,
``NOREPLICAS``, ``BUSY``, ``READONLY``), becomes
:class:`~flask_signoff.exceptions.StoreUnavailable`; any other Redis error
:class:`~flask_signoff.exceptions.StoreError`.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import redis
import redis.exceptions as rexc
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.retry import Retry

from ..core.ids import key_tag
from ..core.records import (
    AccessState,
    FamilyRecord,
    RefreshRecord,
    Reserved,
    SessionRecord,
    SpendResult,
    SpendStatus,
)
from ..core.store import Store
from ..exceptions import ConfigError, StoreError, StoreUnavailable

T = TypeVar("T")

#: Errors that mean "Redis is not reachable or not serving", not "wrong call".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.ReadOnlyError,
    rexc.OutOfMemoryError,
    rexc.RedisClusterException,
    OSError,
)

#: Error replies of a server that is up but not serving writes: failing to
#: persist (``stop-writes-on-bgsave-error``), short of replicas
#: (``min-replicas-to-write``), busy running a script, or without its master.
#: redis-py has no class for them; they are plain ``ResponseError``.
_UNAVAILABLE_REPLIES = ("MISCONF ", "NOREPLICAS ", "BUSY ", "MASTERDOWN ")

#: URL schemes of a Redis Cluster, and what redis-py calls them.
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# -- Lua ------------------------------------------------------------------------

_LUA_LIB = """
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

local function slice(t, from)
  local out = {}
  for i = from, #t do out[#out + 1] = t[i] end
  return out
end
"""

#: KEYS: session. ARGV: base, member, drop_ms, cap, fields...
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('SIGNOFF session key exists')
end
insert_session(ARGV[1], ARGV[2], ARGV[3], ARGV[4], slice(ARGV, 5))
return 1
"""

#: KEYS: new session[, old session]. ARGV: base, member, drop_ms,
#: require_old, old member ('' for none), fields...
_ROTATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('SIGNOFF session key exists')
end
local gone = 0
if ARGV[5] ~= '' then gone = drop_session(ARGV[1], ARGV[5]) end
if ARGV[4] == '1' and gone == 0 then return 0 end
insert_session(ARGV[1], ARGV[2], ARGV[3], '', slice(ARGV, 6))
return 1
"""

#: KEYS: session. ARGV: base, member, drop_ms, fields...
_UPDATE = """
local f = redis.call('HMGET', KEYS[1], 'user_id', 'public_id')
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(slice(ARGV, 4)))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
follow(ARGV[1], ARGV[2], f[1], f[2], ARGV[3])
return 1
"""

#: KEYS: session. ARGV: base, member.
_DELETE = """
return drop_session(ARGV[1], ARGV[2])
"""

#: KEYS: index. ARGV: base. Returns {member, {field, value, ...}, ...}.
_LIST = """
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
"""

#: KEYS: public-id link. ARGV: base, user_id, public_id.
_DELETE_BY_PUBLIC_ID = """
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
"""

#: KEYS: index. ARGV: base, member to keep ('' for none).
_DELETE_USER_SESSIONS = """
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then n = n + drop_session(ARGV[1], m) end
end
return n
"""

#: KEYS: family, family tokens, user families, refresh.
#: ARGV: family_id, member, family_ms, refresh_ms, tokens_ms, n family fields,
#: family fields..., refresh fields...
_CREATE_FAMILY = """
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
"""

#: KEYS: family, family tokens, user families, refresh.
#: ARGV: family_id, member, now, refresh_ms, fields...
_ADD_REFRESH = """
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
"""

#: KEYS: refresh. ARGV: base, now.
_SPEND = """
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
"""

#: KEYS: routing key. ARGV: a new key, kept only if there is none yet.
_ROUTING_KEY = """
local kept = redis.call('GET', KEYS[1])
if kept then return kept end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

#: KEYS: counter. ARGV: window length in ms, used if a new window opens.
#: KEYS: window. ARGV: limit, window (ms), the window's end (caller's clock).
#: The window's end is set when the window opens and never moves: a refused
#: attempt writes nothing, so a locked key is free again once it expires.
_RESERVE = """
local w = redis.call('HMGET', KEYS[1], 'n', 'e')
local n = tonumber(w[1])
if not n then
  redis.call('HSET', KEYS[1], 'n', 1, 'e', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 1, ARGV[3]}
end
if n >= tonumber(ARGV[1]) then return {0, n, w[2]} end
return {1, redis.call('HINCRBY', KEYS[1], 'n', 1), w[2]}
"""

#: KEYS: window. ARGV: the end of the window the attempt was taken from.
_RELEASE = """
local w = redis.call('HMGET', KEYS[1], 'n', 'e')
if w[2] ~= ARGV[1] or (tonumber(w[1]) or 0) < 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', -1)
return 1
"""

#: KEYS: family, family tokens, user families, marker.
#: ARGV: base, family_id, until, until_ms.
_REVOKE_FAMILY = """
local cur = redis.call('GET', KEYS[4])
if not cur or tonumber(cur) < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[4], ARGV[3])
  redis.call('PEXPIREAT', KEYS[4], ARGV[4])
end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[1] .. 'r:' .. m)
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
"""

#: KEYS: user families. ARGV: base.
_REVOKE_USER_FAMILIES = """
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
"""


# -- encoding ---------------------------------------------------------------------


def _num(value: float) -> str:
    return repr(float(value))


def _ms(value: float) -> str:
    """Unix seconds -> the PEXPIREAT argument, never before ``value``."""
    return str(math.ceil(value * 1000))


def _pairs(values: dict[str, str | None]) -> list[str]:
    out: list[str] = []
    for name, value in values.items():
        if value is not None:
            out += [name, value]
    return out


def _session_fields(record: SessionRecord) -> list[str]:
    return _pairs(
        {
            "tag": record.tag,
            "public_id": record.public_id,
            "user_id": record.user_id,
            "data": record.data,
            "created_at": _num(record.created_at),
            "last_seen_at": _num(record.last_seen_at),
            "expires_at": _num(record.expires_at),
            "drop_at": _num(record.drop_at),
            "remember": "1" if record.remember else "0",
            "fresh_until": _num(record.fresh_until),
            "ip": record.ip,
            "user_agent": record.user_agent,
            "auth_stamp": record.auth_stamp,
        }
    )


def _as_dict(flat: Sequence[str] | dict[str, str]) -> dict[str, str]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _session(key: str, h: dict[str, str]) -> SessionRecord:
    return SessionRecord(
        key=key,
        tag=h["tag"],
        public_id=h["public_id"],
        user_id=h.get("user_id"),
        data=h["data"],
        created_at=float(h["created_at"]),
        last_seen_at=float(h["last_seen_at"]),
        expires_at=float(h["expires_at"]),
        drop_at=float(h["drop_at"]),
        remember=h["remember"] == "1",
        fresh_until=float(h["fresh_until"]),
        ip=h.get("ip"),
        user_agent=h.get("user_agent"),
        # Absent from records written before stamps existed: bound to none.
        auth_stamp=h.get("auth_stamp", ""),
    )


def _refresh_fields(record: RefreshRecord) -> list[str]:
    return _pairs(
        {
            "family_id": record.family_id,
            "user_id": record.user_id,
            "issued_at": _num(record.issued_at),
            "expires_at": _num(record.expires_at),
            "spent_at": None if record.spent_at is None else _num(record.spent_at),
        }
    )


def _refresh(key: str, h: dict[str, str]) -> RefreshRecord:
    spent = h.get("spent_at")
    return RefreshRecord(
        key=key,
        family_id=h["family_id"],
        user_id=h["user_id"],
        issued_at=float(h["issued_at"]),
        expires_at=float(h["expires_at"]),
        spent_at=None if spent is None else float(spent),
    )


def _routing_key(kept: str) -> bytes:
    try:
        key = bytes.fromhex(kept)
    except ValueError:
        key = b""
    if len(key) != 32:
        # Tagging under some other key would give users new tags: refuse.
        raise StoreError("The store's routing key is not 32 bytes of hex.")
    return key


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


#: The setting that lets a store start on a Redis that may evict keys.
ALLOW_EVICTION_SETTING = "SIGNOFF_REDIS_ALLOW_EVICTION"

_NOEVICTION = "noeviction"
_FIX = (
    "run `CONFIG SET maxmemory-policy noeviction` on it and put "
    "`maxmemory-policy noeviction` in its redis.conf (or your service's "
    "parameters), so that it survives a restart"
)
_OPT_OUT = (
    "If your service does not let you check or change it, set "
    f"{ALLOW_EVICTION_SETTING} = True: you then guarantee yourself that this "
    "Redis never evicts keys (maxmemory-policy noeviction in the service's "
    "settings)."
)


class EvictionPolicy(NamedTuple):
    """The ``maxmemory-policy`` of one Redis server (a master of a cluster)."""

    #: ``host:port`` (or the socket path) of the server.
    node: str
    #: The policy, or ``None`` if it could not be read.
    policy: str | None
    #: Why it could not be read (the server's error reply).
    error: str | None = None

    def __str__(self) -> str:
        if self.policy is not None:
            return f"Redis {self.node} has maxmemory-policy {self.policy!r}"
        return (
            f"the maxmemory-policy of Redis {self.node} could not be read "
            f"({self.error})"
        )


class RedisStore(Store):
    """Sessions and tokens in Redis or a Redis Cluster, with native expiry.

    :param url: ``redis://``, ``rediss://``, ``unix://`` for one server,
        ``redis+cluster://host:port`` (or ``rediss+cluster://``) for a cluster.
    :param key_prefix: prefix of every key, so several apps can share a
        server. It may not contain ``{`` or ``}``: the hash tag must be ours.
    :param timeout: seconds to connect and to wait for any reply.
    :param allow_eviction: start even on a Redis whose ``maxmemory-policy``
        may evict keys, or whose policy cannot be read (a managed service
        that hides ``CONFIG``); see :meth:`check_config`.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "signoff:",
        timeout: float = 5.0,
        allow_eviction: bool = False,
        **_ignored: Any,
    ) -> None:
        if "{" in key_prefix or "}" in key_prefix:
            raise StoreError(
                f"The Redis key prefix {key_prefix!r} may not contain '{{' or '}}': "
                "they would change which cluster slot a key lands in."
            )
        self.prefix = key_prefix
        self.timeout = timeout
        self.allow_eviction = allow_eviction
        scheme, sep, rest = url.partition("://")
        self.cluster = scheme.lower() in _CLUSTER_SCHEMES
        self._url = (
            f"{_CLUSTER_SCHEMES[scheme.lower()]}{sep}{rest}" if self.cluster else url
        )
        self._client: redis.Redis | RedisCluster | None = None
        self._lock = threading.Lock()
        self._scripts: dict[str, Script] = {}

    # -- plumbing ------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": True,
        }

    @property
    def client(self) -> redis.Redis | RedisCluster:
        """The redis-py client, made on first use.

        A cluster client reads the slot map when it is made, so it is made
        lazily: constructing a store never touches the network, and an
        outage at start-up surfaces as :class:`StoreUnavailable` on first use.
        """
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> redis.Redis | RedisCluster:
        if self.cluster:
            return RedisCluster.from_url(self._url, **self._options())
        return redis.Redis.from_url(self._url, **self._options())

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; no redis-py exception leaves this module."""
        try:
            return fn()
        except _UNAVAILABLE as e:
            raise StoreUnavailable(
                f"The session store (Redis) is unavailable: {type(e).__name__}"
            ) from e
        except rexc.RedisError as e:
            if isinstance(e, rexc.ResponseError) and str(e).startswith(
                _UNAVAILABLE_REPLIES
            ):
                raise StoreUnavailable(
                    "The session store (Redis) is not serving: "
                    f"{str(e).partition(' ')[0]}"
                ) from e
            raise StoreError(f"The session store (Redis) failed: {e}") from e

    def _script(self, name: str, body: str) -> Script:
        script = self._scripts.get(name)
        if script is None:
            script = self.client.register_script(_LUA_LIB + body)
            self._scripts[name] = script
        return script

    def _run(self, name: str, body: str, keys: list[str], args: list[str]) -> Any:
        return self._guard(lambda: self._script(name, body)(keys=keys, args=args))

    def _base(self, tag: str) -> str:
        return f"{self.prefix}{{{tag}}}:"

    def _skey(self, key: str) -> str:
        return f"{self._base(key_tag(key))}s:{key}"

    def _check_user_tag(self, key: str, user_id: str | None, what: str) -> None:
        # All of a user's keys must share one slot; see the module docstring.
        if user_id is not None and key_tag(key) != self.user_tag(user_id):
            raise StoreError(
                f"A signed-in {what} key must carry its user's tag (Store.user_tag)."
            )

    def load_routing_key(self) -> bytes:
        name = f"{self.prefix}routing-key"
        # A plain read first: once the key exists (every time but the very
        # first) this works even while the server refuses writes.
        kept = self._guard(lambda: self.client.get(name))
        if kept is None:
            kept = self._run(
                "routing_key", _ROUTING_KEY, [name], [secrets.token_hex(32)]
            )
        return _routing_key(str(kept))

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            self._scripts.clear()
            client.close()

    # -- start-up check --------------------------------------------------------

    def eviction_policies(self) -> list[EvictionPolicy]:
        """Read ``maxmemory-policy`` on the server, or on every cluster master.

        A refused ``CONFIG GET`` (renamed away, no ACL permission) gives a
        policy of ``None`` with the server's reply.

        :raises StoreUnavailable: a server cannot be reached.
        """

        def read() -> list[EvictionPolicy]:
            client = self.client
            if isinstance(client, RedisCluster):
                masters: list[Any] = client.get_primaries()  # type: ignore[no-untyped-call]
                return [
                    self._policy(str(node.name), client, target_nodes=node)
                    for node in masters
                ]
            kwargs = client.connection_pool.connection_kwargs
            node = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
            return [self._policy(str(node), client)]

        return self._guard(read)

    @staticmethod
    def _policy(node: str, client: Any, **target: Any) -> EvictionPolicy:
        try:
            found = client.config_get("maxmemory-policy", **target)
        except rexc.ResponseError as e:
            if str(e).startswith(_UNAVAILABLE_REPLIES):
                raise
            return EvictionPolicy(node, None, str(e).strip()[:120])
        value = found.get("maxmemory-policy") if isinstance(found, dict) else None
        if not value:
            # A proxy that answers CONFIG GET but knows no such parameter.
            return EvictionPolicy(node, None, "no value in the reply")
        return EvictionPolicy(node, str(value))

    def check_config(self) -> list[str]:
        """Refuse a Redis that may evict revocation markers or epochs.

        Every server (every master of a cluster) must have
        ``maxmemory-policy noeviction``; with ``allow_eviction`` anything is
        accepted, and what could not be vouched for comes back as warnings.

        :raises ConfigError: a policy evicts, or could not be read.
        :raises StoreUnavailable: a server cannot be reached.
        """
        found = self.eviction_policies()
        evicting = [p for p in found if p.policy not in (None, _NOEVICTION)]
        unread = [p for p in found if p.policy is None]
        if self.allow_eviction:
            return [
                f"{ALLOW_EVICTION_SETTING} is on and {p}: revocation "
                "markers and epochs may be evicted when it reaches maxmemory, "
                "and revoked tokens would then work again. Make sure that it "
                "never evicts keys (maxmemory-policy noeviction)."
                for p in evicting + unread
            ]
        if evicting:
            nodes = ", ".join(str(p) for p in evicting)
            raise ConfigError(
                "maxmemory-policy",
                evicting[0].policy,
                _NOEVICTION,
                message=(
                    f"Redis maxmemory-policy must be 'noeviction', but {nodes}. "
                    "A Redis that evicts keys when it reaches maxmemory may "
                    "drop revocation markers and epochs, and revoked tokens "
                    f"would work again. To fix it, {_FIX}; or give "
                    f"Flask-Signoff a Redis of its own. {_OPT_OUT}"
                ),
            )
        if unread:
            nodes = "; ".join(f"{p.node}: {p.error}" for p in unread)
            raise ConfigError(
                "maxmemory-policy",
                None,
                _NOEVICTION,
                message=(
                    "Redis maxmemory-policy could not be read, CONFIG GET was "
                    f"refused ({nodes}). Flask-Signoff needs 'noeviction' so "
                    "that revocation markers and epochs are never evicted: "
                    "allow CONFIG GET to this client (or use a user with that "
                    f"permission) and, if it is not 'noeviction', {_FIX}. "
                    f"{_OPT_OUT}"
                ),
            )
        return []

    # -- sessions ----------------------------------------------------------

    def get_session(self, key: str) -> SessionRecord | None:
        h = self._guard(lambda: self.client.hgetall(self._skey(key)))
        return _session(key, cast(dict[str, str], h)) if h else None

    def create_session(
        self, record: SessionRecord, *, max_per_user: int | None = None
    ) -> None:
        self._check_user_tag(record.key, record.user_id, "session")
        cap = "" if max_per_user is None else str(max_per_user)
        self._run(
            "create",
            _CREATE,
            [self._skey(record.key)],
            [
                self._base(key_tag(record.key)),
                record.key,
                _ms(record.drop_at),
                cap,
                *_session_fields(record),
            ],
        )

    def update_session(self, record: SessionRecord) -> bool:
        fields = _pairs(
            {
                "data": record.data,
                "last_seen_at": _num(record.last_seen_at),
                "drop_at": _num(record.drop_at),
                "expires_at": _num(record.expires_at),
                "fresh_until": _num(record.fresh_until),
                "remember": "1" if record.remember else "0",
            }
        )
        return self._update(record.key, record.drop_at, fields)

    def touch_session(self, key: str, last_seen_at: float, drop_at: float) -> bool:
        fields = ["last_seen_at", _num(last_seen_at), "drop_at", _num(drop_at)]
        return self._update(key, drop_at, fields)

    def _update(self, key: str, drop_at: float, fields: list[str]) -> bool:
        base = self._base(key_tag(key))
        done = self._run(
            "update", _UPDATE, [self._skey(key)], [base, key, _ms(drop_at), *fields]
        )
        return bool(done)

    def rotate_session(
        self, old_key: str | None, new: SessionRecord, *, require_old: bool
    ) -> bool:
        self._check_user_tag(new.key, new.user_id, "session")
        if old_key is not None and key_tag(old_key) != key_tag(new.key):
            # Two slots: no script can span them on a cluster. Deleting the old
            # key before inserting the new one is as good: nobody holds the new
            # id yet, so no reader can tell this from one atomic step, and the
            # two are never both alive.
            gone = self.delete_session(old_key)
            if require_old and not gone:
                return False
            self.create_session(new)
            return True
        base = self._base(key_tag(new.key))
        keys = [self._skey(new.key)]
        if old_key is not None:
            keys.append(self._skey(old_key))
        done = self._run(
            "rotate",
            _ROTATE,
            keys,
            [
                base,
                new.key,
                _ms(new.drop_at),
                "1" if require_old else "0",
                old_key or "",
                *_session_fields(new),
            ],
        )
        return bool(done)

    def delete_session(self, key: str) -> bool:
        base = self._base(key_tag(key))
        return bool(self._run("delete", _DELETE, [self._skey(key)], [base, key]))

    def _index(self, user_id: str) -> tuple[str, str]:
        base = self._base(self.user_tag(user_id))
        return base, f"{base}si:{user_id}"

    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        base, index = self._index(user_id)
        flat = self._run("list", _LIST, [index], [base])
        records = [
            _session(flat[i], _as_dict(flat[i + 1])) for i in range(0, len(flat), 2)
        ]
        live = [r for r in records if r.user_id == user_id and r.drop_at > now]
        live.sort(key=lambda r: r.key)
        live.sort(key=lambda r: r.created_at, reverse=True)
        return live

    def delete_session_by_public_id(
        self, user_id: str, public_id: str
    ) -> SessionRecord | None:
        base = self._base(self.user_tag(user_id))
        link = f"{base}sp:{public_id}:{user_id}"
        found = self._run(
            "delete_public",
            _DELETE_BY_PUBLIC_ID,
            [link],
            [base, user_id, public_id],
        )
        if not found:
            return None
        return _session(found[0], _as_dict(found[1]))

    def delete_user_sessions(self, user_id: str, *, keep_key: str | None = None) -> int:
        base, index = self._index(user_id)
        n = self._run(
            "delete_user", _DELETE_USER_SESSIONS, [index], [base, keep_key or ""]
        )
        return int(n)

    def delete_all_sessions(self) -> int:
        # Session hashes are `P{<8 chars>}:s:<key>`; on a cluster, scan every
        # primary. Each one goes through the delete script, which also removes
        # its index entry and public-id link.
        pattern = _glob_escape(self.prefix) + "{????????}:s:*"

        total = 0
        for name in self._guard(lambda: self._scan(pattern)):
            key = name[len(self.prefix) + 10 + 3 :]
            total += int(self.delete_session(key))
        return total

    def _scan(self, pattern: str) -> list[str]:
        """Every key matching ``pattern``; on a cluster, on every primary."""
        client = self.client
        if isinstance(client, RedisCluster):
            found = client.scan_iter(
                match=pattern, count=1000, target_nodes=RedisCluster.PRIMARIES
            )
        else:
            found = client.scan_iter(match=pattern, count=1000)
        return [str(k) for k in found]

    def purge_expired(self, now: float, *, batch_size: int = 500) -> int:
        # Every record carries a native TTL; nothing is left to purge.
        return 0

    # -- users -------------------------------------------------------------

    def _epoch_key(self, user_id: str) -> str:
        return f"{self._base(self.user_tag(user_id))}e:{user_id}"

    def get_epoch(self, user_id: str) -> int:
        value = self._guard(lambda: self.client.get(self._epoch_key(user_id)))
        return int(cast(str, value)) if value is not None else 0

    def bump_epoch(self, user_id: str) -> int:
        key = self._epoch_key(user_id)
        return int(self._guard(lambda: self.client.incr(key)))

    # -- refresh-token families ------------------------------------------

    def _family_keys(self, family_id: str, user_id: str) -> tuple[str, list[str]]:
        base = self._base(self.user_tag(user_id))
        return base, [
            f"{base}f:{family_id}",
            f"{base}ft:{family_id}",
            f"{base}uf:{user_id}",
        ]

    def _rkey(self, key: str) -> str:
        return f"{self._base(key_tag(key))}r:{key}"

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        self._check_user_tag(first.key, family.user_id, "refresh token")
        _, keys = self._family_keys(family.family_id, family.user_id)
        family_fields = [
            "user_id", family.user_id,
            "created_at", _num(family.created_at),
            "expires_at", _num(family.expires_at),
            "client_id", family.client_id,
            "auth_stamp", family.auth_stamp,
        ]  # fmt: skip
        refresh_fields = _refresh_fields(first)
        self._run(
            "create_family",
            _CREATE_FAMILY,
            [*keys, self._rkey(first.key)],
            [
                family.family_id,
                first.key,
                _ms(family.expires_at),
                _ms(first.expires_at),
                _ms(max(family.expires_at, first.expires_at)),
                str(len(family_fields)),
                *family_fields,
                *refresh_fields,
            ],
        )

    def get_refresh(self, key: str) -> RefreshRecord | None:
        h = self._guard(lambda: self.client.hgetall(self._rkey(key)))
        return _refresh(key, cast(dict[str, str], h)) if h else None

    def spend_refresh(self, key: str, now: float) -> SpendResult:
        base = self._base(key_tag(key))
        found = self._run("spend", _SPEND, [self._rkey(key)], [base, _num(now)])
        status = SpendStatus(found[0])
        if status is SpendStatus.MISSING:
            return SpendResult(status)
        record = _refresh(key, _as_dict(found[1]))
        if status is SpendStatus.SPENT:
            record.spent_at = now
        return SpendResult(status, record)

    def add_refresh(self, record: RefreshRecord, now: float) -> bool:
        self._check_user_tag(record.key, record.user_id, "refresh token")
        _, keys = self._family_keys(record.family_id, record.user_id)
        done = self._run(
            "add_refresh",
            _ADD_REFRESH,
            [*keys, self._rkey(record.key)],
            [
                record.family_id,
                record.key,
                _num(now),
                _ms(record.expires_at),
                *_refresh_fields(record),
            ],
        )
        return bool(done)

    def get_family(self, family_id: str, user_id: str) -> FamilyRecord | None:
        _, keys = self._family_keys(family_id, user_id)
        h = cast(dict[str, str], self._guard(lambda: self.client.hgetall(keys[0])))
        if not h or h["user_id"] != user_id:
            return None
        return FamilyRecord(
            family_id=family_id,
            user_id=h["user_id"],
            created_at=float(h["created_at"]),
            expires_at=float(h["expires_at"]),
            client_id=h["client_id"],
            auth_stamp=h.get("auth_stamp", ""),
        )

    def revoke_family(self, family_id: str, user_id: str, until: float) -> None:
        base, keys = self._family_keys(family_id, user_id)
        self._run(
            "revoke_family",
            _REVOKE_FAMILY,
            [*keys, f"{base}rv:{family_id}"],
            [base, family_id, _num(until), _ms(until)],
        )

    def revoke_user_families(self, user_id: str) -> int:
        base, keys = self._family_keys("", user_id)
        return int(self._run("revoke_user", _REVOKE_USER_FAMILIES, [keys[2]], [base]))

    def revoke_all_families(self, until: float) -> int:
        # Family hashes are `P{<8 chars>}:f:<family id>`; each is revoked by
        # the same script as one family, in its own user's slot.
        pattern = _glob_escape(self.prefix) + "{????????}:f:*"
        total = 0
        for name in self._guard(lambda: self._scan(pattern)):
            family_id = name[len(self.prefix) + 10 + 3 :]
            user_id = self._owner(name)
            if user_id is None:
                continue  # expired or revoked meanwhile
            self.revoke_family(family_id, user_id, until)
            total += 1
        return total

    # -- throttling --------------------------------------------------------

    def _tkey(self, key: str) -> str:
        return f"{self.prefix}tw:{key}"

    def reserve(self, key: str, limit: int, window: float, now: float) -> Reserved:
        # A relative expiry (PEXPIRE): the window lasts `window` on Redis's
        # own clock, whatever the caller's. Its end as the caller counts it
        # is kept beside the count, to name the window for release().
        ms = str(max(1, math.ceil(window * 1000)))
        args = [str(limit), ms, _num(now + window)]
        granted, attempts, ends = self._run(
            "reserve", _RESERVE, [self._tkey(key)], args
        )
        return Reserved(bool(granted), int(attempts), float(ends))

    def release(self, key: str, ends: float) -> bool:
        done = self._run("release", _RELEASE, [self._tkey(key)], [_num(ends)])
        return bool(done)

    def _owner(self, family_hash: str) -> str | None:
        value = self._guard(lambda: self.client.hget(family_hash, "user_id"))
        return None if value is None else str(value)

    def access_state(self, user_id: str, family_id: str, now: float) -> AccessState:
        base = self._base(self.user_tag(user_id))
        keys = [f"{base}e:{user_id}", f"{base}rv:{family_id}"]
        # One MGET: both keys share the user's slot.
        epoch, until = cast(
            list[str | None], self._guard(lambda: self.client.mget(keys))
        )
        return AccessState(
            epoch=int(epoch) if epoch is not None else 0,
            family_revoked=until is not None and float(until) > now,
        )
