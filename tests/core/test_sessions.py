"""The session lifecycle against a real SQLite file, time injected."""

from __future__ import annotations

import dataclasses

import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import hash_secret
from flask_signoff.core.records import FamilyRecord, RefreshRecord
from flask_signoff.core.sessions import LoadStatus, SessionLifecycle, SessionPolicy
from flask_signoff.stores.sql import SQLStore

POLICY = SessionPolicy(
    idle_timeout=600,
    absolute_timeout=3600,
    remember_duration=86400,
    fresh_for=300,
    touch_interval=60,
    max_sessions_per_user=5,
)


@pytest.fixture
def lc(sql_store: SQLStore, clock: FrozenClock) -> SessionLifecycle:
    return SessionLifecycle(sql_store, POLICY, clock)


def test_sign_in_then_load(lc: SessionLifecycle) -> None:
    secret, record = lc.sign_in("alice", ip="127.0.0.1", user_agent="UA")
    loaded = lc.load(secret)
    assert loaded.status is LoadStatus.VALID
    assert loaded.record == record
    assert record.key == hash_secret(secret)
    assert record.ip == "127.0.0.1"


def test_malformed_is_refused_without_a_store_read(lc: SessionLifecycle) -> None:
    class Exploding(SQLStore):
        def get_session(self, key: str) -> None:
            raise AssertionError("store read for a malformed id")

    store = Exploding(lc.store.url.render_as_string(hide_password=False))  # type: ignore[attr-defined]
    strict = SessionLifecycle(store, POLICY, lc.clock)
    for value in ["", "x", "a" * 5000, "é" * 52, "../../etc/passwd"]:
        assert strict.load(value).status is LoadStatus.MALFORMED


def test_unknown_id_is_missing(lc: SessionLifecycle) -> None:
    secret, _ = lc.sign_in("alice")
    other = secret[:9] + ("A" if secret[9] != "A" else "B") + secret[10:]
    assert lc.load(other).status is LoadStatus.MISSING


def test_idle_timeout(lc: SessionLifecycle, clock: FrozenClock) -> None:
    secret, _ = lc.sign_in("alice")
    clock.advance(599)
    assert lc.load(secret).status is LoadStatus.VALID
    clock.advance(1)
    assert lc.load(secret).status is LoadStatus.EXPIRED


