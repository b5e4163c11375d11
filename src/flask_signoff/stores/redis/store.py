"""The store contract on Redis: :class:`RedisStore`.

Each method is one round trip when it can be: a read by key is one command
(``HGETALL`` for a cookie or a refresh token, ``MGET`` for an access token's
epoch and revocation marker, which share the user's slot), and every write
that must be atomic is one script (:mod:`.lua`). Only the operations on
every user (:meth:`RedisStore.delete_all_sessions`,
:meth:`RedisStore.revoke_all_families`) scan the key space.
"""

from __future__ import annotations

import functools
import math
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from redis.cluster import RedisCluster
from redis.commands.core import Script

from ...core.ids import key_tag
from ...core.records import (
    AccessState,
    FamilyRecord,
    RefreshRecord,
    Reserved,
    SessionRecord,
    SpendResult,
    SpendStatus,
    StoreStats,
)
from ...core.store import Store
from ...exceptions import StoreError
from . import checks, lua
from .codec import (
    FAMILY,
    REFRESH,
    SESSION,
    SESSION_UPDATE_FIELDS,
    expiry_ms,
    number,
)
from .connection import Client, Target, guarded, read_hash
from .keys import KeyLayout
from .provider import ProviderIndex
from .stats import count_live

T = TypeVar("T")


