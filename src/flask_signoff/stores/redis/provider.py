"""The provider-session indexes of the Redis store (OpenID Connect logout).

:meth:`~flask_signoff.core.store.Store.end_provider_sessions` must find the
sessions and families of one ``(iss, sid)`` or ``(iss, sub)``. They live in
their users' slots; a provider session is not a user (one ``sub`` may be
several local users, and the store never knows which), so its index is a
sorted set under a hash tag of its own
(:meth:`.keys.KeyLayout.provider_index`) whose members name the records:
``s:<session key>`` (the key carries its user's tag) or
``f:<family_id>:<user_id>``.

On a cluster the index and the records are in different slots, so no script
can end them all in one step. Each step is atomic and idempotent instead:

1. ``provider_claim.lua`` (the index's slot): count the logout and read the
   members;
2. per member, the script that ends one record (``delete_session.lua``,
   ``revoke_family.lua``, in the user's slot); a record already gone is
   skipped;
3. ``ZREM`` of the members ended;
4. again from 1, until a round finds no member: a session that rotated to
   a new id between steps 1 and 2 was entered under its new id before it
   moved (see below), so the next round finds and ends it.

Stopped half way (an outage), the call raises; what was ended stays ended,
what was not is still indexed, and a second call finishes the work.

A record is entered in its indexes (``provider_add.lua``, which returns the
logout counter) *before* it is written, and the counter is read again after:
if it moved, a logout of that provider session ran meanwhile and may have
read the index before the record existed, so the writer ends the record
itself. A logout counted before the record was entered lets it live: the
provider session signed in again after its logout, as with the SQL store's
transactions.

A session's member is scored with the session's hard expiry, and each
``provider_add.lua`` first removes the members whose score has passed: a
user's ``sub`` index, kept alive by each new sign-in, holds the sessions of
one session lifetime, not every session ever made. Members of a session
that moved to a new id or was ended by a logout of its ``sid`` stay until
then (or until a logout reads them); a family's member until the index
expires with the last record it names.
"""

from __future__ import annotations

import functools
import time
import typing as t
from collections.abc import Callable

from ...core.records import FamilyRecord, SessionRecord
from .codec import expiry_ms

if t.TYPE_CHECKING:
    from .store import RedisStore

T = t.TypeVar("T")

#: Rounds of :meth:`ProviderIndex.end` at most. A round finds the members
#: entered since the previous one: the new id of a session that rotated
#: between that round's read and its delete. The last round that finds
#: nothing ends the loop; a chain of rotations longer than this, all inside
#: one logout, is not chased further (each needs a request of its own).
MAX_ROUNDS = 5

#: A logout counter lives at least this long, so that a sign-in racing the
#: logout still finds it moved.
COUNTER_FLOOR = 3600.0


class ProviderIndex:
    """The provider-session indexes of one :class:`.store.RedisStore`."""

    __slots__ = ("_store",)

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def _keys(self, iss: str, sid: str, sub: str) -> list[tuple[str, str]]:
        layout = self._store.keys
        found = [layout.provider_index("sid", iss, sid)] if sid else []
        if sub:
            found.append(layout.provider_index("sub", iss, sub))
        return found

    def write(
        self, record: SessionRecord | FamilyRecord, op: str, fn: Callable[[], T]
    ) -> T | None:
        """Run ``fn``, which writes ``record``, with the record indexed first.

        Returns what ``fn`` returned, or ``None`` if a logout of the
        record's provider session ran meanwhile: the record is then ended
        here (a family with a marker until its own expiry, which no access
        token of it outlives). A record of no provider session is written
        as it is.
        """
        if not record.oidc_iss:
            return fn()
        store = self._store
        if isinstance(record, SessionRecord):
            member = f"s:{record.key}"
        else:
            member = f"f:{record.family_id}:{record.user_id}"
        marks = []
        keys = self._keys(record.oidc_iss, record.oidc_sid, record.oidc_sub)
        for index, counter in keys:
            until = expiry_ms(record.expires_at)
            # A family is marked revoked even once expired (its last access
            # tokens outlive it): never dropped as expired.
            score = until if isinstance(record, SessionRecord) else "+inf"
            args = [member, until, score]
            seen = store._run("provider_add", [index, counter], args, operation=op)
            marks.append((counter, str(seen)))
        result = fn()
        client = store.client
        counters = [counter for counter, _ in marks]
        now = store._guard(op, lambda: [client.get(c) for c in counters])
        for (_, seen), value in zip(marks, now, strict=True):
            if str(value or "0") != seen:
                if isinstance(record, SessionRecord):
                    store.delete_session(record.key)
                else:
                    store.end_family(
                        record.family_id, record.user_id, record.expires_at
                    )
                return None
        return result

    def end(self, iss: str, sid: str, sub: str, until: float) -> int:
        """End every record of ``(iss, sid)``, or of ``(iss, sub)`` without a
        ``sid``; return how many existed."""
        store = self._store
        op = "end_provider_sessions"
        index, counter = self._keys(iss, sid, "" if sid else sub)[0]
        ended = 0
        for _ in range(MAX_ROUNDS):
            floor = expiry_ms(time.time() + COUNTER_FLOOR)
            claimed = store._run(
                "provider_claim", [index, counter], [floor], operation=op
            )
            members = [str(m) for m in claimed]
            if not members:
                break
            for member in members:
                kind, _, rest = member.partition(":")
                if kind == "s":
                    ended += store.delete_session(rest)
                elif kind == "f":
                    family_id, _, user_id = rest.partition(":")
                    ended += store.end_family(family_id, user_id, until)
            store._guard(op, functools.partial(store.client.zrem, index, *members))
        return ended
