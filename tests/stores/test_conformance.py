"""One conformance suite for every store backend, against real servers.

The same test code runs on SQLite (a file), Redis, a Redis Cluster and
PostgreSQL (``backend`` fixture in ``conftest.py``). Each test checks one
guarantee stated in the docstrings of :mod:`flask_signoff.core.store`.

Times are injected. Records are dated from the real clock, because Redis
expires keys natively at their ``drop_at``: a record meant to be alive must
be alive by the server's clock too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from flask_signoff.core.ids import (
    hash_secret,
    new_public_id,
    new_secret,
    random_tag,
)
from flask_signoff.core.records import (
    FamilyRecord,
    RefreshRecord,
    SessionRecord,
    SpendStatus,
)
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.store import Store
from flask_signoff.exceptions import StoreError, StoreUnavailable
from tests.support.backends import Backend

T = TypeVar("T")

HOUR = 3600.0


@pytest.fixture
def now() -> float:
    # A fraction that floats must carry exactly through every backend.
    return float(int(time.time())) + 0.123456789


#: The store a test runs on, newest last: a user's keys carry the tag that
#: this store gives the user (the Redis store refuses any other).
_TAGGING: list[Store] = []


@contextlib.contextmanager
def tagging(store: Store) -> Iterator[Store]:
    """Make :func:`new_key` tag a user's keys as ``store`` does."""
    _TAGGING.append(store)
    try:
        yield store
    finally:
        _TAGGING.remove(store)


@pytest.fixture(autouse=True)
def _tagging(store: Store) -> Iterator[None]:
    with tagging(store):
        yield


def new_key(user_id: str | None = None) -> str:
    tag = _TAGGING[-1].user_tag(user_id) if user_id is not None else random_tag()
    return hash_secret(new_secret(tag))


def new_stamp() -> str:
    """A stamp digest: 43 base64url characters, like StampSigner's."""
    return secrets.token_urlsafe(32)


def make_session(
    now: float,
    user_id: str | None = "alice",
    *,
    age: float = 0.0,
    ttl: float = HOUR,
    **changes: object,
) -> SessionRecord:
    record = SessionRecord(
        key=new_key(user_id),
        tag="",
        public_id=new_public_id(),
        user_id=user_id,
        data='{"cart": ["é", 1]}',
        created_at=now - age,
        last_seen_at=now - age,
        expires_at=now + 2 * ttl,
        drop_at=now + ttl,
        remember=False,
        fresh_until=now + 60,
        ip="192.0.2.1",
        user_agent="Mozilla/5.0 (X11)",
        auth_stamp=new_stamp(),
    )
    record.tag = record.key[:8]
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def make_family(
    now: float, user_id: str = "alice", ttl: float = HOUR
) -> tuple[FamilyRecord, RefreshRecord]:
    family = FamilyRecord(
        family_id=secrets.token_hex(8),
        user_id=user_id,
        created_at=now,
        expires_at=now + ttl,
        client_id="cli",
        auth_stamp=new_stamp(),
    )
    return family, make_refresh(now, family)


def make_refresh(now: float, family: FamilyRecord) -> RefreshRecord:
    return RefreshRecord(
        key=new_key(family.user_id),
        family_id=family.family_id,
        user_id=family.user_id,
        issued_at=now,
        expires_at=family.expires_at,
    )


def purge_all(store: Store, now: float) -> None:
    """Call purge_expired until it reports nothing left, as callers do."""
    for _ in range(100):
        if store.purge_expired(now, batch_size=2) == 0:
            return
    pytest.fail("purge_expired never returned 0")