class RedisStore(Store):
    """Sessions and tokens in Redis or a Redis Cluster, with native expiry.

    Keys are laid out as :mod:`flask_signoff.stores.redis.keys` shows;
    records are hashes (:mod:`~flask_signoff.stores.redis.codec`).

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
        #: The names of the keys (raises StoreError for a prefix with braces).
        self.keys = KeyLayout(key_prefix)
        self.prefix = key_prefix
        self.timeout = timeout
        self.allow_eviction = allow_eviction
        self._target = Target(url)
        #: True for a Redis Cluster (a ``redis+cluster://`` URL).
        self.cluster = self._target.cluster
        #: ``"redis"`` or ``"redis-cluster"``, as store errors name it.
        self.backend = self._target.backend
        self._connection: tuple[Client, dict[str, Script]] | None = None
        self._lock = threading.Lock()
        self._provider = ProviderIndex(self)

    # -- plumbing ------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The redis-py client, made on first use.

        A cluster client reads the slot map when it is made, so it is made
        lazily: constructing a store never touches the network, and an
        outage at start-up surfaces as :class:`StoreUnavailable` on first use.
        """
        return self._connect()[0]

    def _connect(self) -> tuple[Client, dict[str, Script]]:
        connection = self._connection
        if connection is None:
            with self._lock:
                connection = self._connection
                if connection is None:
                    # The scripts are registered once per client, with it.
                    client = self._target.connect(self.timeout)
                    connection = self._connection = (client, lua.register(client))
        return connection

    def _guard(self, operation: str, fn: Callable[[], T]) -> T:
        return guarded(fn, self.backend, operation)

    def _run(
        self,
        script: str,
        keys: list[str],
        args: list[str],
        *,
        operation: str | None = None,
    ) -> Any:
        """Run ``scripts/<script>.lua``, for ``operation`` (default: the same)."""
        return guarded(
            lambda: self._connect()[1][script](keys=keys, args=args),
            self.backend,
            operation or script,
        )

    def _user_base(self, user_id: str) -> str:
        return self.keys.base(self.user_tag(user_id))

    def _check_user_tag(self, key: str, user_id: str | None, what: str) -> None:
        # All of a user's keys must share one slot; see keys.py.
        if user_id is not None and key_tag(key) != self.user_tag(user_id):
            raise StoreError(
                f"A signed-in {what} key must carry its user's tag (Store.user_tag)."
            )

    def load_routing_key(self) -> bytes:
        name = self.keys.routing_key
        # A plain read first: once the key exists (every time but the very
        # first) this works even while the server refuses writes.
        kept = self._guard("load_routing_key", lambda: self.client.get(name))
        if kept is None:
            kept = self._run(
                "routing_key",
                [name],
                [secrets.token_hex(32)],
                operation="load_routing_key",
            )
        return _routing_key(str(kept))

    def scan_keys(self, match: str) -> list[str]:
        """Every key whose name matches the glob ``match``; on a cluster, on
        every primary.

        For administration and tests: it walks the whole key space, so no
        request ever calls it.

        :raises ~flask_signoff.exceptions.StoreUnavailable: Redis cannot be
            reached.
        """
        return self._scan(match, "scan_keys")

    def _scan(self, match: str, operation: str) -> list[str]:
        def scan() -> list[str]:
            client = self.client
            if isinstance(client, RedisCluster):
                found = client.scan_iter(
                    match=match, count=1000, target_nodes=RedisCluster.PRIMARIES
                )
            else:
                found = client.scan_iter(match=match, count=1000)
            return [str(k) for k in found]

        return self._guard(operation, scan)

    def close(self) -> None:
        if self._connection is not None:
            (client, _), self._connection = self._connection, None
            client.close()

    # -- start-up check --------------------------------------------------------

    def eviction_policies(self) -> list[checks.EvictionPolicy]:
        """Read ``maxmemory-policy`` on the server, or on every cluster master.

        A refused ``CONFIG GET`` (renamed away, no ACL permission) gives a
        policy of ``None`` with the server's reply.

        :raises StoreUnavailable: a server cannot be reached.
        """
        return self._guard(
            "eviction_policies", lambda: checks.eviction_policies(self.client)
        )

    def check_config(self) -> list[str]:
        """Refuse a Redis that may evict revocation markers or epochs.

        Every server (every master of a cluster) must have
        ``maxmemory-policy noeviction``; with ``allow_eviction`` anything is
        accepted, and what could not be vouched for comes back as warnings.
        See :mod:`flask_signoff.stores.redis.checks`.

        :raises ConfigError: a policy evicts, or could not be read.
        :raises StoreUnavailable: a server cannot be reached.
        """
        found = self._guard(
            "check_config", lambda: checks.eviction_policies(self.client)
        )
        return checks.check_policies(found, self.allow_eviction)

    # -- sessions ----------------------------------------------------------

    def get_session(self, key: str) -> SessionRecord | None:
        name = self.keys.session(key)
        h = self._guard("get_session", lambda: read_hash(self.client, name))
        return SESSION.decode(key, h) if h else None

    def create_session(
        self, record: SessionRecord, *, max_per_user: int | None = None
    ) -> None:
        self._check_user_tag(record.key, record.user_id, "session")
        cap = "" if max_per_user is None else str(max_per_user)
        args = [self.keys.base(key_tag(record.key)), record.key]
        args += [expiry_ms(record.drop_at), cap, *SESSION.encode(record)]
        keys = [self.keys.session(record.key)]
        self._provider.write(
            record, "create_session", lambda: self._run("create_session", keys, args)
        )

    def update_session(self, record: SessionRecord) -> bool:
        fields = SESSION.encode(record, only=SESSION_UPDATE_FIELDS)
        return self._update("update_session", record.key, record.drop_at, fields)

    def touch_session(self, key: str, last_seen_at: float, drop_at: float) -> bool:
        fields = ["last_seen_at", number(last_seen_at), "drop_at", number(drop_at)]
        return self._update("touch_session", key, drop_at, fields)

    def _update(
        self, operation: str, key: str, drop_at: float, fields: list[str]
    ) -> bool:
        base = self.keys.base(key_tag(key))
        done = self._run(
            "update_session",
            [self.keys.session(key)],
            [base, key, expiry_ms(drop_at), *fields],
            operation=operation,
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
        keys = [self.keys.session(new.key)]
        if old_key is not None:
            keys.append(self.keys.session(old_key))
        args = [self.keys.base(key_tag(new.key)), new.key, expiry_ms(new.drop_at)]
        args += ["1" if require_old else "0", old_key or "", *SESSION.encode(new)]
        done = self._provider.write(
            new, "rotate_session", lambda: self._run("rotate_session", keys, args)
        )
        return bool(done)

    def delete_session(self, key: str) -> bool:
        base = self.keys.base(key_tag(key))
        return bool(self._run("delete_session", [self.keys.session(key)], [base, key]))

    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        base = self._user_base(user_id)
        index = KeyLayout.session_index(base, user_id)
        flat = self._run("list_sessions", [index], [base])
        records = [SESSION.decode(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        live = [r for r in records if r.user_id == user_id and r.drop_at > now]
        live.sort(key=lambda r: r.key)
        live.sort(key=lambda r: r.created_at, reverse=True)
        return live

    def delete_session_by_public_id(
        self, user_id: str, public_id: str
    ) -> SessionRecord | None:
        base = self._user_base(user_id)
        found = self._run(
            "delete_session_by_public_id",
            [KeyLayout.public_link(base, public_id, user_id)],
            [base, user_id, public_id],
        )
        if not found:
            return None
        return SESSION.decode(found[0], found[1])

    def delete_user_sessions(self, user_id: str, *, keep_key: str | None = None) -> int:
        base = self._user_base(user_id)
        index = KeyLayout.session_index(base, user_id)
        n = self._run("delete_user_sessions", [index], [base, keep_key or ""])
        return int(n)

    def delete_all_sessions(self) -> int:
        # On a cluster, scan every primary. Each session goes through the
        # delete script, which also removes its index entry and public-id link.
        total = 0
        for name in self._scan(self.keys.pattern("s"), "delete_all_sessions"):
            total += int(self.delete_session(self.keys.member(name, "s")))
        return total

    def purge_expired(self, now: float, *, batch_size: int = 500) -> int:
        # Every record carries a native TTL; nothing is left to purge.
        return 0

    def stats(self, now: float) -> StoreStats:
        # A SCAN of every key under the prefix, on every master: see stats.py.
        return self._guard("stats", lambda: count_live(self.client, self.keys, now))

    # -- users -------------------------------------------------------------

    def get_epoch(self, user_id: str) -> int:
        key = KeyLayout.epoch(self._user_base(user_id), user_id)
        value = self._guard("get_epoch", lambda: self.client.get(key))
        return int(cast(str, value)) if value is not None else 0

    def bump_epoch(self, user_id: str) -> int:
        key = KeyLayout.epoch(self._user_base(user_id), user_id)
        return int(self._guard("bump_epoch", lambda: self.client.incr(key)))

    def access_state(self, user_id: str, family_id: str, now: float) -> AccessState:
        base = self._user_base(user_id)
        keys = [KeyLayout.epoch(base, user_id), KeyLayout.revoked(base, family_id)]
        # One MGET: both keys share the user's slot.
        epoch, until = cast(
            list[str | None],
            self._guard("access_state", lambda: self.client.mget(keys)),
        )
        return AccessState(
            epoch=int(epoch) if epoch is not None else 0,
            family_revoked=until is not None and float(until) > now,
        )

    # -- refresh-token families ------------------------------------------

    @staticmethod
    def _family_keys(base: str, family_id: str, user_id: str) -> list[str]:
        return [
            KeyLayout.family(base, family_id),
            KeyLayout.family_tokens(base, family_id),
            KeyLayout.user_families(base, user_id),
        ]

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        self._check_user_tag(first.key, family.user_id, "refresh token")
        base = self._user_base(family.user_id)
        keys = self._family_keys(base, family.family_id, family.user_id)
        family_fields = FAMILY.encode(family)
        run = functools.partial(
            self._run,
            "create_family",
            [*keys, self.keys.refresh(first.key)],
            [
                family.family_id,
                first.key,
                expiry_ms(family.expires_at),
                expiry_ms(first.expires_at),
                expiry_ms(max(family.expires_at, first.expires_at)),
                str(len(family_fields)),
                *family_fields,
                *REFRESH.encode(first),
            ],
        )
        self._provider.write(family, "create_family", run)

    def get_refresh(self, key: str) -> RefreshRecord | None:
        name = self.keys.refresh(key)
        h = self._guard("get_refresh", lambda: self.client.hgetall(name))
        return REFRESH.decode(key, cast(dict[str, str], h)) if h else None

    def spend_refresh(self, key: str, now: float) -> SpendResult:
        base = self.keys.base(key_tag(key))
        found = self._run(
            "spend_refresh", [self.keys.refresh(key)], [base, number(now)]
        )
        status = SpendStatus(found[0])
        if status is SpendStatus.MISSING:
            return SpendResult(status)
        record = REFRESH.decode(key, found[1])
        if status is SpendStatus.SPENT:
            record.spent_at = now
        return SpendResult(status, record)

    def add_refresh(self, record: RefreshRecord, now: float) -> bool:
        self._check_user_tag(record.key, record.user_id, "refresh token")
        base = self._user_base(record.user_id)
        keys = self._family_keys(base, record.family_id, record.user_id)
        done = self._run(
            "add_refresh",
            [*keys, self.keys.refresh(record.key)],
            [
                record.family_id,
                record.key,
                number(now),
                expiry_ms(record.expires_at),
                *REFRESH.encode(record),
            ],
        )
        return bool(done)

    def get_family(self, family_id: str, user_id: str) -> FamilyRecord | None:
        name = KeyLayout.family(self._user_base(user_id), family_id)
        h = cast(
            dict[str, str],
            self._guard("get_family", lambda: self.client.hgetall(name)),
        )
        if not h or h["user_id"] != user_id:
            return None
        return FAMILY.decode(family_id, h)

    def revoke_family(self, family_id: str, user_id: str, until: float) -> None:
        self.end_family(family_id, user_id, until)

    def end_family(self, family_id: str, user_id: str, until: float) -> int:
        """:meth:`revoke_family`; returns 1 if the family existed, else 0."""
        base = self._user_base(user_id)
        keys = self._family_keys(base, family_id, user_id)
        existed = self._run(
            "revoke_family",
            [*keys, KeyLayout.revoked(base, family_id)],
            [base, family_id, number(until), expiry_ms(until)],
        )
        return int(existed or 0)

    def end_provider_sessions(
        self, iss: str, *, sid: str = "", sub: str = "", until: float
    ) -> int:
        # Several steps, each atomic and idempotent: see .provider.
        self.check_provider_session(iss, sid, sub)
        return self._provider.end(iss, sid, sub, until)

    def revoke_user_families(self, user_id: str) -> int:
        base = self._user_base(user_id)
        index = KeyLayout.user_families(base, user_id)
        return int(self._run("revoke_user_families", [index], [base]))

    def revoke_all_families(self, until: float) -> int:
        # Each family is revoked by the same script as one family, in its own
        # user's slot.
        total = 0
        for name in self._scan(self.keys.pattern("f"), "revoke_all_families"):
            family_id = self.keys.member(name, "f")
            user_id = self._owner(name)
            if user_id is None:
                continue  # expired or revoked meanwhile
            self.revoke_family(family_id, user_id, until)
            total += 1
        return total

    def _owner(self, family_hash: str) -> str | None:
        value = self._guard(
            "revoke_all_families", lambda: self.client.hget(family_hash, "user_id")
        )
        return None if value is None else str(value)

    # -- throttling --------------------------------------------------------

    def reserve(self, key: str, limit: int, window: float, now: float) -> Reserved:
        # A relative expiry (PEXPIRE): the window lasts `window` on Redis's
        # own clock, whatever the caller's. Its end as the caller counts it
        # is kept beside the count, to name the window for release().
        ms = str(max(1, math.ceil(window * 1000)))
        args = [str(limit), ms, number(now + window)]
        granted, attempts, ends = self._run("reserve", [self.keys.throttle(key)], args)
        return Reserved(bool(granted), int(attempts), float(ends))

    def release(self, key: str, ends: float) -> bool:
        done = self._run("release", [self.keys.throttle(key)], [number(ends)])
        return bool(done)


def _routing_key(kept: str) -> bytes:
    try:
        key = bytes.fromhex(kept)
    except ValueError:
        key = b""
    if len(key) != 32:
        # Tagging under some other key would give users new tags: refuse.
        raise StoreError("The store's routing key is not 32 bytes of hex.")
    return key