def test_activity_keeps_a_session_alive_until_the_absolute_timeout(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    secret, _ = lc.sign_in("alice")
    for _ in range(11):  # 11 x 300 s = 3300 s < 3600 s
        clock.advance(300)
        loaded = lc.load(secret)
        assert loaded.status is LoadStatus.VALID
        assert loaded.record is not None
        if lc.touch_due(loaded.record):
            assert lc.touch(loaded.record)
    clock.advance(300)  # 3600 s after sign-in
    assert lc.load(secret).status is LoadStatus.EXPIRED


def test_touch_interval_is_capped_at_half_the_idle_timeout() -> None:
    policy = dataclasses.replace(POLICY, idle_timeout=10, touch_interval=60)
    assert policy.effective_touch_interval == 5


def test_touch_is_due_only_after_the_interval(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    _, record = lc.sign_in("alice")
    clock.advance(59)
    assert not lc.touch_due(record)
    clock.advance(1)
    assert lc.touch_due(record)


def test_remembered_session_outlives_idle_but_is_revived_not_fresh(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    secret, record = lc.sign_in("alice", remember=True)
    assert record.expires_at == clock() + 86400
    assert lc.is_fresh(record)
    clock.advance(7200)  # past idle and the normal absolute timeout
    loaded = lc.load(secret)
    assert loaded.status is LoadStatus.REVIVED
    assert loaded.record is not None
    rotated = lc.rotate(loaded.record, fresh=False)
    assert rotated is not None
    new_secret, new_record = rotated
    assert not lc.is_fresh(new_record)
    assert lc.load(secret).status is LoadStatus.MISSING
    assert lc.load(new_secret).status is LoadStatus.VALID
    clock.advance(86400)
    assert lc.load(new_secret).status is LoadStatus.EXPIRED


def test_remember_duration_can_be_given_per_login(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    secret, record = lc.sign_in("alice", remember=True, duration=100)
    assert record.expires_at == clock() + 100
    clock.advance(100)
    assert lc.load(secret).status is LoadStatus.EXPIRED


def test_freshness_ends_after_fresh_for(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    _, record = lc.sign_in("alice")
    clock.advance(299)
    assert lc.is_fresh(record)
    clock.advance(1)
    assert not lc.is_fresh(record)
    _, stale = lc.sign_in("alice", fresh=False)
    assert not lc.is_fresh(stale)


def test_sign_in_replaces_the_previous_session(lc: SessionLifecycle) -> None:
    anon_secret, anon = lc.start_anonymous('{"cart": 1}')
    secret, record = lc.sign_in("alice", data=anon.data, replace_key=anon.key)
    assert lc.load(anon_secret).status is LoadStatus.MISSING
    assert lc.load(secret).status is LoadStatus.VALID
    assert record.data == '{"cart": 1}'
    assert secret != anon_secret


def test_rotate_keeps_everything_but_the_id(lc: SessionLifecycle) -> None:
    secret, record = lc.sign_in("alice", data="d")
    rotated = lc.rotate(record)
    assert rotated is not None
    new_secret, new = rotated
    assert new_secret != secret
    assert (new.user_id, new.public_id, new.data, new.created_at) == (
        record.user_id,
        record.public_id,
        record.data,
        record.created_at,
    )
    assert lc.load(secret).status is LoadStatus.MISSING


def test_rotate_never_revives_a_revoked_session(lc: SessionLifecycle) -> None:
    _, record = lc.sign_in("alice")
    assert lc.end(record.key)
    assert lc.rotate(record) is None
    assert lc.sessions_for("alice") == []


def test_save_after_end_does_not_resurrect(lc: SessionLifecycle) -> None:
    secret, record = lc.sign_in("alice")
    lc.end(record.key)
    record.data = "new data"
    assert lc.save(record) is False
    assert lc.touch(record) is False
    assert lc.load(secret).status is LoadStatus.MISSING


def test_end_tolerates_absence(lc: SessionLifecycle) -> None:
    _, record = lc.sign_in("alice")
    assert lc.end(record.key) is True
    assert lc.end(record.key) is False


def test_sessions_for_lists_only_live_sessions_of_the_user(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    _, old = lc.sign_in("alice")
    clock.advance(500)
    _, new = lc.sign_in("alice")
    lc.sign_in("bob")
    assert [r.key for r in lc.sessions_for("alice")] == [new.key, old.key]
    clock.advance(150)  # old is idle past 600 s, new is not
    assert [r.key for r in lc.sessions_for("alice")] == [new.key]


def test_cap_evicts_the_oldest_sessions(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    secrets_ = []
    for _ in range(7):
        clock.advance(1)
        secrets_.append(lc.sign_in("alice")[0])
    assert len(lc.sessions_for("alice")) == 5
    assert lc.load(secrets_[0]).status is LoadStatus.MISSING
    assert lc.load(secrets_[1]).status is LoadStatus.MISSING
    assert lc.load(secrets_[-1]).status is LoadStatus.VALID


def test_revoke_by_public_id_is_owner_only(lc: SessionLifecycle) -> None:
    secret, record = lc.sign_in("alice")
    assert lc.revoke("bob", record.public_id) is None
    assert lc.load(secret).status is LoadStatus.VALID
    revoked = lc.revoke("alice", record.public_id)
    assert revoked is not None
    assert revoked.key == record.key
    assert lc.load(secret).status is LoadStatus.MISSING


def test_revoking_an_expired_session_is_like_an_unknown_one(
    lc: SessionLifecycle, clock: FrozenClock
) -> None:
    # Not listed any more, so not revocable, whether or not the store has
    # dropped the record yet; the record goes all the same.
    secret, record = lc.sign_in("alice")
    _, remembered = lc.sign_in("alice", remember=True)
    clock.advance(POLICY.idle_timeout)
    assert [r.key for r in lc.sessions_for("alice")] == [remembered.key]
    assert lc.revoke("alice", record.public_id) is None
    assert lc.store.get_session(record.key) is None
    # A remembered session outlives the idle timeout: it is still revocable.
    assert lc.revoke("alice", remembered.public_id) is not None
    assert lc.load(secret).status is LoadStatus.MISSING


def test_revoke_others_keeps_the_current_one(lc: SessionLifecycle) -> None:
    keep_secret, keep = lc.sign_in("alice")
    other_secret, _ = lc.sign_in("alice")
    bob_secret, _ = lc.sign_in("bob")
    assert lc.revoke_others("alice", keep.key) == 1
    assert lc.load(keep_secret).status is LoadStatus.VALID
    assert lc.load(other_secret).status is LoadStatus.MISSING
    assert lc.load(bob_secret).status is LoadStatus.VALID


def test_revoke_user_ends_sessions_families_and_bumps_epoch(
    lc: SessionLifecycle, sql_store: SQLStore, clock: FrozenClock
) -> None:
    s1, _ = lc.sign_in("alice")
    s2, _ = lc.sign_in("alice", remember=True)
    bob, _ = lc.sign_in("bob")
    now = clock()
    sql_store.create_family(
        FamilyRecord("fam", "alice", now, now + 100),
        RefreshRecord("k.1", "fam", "alice", now, now + 100),
    )
    assert sql_store.get_epoch("alice") == 0
    assert lc.revoke_user("alice") == 2
    assert sql_store.get_epoch("alice") > 0
    assert lc.load(s1).status is LoadStatus.MISSING
    assert lc.load(s2).status is LoadStatus.MISSING
    assert lc.load(bob).status is LoadStatus.VALID
    assert sql_store.get_refresh("k.1") is None
    assert sql_store.get_epoch("bob") == 0


def test_user_agent_is_truncated(lc: SessionLifecycle) -> None:
    _, record = lc.sign_in("alice", user_agent="x" * 5000)
    assert record.user_agent is not None
    assert len(record.user_agent) == 512
