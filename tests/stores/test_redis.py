"""Redis-only guarantees: key layout, cluster safety, bounded indexes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flask_signoff.exceptions import StoreError, StoreUnavailable
from flask_signoff.stores import open_store
from flask_signoff.stores.redis import RedisStore
from tests.stores.test_conformance import make_family, make_session, new_key, tagging
from tests.support.servers import RedisServer


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    s = open_store(redis_server.url, {"key_prefix": f"r{time.monotonic_ns()}:"})
    assert isinstance(s, RedisStore)
    with tagging(s):
        yield s


def test_cluster_url_makes_a_cluster_store_without_touching_the_network() -> None:
    s = open_store("redis+cluster://127.0.0.1:1")
    assert isinstance(s, RedisStore)
    assert s.cluster is True
    assert isinstance(open_store("rediss+cluster://h:1"), RedisStore)


def test_prefix_may_not_move_the_hash_tag() -> None:
    with pytest.raises(StoreError):
        RedisStore("redis://127.0.0.1:1", key_prefix="app{x}:")


def test_signed_in_keys_must_carry_the_users_tag(store: RedisStore) -> None:
    now = time.time()
    record = make_session(now)
    record.key = new_key("bob")
    with pytest.raises(StoreError):
        store.create_session(record)
    family, token = make_family(now)
    token.key = new_key(None)
    with pytest.raises(StoreError):
        store.create_family(family, token)


def test_every_key_of_a_user_is_in_one_slot(store: RedisStore) -> None:
    from redis.crc import key_slot

    now = time.time()
    store.create_session(make_session(now))
    store.create_family(*make_family(now))
    store.bump_epoch("alice")
    store.revoke_family("f", "alice", now + 60)
    # Every key but the routing key, which is the store's, not a user's.
    names = list(store.client.scan_iter(match=f"{store.prefix}{{*"))
    assert len(names) == 9
    assert all(f"{{{store.user_tag('alice')}}}" in n for n in names)
    assert len({key_slot(n.encode()) for n in names}) == 1


def test_session_index_never_grows_past_the_cap(store: RedisStore) -> None:
    now = time.time()
    for i in range(10):
        store.create_session(make_session(now, age=10 - i), max_per_user=3)
    index = f"{store.prefix}{{{store.user_tag('alice')}}}:si:alice"
    assert store.client.zcard(index) == 3
    # Dead members (sessions expired natively) are dropped on the next write.
    store.create_session(make_session(now, drop_at=now + 0.2), max_per_user=3)
    time.sleep(0.3)
    store.create_session(make_session(now), max_per_user=3)
    assert store.client.zcard(index) == 3
    assert store.client.pttl(index) > 0


def test_purge_has_nothing_to_do(store: RedisStore) -> None:
    store.create_session(make_session(time.time()))
    assert store.purge_expired(time.time() + 10**6) == 0


@pytest.mark.parametrize(
    "reply",
    [
        "MISCONF Redis is configured to save RDB snapshots, but it's currently "
        "unable to persist to disk.",
        "NOREPLICAS Not enough good replicas to write.",
        "BUSY Redis is busy running a script.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is no.",
    ],
)
def test_a_server_that_refuses_writes_is_unavailable(
    store: RedisStore, reply: str
) -> None:
    import redis.exceptions

    def refuse() -> None:
        raise redis.exceptions.ResponseError(reply)

    with pytest.raises(StoreUnavailable):
        store._guard(refuse)


def test_out_of_memory_is_unavailable_and_other_errors_are_not(
    store: RedisStore, redis_server: RedisServer
) -> None:
    now = time.time()
    store.create_session(make_session(now))
    redis_server.command("CONFIG", "SET", "maxmemory", "1")
    try:
        with pytest.raises(StoreUnavailable):
            store.bump_epoch("alice")
    finally:
        redis_server.command("CONFIG", "SET", "maxmemory", "0")
    store.client.set(f"{store.prefix}plain", "x")
    with pytest.raises(StoreError) as refused:
        store._guard(lambda: store.client.hgetall(f"{store.prefix}plain"))
    assert not isinstance(refused.value, StoreUnavailable)


def test_records_written_before_auth_stamps_read_as_bound_to_none(
    store: RedisStore,
) -> None:
    # Hashes written by a version without the field (during an upgrade).
    now = time.time()
    record = make_session(now)
    store.create_session(record)
    family, token = make_family(now)
    store.create_family(family, token)
    base = f"{store.prefix}{{{store.user_tag('alice')}}}:"
    store.client.hdel(f"{base}s:{record.key}", "auth_stamp")
    store.client.hdel(f"{base}f:{family.family_id}", "auth_stamp")
    got = store.get_session(record.key)
    assert got is not None
    assert got.auth_stamp == ""
    listed = store.get_family(family.family_id, "alice")
    assert listed is not None
    assert listed.auth_stamp == ""