def concurrently(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(i)`` in ``n`` threads released together; return the results."""
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("not run")] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


# -- sessions: get, create, update, touch ----------------------------------------


def test_get_unknown_session_is_none(store: Store) -> None:
    assert store.get_session(new_key("alice")) is None
    assert store.get_session(new_key()) is None


@pytest.mark.parametrize("user_id", ["alice", None])
def test_create_then_get_round_trips_every_field(
    store: Store, now: float, user_id: str | None
) -> None:
    record = make_session(now, user_id, remember=True, ip=None, user_agent="")
    store.create_session(record)
    assert store.get_session(record.key) == record


def test_create_never_overwrites(store: Store, now: float) -> None:
    record = make_session(now)
    store.create_session(record)
    with pytest.raises(StoreError):
        store.create_session(dataclasses.replace(record, data="other"))
    assert store.get_session(record.key) == record


def test_update_writes_mutable_fields(store: Store, now: float) -> None:
    record = make_session(now)
    store.create_session(record)
    changed = dataclasses.replace(
        record,
        data="{}",
        last_seen_at=now + 5,
        drop_at=now + 2 * HOUR,
        expires_at=now + 3 * HOUR,
        fresh_until=0.0,
        remember=True,
    )
    assert store.update_session(changed) is True
    assert store.get_session(record.key) == changed


def test_update_after_delete_is_refused_and_recreates_nothing(
    store: Store, now: float
) -> None:
    record = make_session(now)
    store.create_session(record)
    assert store.delete_session(record.key) is True
    record.data = '{"late": "write"}'
    assert store.update_session(record) is False
    assert store.get_session(record.key) is None
    assert store.list_sessions("alice", now) == []


def test_update_of_never_created_session_is_refused(store: Store, now: float) -> None:
    record = make_session(now)
    assert store.update_session(record) is False
    assert store.get_session(record.key) is None


def test_touch_moves_last_seen_and_drop_at(store: Store, now: float) -> None:
    record = make_session(now)
    store.create_session(record)
    assert store.touch_session(record.key, now + 30, now + HOUR + 30) is True
    got = store.get_session(record.key)
    assert got is not None
    assert (got.last_seen_at, got.drop_at) == (now + 30, now + HOUR + 30)
    assert got.data == record.data


def test_touch_is_conditional(store: Store, now: float) -> None:
    record = make_session(now)
    assert store.touch_session(record.key, now, now + HOUR) is False
    assert store.get_session(record.key) is None
    store.create_session(record)
    store.delete_session(record.key)
    assert store.touch_session(record.key, now, now + HOUR) is False
    assert store.get_session(record.key) is None


def test_update_and_touch_never_change_the_auth_stamp(store: Store, now: float) -> None:
    # A session is bound to one stamp for the life of its key; only a
    # rotation (a new key) binds it to another.
    record = make_session(now)
    store.create_session(record)
    assert store.update_session(dataclasses.replace(record, auth_stamp=new_stamp()))
    assert store.touch_session(record.key, now + 1, now + HOUR)
    got = store.get_session(record.key)
    assert got is not None
    assert got.auth_stamp == record.auth_stamp


def test_no_auth_stamp_round_trips_as_empty(store: Store, now: float) -> None:
    record = make_session(now, auth_stamp="")
    store.create_session(record)
    assert store.get_session(record.key) == record
    family, token = make_family(now)
    family.auth_stamp = ""
    store.create_family(family, token)
    assert store.get_family(family.family_id, "alice") == family


# -- rotation ---------------------------------------------------------------


def test_rotate_replaces_old_by_new(store: Store, now: float) -> None:
    old = make_session(now)
    store.create_session(old)
    new = dataclasses.replace(old, key=new_key("alice"), last_seen_at=now + 1)
    assert store.rotate_session(old.key, new, require_old=True) is True
    assert store.get_session(old.key) is None
    assert store.get_session(new.key) == new
    assert [r.key for r in store.list_sessions("alice", now)] == [new.key]
    # The public id follows the session to its new key.
    assert store.delete_session_by_public_id("alice", old.public_id) == new
    assert store.get_session(new.key) is None


def test_rotate_binds_the_new_record_to_its_own_auth_stamp(
    store: Store, now: float
) -> None:
    old = make_session(now)
    store.create_session(old)
    for require_old in (True, False):
        new = dataclasses.replace(old, key=new_key("alice"), auth_stamp=new_stamp())
        assert store.rotate_session(old.key, new, require_old=require_old)
        got = store.get_session(new.key)
        assert got is not None
        assert got.auth_stamp == new.auth_stamp != old.auth_stamp
        listed = store.list_sessions("alice", now)
        assert [r.auth_stamp for r in listed] == [new.auth_stamp]
        old = new
    deleted = store.delete_session_by_public_id("alice", old.public_id)
    assert deleted is not None
    assert deleted.auth_stamp == old.auth_stamp


def test_rotate_requiring_a_revoked_old_key_writes_nothing(
    store: Store, now: float
) -> None:
    old = make_session(now)
    store.create_session(old)
    store.delete_session(old.key)
    new = dataclasses.replace(old, key=new_key("alice"))
    assert store.rotate_session(old.key, new, require_old=True) is False
    assert store.get_session(new.key) is None
    assert store.get_session(old.key) is None
    assert store.list_sessions("alice", now) == []
    assert store.rotate_session(None, new, require_old=True) is False
    assert store.get_session(new.key) is None


def test_rotate_without_require_old_inserts_anyway(store: Store, now: float) -> None:
    gone = make_session(now)
    new = make_session(now)
    assert store.rotate_session(gone.key, new, require_old=False) is True
    assert store.get_session(new.key) == new
    other = make_session(now)
    assert store.rotate_session(None, other, require_old=False) is True
    assert store.get_session(other.key) == other


def test_rotate_anonymous_into_signed_in(store: Store, now: float) -> None:
    # Different routing tags: on a cluster, two slots.
    anonymous = make_session(now, None)
    store.create_session(anonymous)
    signed_in = make_session(now, "alice", data=anonymous.data)
    assert store.rotate_session(anonymous.key, signed_in, require_old=True) is True
    assert store.get_session(anonymous.key) is None
    assert store.get_session(signed_in.key) == signed_in


def test_concurrent_rotations_of_one_session_have_one_winner(
    store: Store, now: float
) -> None:
    # Never both alive: of eight rotations racing from one old key, exactly
    # one succeeds, and only its new key lives.
    old = make_session(now)
    store.create_session(old)
    news = [dataclasses.replace(old, key=new_key("alice")) for _ in range(8)]
    won = concurrently(
        8, lambda i: store.rotate_session(old.key, news[i], require_old=True)
    )
    assert won.count(True) == 1
    alive = [n.key for n in news if store.get_session(n.key) is not None]
    assert alive == [news[won.index(True)].key]
    assert store.get_session(old.key) is None
    assert [r.key for r in store.list_sessions("alice", now)] == alive


def test_rotate_onto_an_existing_key_fails_and_keeps_old(
    store: Store, now: float
) -> None:
    old, taken = make_session(now), make_session(now)
    store.create_session(old)
    store.create_session(taken)
    clash = dataclasses.replace(old, key=taken.key)
    with pytest.raises(StoreError):
        store.rotate_session(old.key, clash, require_old=True)
    assert store.get_session(old.key) == old
    assert store.get_session(taken.key) == taken


# -- deleting and listing ---------------------------------------------------------


def test_delete_tolerates_absence(store: Store, now: float) -> None:
    record = make_session(now)
    assert store.delete_session(record.key) is False
    store.create_session(record)
    assert store.delete_session(record.key) is True
    assert store.delete_session(record.key) is False
    assert store.get_session(record.key) is None


def test_list_sessions_only_users_newest_first_and_alive(
    store: Store, now: float
) -> None:
    a1 = make_session(now, age=30)
    a2 = make_session(now, age=10)
    a3 = make_session(now, age=20)
    stale = make_session(now, age=5, drop_at=now + 50)
    bob = make_session(now, "bob")
    anonymous = make_session(now, None)
    for r in (a1, a2, a3, stale, bob, anonymous):
        store.create_session(r)
    assert store.list_sessions("alice", now) == [stale, a2, a3, a1]
    # At now + 60, `stale` is past its drop_at (though the store may still
    # hold it): it is not listed.
    assert store.list_sessions("alice", now + 60) == [a2, a3, a1]
    assert store.list_sessions("bob", now) == [bob]
    assert store.list_sessions("carol", now) == []


def test_list_sessions_breaks_created_at_ties_by_key(store: Store, now: float) -> None:
    records = [make_session(now) for _ in range(4)]
    for r in records:
        store.create_session(r)
    assert store.list_sessions("alice", now) == sorted(records, key=lambda r: r.key)


def test_cap_evicts_the_oldest_sessions(store: Store, now: float) -> None:
    records = [make_session(now, age=100 - i) for i in range(5)]
    for r in records:
        store.create_session(r, max_per_user=3)
    assert [r.key for r in store.list_sessions("alice", now)] == [
        r.key for r in reversed(records[2:])
    ]
    assert store.get_session(records[0].key) is None
    assert store.get_session(records[1].key) is None
    # Evicted sessions lose their public id too.
    assert store.delete_session_by_public_id("alice", records[0].public_id) is None
    # Without a cap nothing is evicted; other users are never counted.
    bob = make_session(now, "bob")
    store.create_session(bob, max_per_user=1)
    extra = make_session(now, age=200)
    store.create_session(extra)
    assert len(store.list_sessions("alice", now)) == 4
    assert store.get_session(bob.key) == bob
    # With a cap, an older newcomer is itself the one evicted.
    older = make_session(now, age=300)
    store.create_session(older, max_per_user=4)
    assert store.get_session(older.key) is None
    assert len(store.list_sessions("alice", now)) == 4


def test_cap_does_not_count_deleted_sessions(store: Store, now: float) -> None:
    first, second = make_session(now, age=2), make_session(now, age=1)
    store.create_session(first, max_per_user=2)
    store.create_session(second, max_per_user=2)
    store.delete_session(second.key)
    third = make_session(now)
    store.create_session(third, max_per_user=2)
    assert store.list_sessions("alice", now) == [third, first]


def test_delete_by_public_id_only_for_its_owner(store: Store, now: float) -> None:
    alice = make_session(now)
    bob = make_session(now, "bob")
    store.create_session(alice)
    store.create_session(bob)
    # Bob's public id, asked for by Alice, is like an unknown one.
    assert store.delete_session_by_public_id("alice", bob.public_id) is None
    assert store.get_session(bob.key) == bob
    assert store.delete_session_by_public_id("alice", "no-such-id") is None
    assert store.delete_session_by_public_id("alice", "") is None
    assert store.delete_session_by_public_id("alice", alice.public_id) == alice
    assert store.get_session(alice.key) is None
    assert store.delete_session_by_public_id("alice", alice.public_id) is None
    assert store.get_session(bob.key) == bob


def test_delete_user_sessions_keeps_one_and_others_users(
    store: Store, now: float
) -> None:
    mine = [make_session(now, age=i) for i in range(4)]
    bob = make_session(now, "bob")
    for r in (*mine, bob):
        store.create_session(r)
    assert store.delete_user_sessions("alice", keep_key=mine[1].key) == 3
    assert store.list_sessions("alice", now) == [mine[1]]
    assert [store.get_session(r.key) for r in mine] == [None, mine[1], None, None]
    assert store.get_session(bob.key) == bob
    assert store.delete_user_sessions("alice") == 1
    assert store.delete_user_sessions("alice") == 0
    assert store.list_sessions("alice", now) == []


def test_delete_all_sessions(store: Store, now: float) -> None:
    records = [make_session(now, u) for u in ("alice", "alice", "bob", None, None)]
    for r in records:
        store.create_session(r)
    store.bump_epoch("alice")
    assert store.delete_all_sessions() == 5
    assert all(store.get_session(r.key) is None for r in records)
    assert store.list_sessions("alice", now) == []
    assert store.delete_all_sessions() == 0
    assert store.get_epoch("alice") == 1
    # The store keeps working afterwards.
    again = make_session(now)
    store.create_session(again)
    assert store.list_sessions("alice", now) == [again]


# -- expiry -------------------------------------------------------------------------


def test_purge_drops_expired_records_and_keeps_live_ones(
    backend: Backend, now: float
) -> None:
    store = backend.store
    # "Expired" is in the past by the real clock, so that Redis has dropped
    # them natively; SQL drops them in purge_expired.
    dead = [make_session(now, u, drop_at=now - 10) for u in ("alice", "bob", None)]
    live = [make_session(now, u) for u in ("alice", "bob", None)]
    for r in (*dead, *live):
        store.create_session(r)
    old_family, old_token = make_family(now - 2 * HOUR, ttl=HOUR)
    store.create_family(old_family, old_token)
    family, token = make_family(now)
    store.create_family(family, token)
    store.revoke_family("gone", "alice", now - 1)
    store.revoke_family("kept", "alice", now + HOUR)

    purge_all(store, now)

    assert [store.get_session(r.key) for r in dead] == [None, None, None]
    assert [store.get_session(r.key) for r in live] == live
    assert store.get_refresh(old_token.key) is None
    assert store.get_family(old_family.family_id, "alice") is None
    assert store.get_refresh(token.key) == token
    assert store.get_family(family.family_id, "alice") == family
    assert store.access_state("alice", "kept", now).family_revoked is True
    raw = backend.dump()
    assert b"gone" not in raw
    assert old_family.family_id.encode() not in raw
    assert all(r.key[9:].encode() not in raw for r in dead)


def test_records_vanish_at_their_deadline(backend: Backend) -> None:
    # Real time, the only test that sleeps: Redis must expire keys by itself.
    store = backend.store
    now = time.time()
    record = make_session(now, drop_at=now + 0.4)
    store.create_session(record)
    family, token = make_family(now, ttl=0.4)
    store.create_family(family, token)
    store.revoke_family("short", "alice", now + 0.4)
    assert store.get_session(record.key) == record
    assert store.access_state("alice", "short", now).family_revoked is True
    time.sleep(0.6)
    purge_all(store, time.time())
    assert store.get_session(record.key) is None
    assert store.get_refresh(token.key) is None
    assert store.get_family(family.family_id, "alice") is None
    assert store.list_sessions("alice", now) == []
    assert store.access_state("alice", "short", time.time()).family_revoked is False
    raw = backend.dump()
    assert record.key[9:].encode() not in raw
    assert b"short" not in raw


# -- epochs -------------------------------------------------------------------------


def test_epoch_starts_at_zero_and_bumps(store: Store) -> None:
    assert store.get_epoch("alice") == 0
    assert store.bump_epoch("alice") == 1
    assert store.bump_epoch("alice") == 2
    assert store.get_epoch("alice") == 2
    assert store.get_epoch("bob") == 0


def test_concurrent_bumps_are_all_counted(store: Store) -> None:
    results = concurrently(8, lambda i: [store.bump_epoch("alice") for _ in range(5)])
    assert store.get_epoch("alice") == 40
    assert sorted(v for r in results for v in r) == list(range(1, 41))


# -- refresh families ----------------------------------------------------------


def test_create_family_and_read_it_back(store: Store, now: float) -> None:
    family, token = make_family(now)
    store.create_family(family, token)
    assert store.get_family(family.family_id, "alice") == family
    assert store.get_family(family.family_id, "bob") is None
    assert store.get_family("unknown", "alice") is None
    assert store.get_refresh(token.key) == token
    assert store.get_refresh(new_key("alice")) is None


def test_spend_is_compare_and_set(store: Store, now: float) -> None:
    family, token = make_family(now)
    store.create_family(family, token)
    first = store.spend_refresh(token.key, now + 1)
    assert first.status is SpendStatus.SPENT
    assert first.record == dataclasses.replace(token, spent_at=now + 1)
    again = store.spend_refresh(token.key, now + 2)
    assert again.status is SpendStatus.ALREADY_SPENT
    assert again.record == dataclasses.replace(token, spent_at=now + 1)
    got = store.get_refresh(token.key)
    assert got is not None
    assert got.spent_at == now + 1


def test_concurrent_spends_have_exactly_one_winner(store: Store, now: float) -> None:
    family, token = make_family(now)
    store.create_family(family, token)
    results = concurrently(8, lambda i: store.spend_refresh(token.key, now + i))
    statuses = [r.status for r in results]
    assert statuses.count(SpendStatus.SPENT) == 1
    assert statuses.count(SpendStatus.ALREADY_SPENT) == 7
    winner = statuses.index(SpendStatus.SPENT)
    assert {r.record.spent_at for r in results if r.record} == {now + winner}


def test_spend_unknown_revoked_or_expired_is_missing(store: Store, now: float) -> None:
    assert store.spend_refresh(new_key("alice"), now).status is SpendStatus.MISSING
    family, token = make_family(now)
    store.create_family(family, token)
    # Past the family's end, the token is dead even if the store holds it.
    late = store.spend_refresh(token.key, family.expires_at)
    assert late.status is SpendStatus.MISSING
    assert late.record is None
    store.revoke_family(family.family_id, "alice", now + 60)
    assert store.spend_refresh(token.key, now).status is SpendStatus.MISSING
    assert store.get_refresh(token.key) is None


def test_add_refresh_only_while_family_lives(store: Store, now: float) -> None:
    family, token = make_family(now)
    store.create_family(family, token)
    second = make_refresh(now + 1, family)
    assert store.add_refresh(second, now + 1) is True
    assert store.get_refresh(second.key) == second
    expired = make_refresh(now, family)
    assert store.add_refresh(expired, family.expires_at) is False
    assert store.get_refresh(expired.key) is None
    store.revoke_family(family.family_id, "alice", now + 60)
    third = make_refresh(now + 2, family)
    assert store.add_refresh(third, now + 2) is False
    assert store.get_refresh(third.key) is None
    assert store.get_refresh(second.key) is None
    orphan = make_refresh(now, make_family(now)[0])
    assert store.add_refresh(orphan, now) is False
    assert store.get_refresh(orphan.key) is None


def test_revoke_family_deletes_tokens_and_marks_until(store: Store, now: float) -> None:
    family, token = make_family(now)
    store.create_family(family, token)
    second = make_refresh(now, family)
    store.add_refresh(second, now)
    other, other_token = make_family(now)
    store.create_family(other, other_token)
    store.revoke_family(family.family_id, "alice", now + 60)
    assert store.get_family(family.family_id, "alice") is None
    assert store.get_refresh(token.key) is None
    assert store.get_refresh(second.key) is None
    assert store.access_state("alice", family.family_id, now).family_revoked is True
    assert store.access_state("alice", family.family_id, now + 59).family_revoked
    assert not store.access_state("alice", family.family_id, now + 60).family_revoked
    # Other families are untouched.
    assert store.get_family(other.family_id, "alice") == other
    assert store.get_refresh(other_token.key) == other_token
    assert not store.access_state("alice", other.family_id, now).family_revoked
    # Revoking again with an earlier deadline keeps the later one; absence is
    # tolerated.
    store.revoke_family(family.family_id, "alice", now + 30)
    assert store.access_state("alice", family.family_id, now + 45).family_revoked
    store.revoke_family("never-existed", "alice", now + 60)
    assert store.access_state("alice", "never-existed", now).family_revoked


def test_revoke_family_is_scoped_to_its_user(store: Store, now: float) -> None:
    family, token = make_family(now)
    store.create_family(family, token)
    store.revoke_family(family.family_id, "mallory", now + 60)
    assert store.get_family(family.family_id, "alice") == family
    assert store.spend_refresh(token.key, now).status is SpendStatus.SPENT
    assert not store.access_state("alice", family.family_id, now).family_revoked


def test_revoke_user_families(store: Store, now: float) -> None:
    mine = [make_family(now) for _ in range(3)]
    bobs = make_family(now, "bob")
    for f, t in (*mine, bobs):
        store.create_family(f, t)
    extra = make_refresh(now, mine[0][0])
    store.add_refresh(extra, now)
    assert store.revoke_user_families("alice") == 3
    for f, t in mine:
        assert store.get_family(f.family_id, "alice") is None
        assert store.get_refresh(t.key) is None
        assert store.spend_refresh(t.key, now).status is SpendStatus.MISSING
        # No markers: the epoch bump that goes with it kills access tokens.
        assert not store.access_state("alice", f.family_id, now).family_revoked
    assert store.get_refresh(extra.key) is None
    assert store.get_family(bobs[0].family_id, "bob") == bobs[0]
    assert store.get_refresh(bobs[1].key) == bobs[1]
    assert store.revoke_user_families("alice") == 0


def test_revoke_all_families(store: Store, now: float) -> None:
    families = [make_family(now, user) for user in ("alice", "bob", "carol")]
    for f, t in families:
        store.create_family(f, t)
    assert store.revoke_all_families(now + 60) == 3
    for f, t in families:
        assert store.get_family(f.family_id, f.user_id) is None
        assert store.spend_refresh(t.key, now).status is SpendStatus.MISSING
        # Markers, so that access tokens die too, until the deadline.
        assert store.access_state(f.user_id, f.family_id, now + 59).family_revoked
        assert not store.access_state(f.user_id, f.family_id, now + 60).family_revoked
    assert store.revoke_all_families(now + 60) == 0


def test_access_state(store: Store, now: float) -> None:
    state = store.access_state("alice", "fam", now)
    assert (state.epoch, state.family_revoked) == (0, False)
    store.bump_epoch("alice")
    store.bump_epoch("alice")
    store.revoke_family("fam", "alice", now + 60)
    state = store.access_state("alice", "fam", now)
    assert (state.epoch, state.family_revoked) == (2, True)
    state = store.access_state("alice", "other", now)
    assert (state.epoch, state.family_revoked) == (2, False)
    state = store.access_state("bob", "fam2", now)
    assert (state.epoch, state.family_revoked) == (0, False)


# -- identity-provider sessions -------------------------------------------------

IDP = "https://idp.example"


def provider_session(
    now: float, user_id: str = "alice", *, sid: str = "sid-1", sub: str = "sub-a"
) -> SessionRecord:
    return make_session(
        now,
        user_id,
        oidc_iss=IDP,
        oidc_sid=sid,
        oidc_sub=sub,
        oidc_id_token="header.payload.signature",
    )


def provider_family(
    now: float, user_id: str = "alice", *, sid: str = "sid-1", sub: str = "sub-a"
) -> tuple[FamilyRecord, RefreshRecord]:
    family, token = make_family(now, user_id)
    family = dataclasses.replace(family, oidc_iss=IDP, oidc_sid=sid, oidc_sub=sub)
    return family, token


def test_provider_fields_round_trip(store: Store, now: float) -> None:
    record = provider_session(now)
    store.create_session(record)
    assert store.get_session(record.key) == record
    family, token = provider_family(now)
    store.create_family(family, token)
    assert store.get_family(family.family_id, "alice") == family
    # A rotation keeps them; a save does not change them.
    moved = dataclasses.replace(record, key=new_key("alice"))
    assert store.rotate_session(record.key, moved, require_old=True)
    assert store.update_session(dataclasses.replace(moved, oidc_sid="other"))
    assert store.get_session(moved.key) == moved


def test_end_provider_sessions_by_sid(store: Store, now: float) -> None:
    ended = [provider_session(now), provider_session(now)]
    kept = [
        provider_session(now, sid="sid-2"),  # the same user's other sign-in
        provider_session(now, "bob", sid="sid-b", sub="sub-b"),
        make_session(now),  # a password sign-in
        make_session(now, oidc_iss="https://other.example", oidc_sid="sid-1"),
    ]
    for record in (*ended, *kept):
        store.create_session(record)
    family, token = provider_family(now)
    other_family, other_token = provider_family(now, sid="sid-2")
    password_family, password_token = make_family(now)
    for f, t in ((family, token), (other_family, other_token)):
        store.create_family(f, t)
    store.create_family(password_family, password_token)

    assert store.end_provider_sessions(IDP, sid="sid-1", until=now + 60) == 3
    for record in ended:
        assert store.get_session(record.key) is None
    for record in kept:
        assert store.get_session(record.key) == record
    assert store.get_family(family.family_id, "alice") is None
    assert store.spend_refresh(token.key, now).status is SpendStatus.MISSING
    # A marker, so that its access tokens die too, until the deadline.
    assert store.access_state("alice", family.family_id, now + 59).family_revoked
    assert not store.access_state("alice", family.family_id, now + 60).family_revoked
    assert store.get_family(other_family.family_id, "alice") == other_family
    assert store.get_family(password_family.family_id, "alice") == password_family
    assert not store.access_state("alice", other_family.family_id, now).family_revoked
    assert [r.key for r in store.list_sessions("alice", now)] != []
    # Idempotent.
    assert store.end_provider_sessions(IDP, sid="sid-1", until=now + 60) == 0


def test_end_provider_sessions_by_sub(store: Store, now: float) -> None:
    ended = [provider_session(now), provider_session(now, sid="sid-2")]
    ended.append(provider_session(now, sid=""))
    kept = [
        provider_session(now, "bob", sid="sid-b", sub="sub-b"),
        make_session(now, oidc_iss="https://other.example", oidc_sub="sub-a"),
        make_session(now),
    ]
    for record in (*ended, *kept):
        store.create_session(record)
    family, token = provider_family(now, sid="")
    store.create_family(family, token)
    assert store.end_provider_sessions(IDP, sub="sub-a", until=now + 60) == 4
    for record in ended:
        assert store.get_session(record.key) is None
    for record in kept:
        assert store.get_session(record.key) == record
    assert store.get_family(family.family_id, "alice") is None
    assert store.end_provider_sessions(IDP, sub="sub-a", until=now + 60) == 0


def test_end_provider_sessions_ends_a_rotated_session(store: Store, now: float) -> None:
    record = provider_session(now)
    store.create_session(record)
    moved = dataclasses.replace(record, key=new_key("alice"))
    assert store.rotate_session(record.key, moved, require_old=True)
    assert store.end_provider_sessions(IDP, sid="sid-1", until=now + 60) == 1
    assert store.get_session(moved.key) is None


def test_end_provider_sessions_needs_a_provider_session(
    store: Store, now: float
) -> None:
    password = make_session(now)
    store.create_session(password)
    for iss, sid, sub in ((IDP, "", ""), ("", "sid-1", ""), ("", "", "")):
        with pytest.raises(ValueError, match="issuer and a sid or a sub"):
            store.end_provider_sessions(iss, sid=sid, sub=sub, until=now + 60)
    assert store.get_session(password.key) == password


def test_no_rotation_outlives_a_racing_provider_logout(
    store: Store, now: float
) -> None:
    # Whichever wins, nothing of the provider session is alive afterwards:
    # either the rotation finds its old session gone, or the logout sees the
    # new one.
    for _ in range(10):
        record = provider_session(now)
        store.create_session(record)
        moved = dataclasses.replace(record, key=new_key("alice"))

        def race(
            i: int, record: SessionRecord = record, moved: SessionRecord = moved
        ) -> object:
            if i == 0:
                return store.rotate_session(record.key, moved, require_old=True)
            return store.end_provider_sessions(IDP, sid="sid-1", until=now + 60)

        concurrently(2, race)
        assert store.get_session(record.key) is None
        assert store.get_session(moved.key) is None


# -- secrets and outages --------------------------------------------------------


def test_no_secret_is_stored_in_clear(backend: Backend) -> None:
    lifecycle = SessionLifecycle(backend.store, SessionPolicy())
    secret, record = lifecycle.sign_in("alice", data='{"x": 1}', ip="192.0.2.9")
    rotated = lifecycle.rotate(record)
    assert rotated is not None
    secret2, _ = rotated
    anon_secret, _ = lifecycle.start_anonymous('{"y": 2}')
    raw = backend.raw() + backend.dump()
    assert record.public_id.encode() in raw  # the dump does see the records
    assert b"192.0.2.9" in raw
    for s in (secret, secret2, anon_secret):
        assert s.encode() not in raw
        assert s[9:].encode() not in raw  # nor the random part alone
        assert s[9:25].encode() not in raw


@pytest.mark.slow  # waits out a timeout per call: seconds
def test_unreachable_store_raises_store_unavailable(backend: Backend) -> None:
    with backend.outage() as dead:
        calls: list[Callable[[], object]] = [
            lambda: dead.get_session(new_key("alice")),
            lambda: dead.create_session(make_session(time.time())),
            lambda: dead.bump_epoch("alice"),
            lambda: dead.access_state("alice", "fam", time.time()),
            lambda: dead.reserve("a:alice", 10, 300, time.time()),
            lambda: dead.release("a:alice", time.time()),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                call()
            assert time.monotonic() - started < 5


def test_another_process_sees_the_same_data(backend: Backend, now: float) -> None:
    record = make_session(now)
    backend.store.create_session(record)
    other = backend.reopen()
    assert other.get_session(record.key) == record
    assert other.delete_session(record.key) is True
    assert backend.store.get_session(record.key) is None


# -- throttling ---------------------------------------------------------------


def test_reserve_counts_up_to_the_limit(store: Store, now: float) -> None:
    for expected in (1, 2, 3):
        result = store.reserve("a:acct", 3, 300, now)
        assert (result.granted, result.attempts) == (True, expected)
        # The window ends where the first attempt put it, exactly: the end
        # also names the window for release().
        assert result.ends == now + 300
    refused = store.reserve("a:acct", 3, 300, now + 10)
    assert (refused.granted, refused.attempts, refused.ends) == (False, 3, now + 300)
    other = store.reserve("a:other", 3, 300, now)
    assert (other.granted, other.attempts) == (True, 1)


def test_reserve_is_atomic(store: Store, now: float) -> None:
    results = concurrently(16, lambda i: store.reserve("i:x", 100, 300, now))
    assert all(r.granted for r in results)
    assert sorted(r.attempts for r in results) == list(range(1, 17))
    assert {r.ends for r in results} == {now + 300}


def test_reserve_grants_no_more_than_the_limit(store: Store, now: float) -> None:
    results = concurrently(16, lambda i: store.reserve("a:burst", 5, 300, now))
    granted = sorted(r.attempts for r in results if r.granted)
    assert granted == [1, 2, 3, 4, 5]
    assert [r.attempts for r in results if not r.granted] == [5] * 11


def test_refused_attempts_do_not_move_the_window(store: Store) -> None:
    # Real time throughout, since Redis expires keys on its own clock.
    start = time.time()
    first = store.reserve("a:locked", 2, 0.5, start)
    opened = time.time()  # Redis opened the window by now, on its clock
    store.reserve("a:locked", 2, 0.5, start)
    while time.time() < start + 0.4:  # hammered while locked
        refused = store.reserve("a:locked", 2, 0.5, time.time())
        assert not refused.granted
        assert refused.ends == first.ends
        time.sleep(0.05)
    time.sleep(max(0.0, opened + 0.6 - time.time()))
    later = time.time()
    again = store.reserve("a:locked", 2, 300, later)
    assert (again.granted, again.attempts, again.ends) == (True, 1, later + 300)


def test_a_window_ends(store: Store, now: float) -> None:
    # A short real window, since Redis expires keys on its own clock.
    store.reserve("a:short", 10, 0.2, now)
    store.reserve("a:short", 10, 0.2, now)
    time.sleep(0.3)
    later = now + 0.3
    result = store.reserve("a:short", 10, 300, later)
    assert (result.granted, result.attempts) == (True, 1)
    assert result.ends == later + 300


def test_release_gives_one_back_never_below_zero(store: Store, now: float) -> None:
    assert store.release("a:never", now + 300) is False
    assert store.reserve("a:never", 10, 300, now).attempts == 1
    first = store.reserve("a:acct", 10, 300, now)
    store.reserve("a:acct", 10, 300, now)
    assert store.release("a:acct", first.ends) is True
    assert store.reserve("a:acct", 10, 300, now).attempts == 2
    assert store.release("a:acct", first.ends) is True
    assert store.release("a:acct", first.ends) is True
    assert store.release("a:acct", first.ends) is False  # 0: nothing to give
    assert store.reserve("a:acct", 10, 300, now).attempts == 1


def test_release_is_atomic(store: Store, now: float) -> None:
    taken = [store.reserve("a:race", 10, 300, now) for _ in range(3)]
    done = concurrently(12, lambda i: store.release("a:race", taken[0].ends))
    assert done.count(True) == 3
    assert store.reserve("a:race", 10, 300, now).attempts == 1


def test_release_only_to_the_window_it_was_taken_from(store: Store) -> None:
    start = time.time()
    old = store.reserve("a:acct", 10, 0.2, start)
    time.sleep(0.3)  # after the call returned: past the end on Redis's clock too
    later = time.time()
    new = store.reserve("a:acct", 10, 300, later)
    assert (new.granted, new.attempts) == (True, 1)
    assert store.release("a:acct", old.ends) is False
    assert store.reserve("a:acct", 10, 300, later).attempts == 2
    assert store.release("a:acct", new.ends) is True
