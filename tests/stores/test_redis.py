"""Redis-only guarantees: key layout, cluster safety, bounded indexes, the Lua
scripts, one command per request."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.connection import AbstractConnection

from flask_signoff.core.records import StoreStats
from flask_signoff.exceptions import StoreError, StoreUnavailable
from flask_signoff.stores import open_store
from flask_signoff.stores.redis import RedisStore, lua, stats
from flask_signoff.stores.redis.connection import guarded
from tests.stores.test_conformance import make_family, make_session, new_key, tagging
from tests.support.servers import RedisCluster, RedisServer


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
def test_a_server_that_refuses_writes_is_unavailable(reply: str) -> None:
    import redis.exceptions

    def refuse() -> None:
        raise redis.exceptions.ResponseError(reply)

    # Every store call goes through `guarded`: the one translation of errors.
    with pytest.raises(StoreUnavailable) as refused:
        guarded(refuse, "redis-cluster", "bump_epoch")
    assert refused.value.backend == "redis-cluster"
    assert refused.value.operation == "bump_epoch"


def test_a_server_short_of_replicas_is_unavailable(
    store: RedisStore, redis_server: RedisServer
) -> None:
    # The same, from a real server: it refuses every write with NOREPLICAS.
    record = make_session(time.time())
    redis_server.command("CONFIG", "SET", "min-replicas-to-write", "1")
    try:
        with pytest.raises(StoreUnavailable, match="NOREPLICAS") as refused:
            store.create_session(record)
        with pytest.raises(StoreUnavailable):
            store.bump_epoch("alice")
    finally:
        redis_server.command("CONFIG", "SET", "min-replicas-to-write", "0")
    assert refused.value.backend == "redis"
    assert refused.value.operation == "create_session"


def test_out_of_memory_is_unavailable_and_other_errors_are_not(
    store: RedisStore, redis_server: RedisServer
) -> None:
    now = time.time()
    record = make_session(now)
    store.create_session(record)
    redis_server.command("CONFIG", "SET", "maxmemory", "1")
    try:
        with pytest.raises(StoreUnavailable):
            store.bump_epoch("alice")
    finally:
        redis_server.command("CONFIG", "SET", "maxmemory", "0")
    # A session that is not a hash: the server answers WRONGTYPE, a fault of
    # the data, not an outage.
    store.client.set(store.keys.session(record.key), "x")
    with pytest.raises(StoreError) as refused:
        store.get_session(record.key)
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


# -- the Lua scripts ------------------------------------------------------------


def test_every_script_has_its_file_and_every_file_is_a_script() -> None:
    from importlib import resources

    folder = resources.files("flask_signoff.stores.redis") / "scripts"
    shipped = {p.name for p in folder.iterdir() if p.name.endswith(".lua")}
    assert shipped == {f"{name}.lua" for name in lua.NAMES} | {"lib.lua"}
    for name in lua.NAMES:
        header = [line for line in lua.read(name).splitlines() if line.startswith("--")]
        # The header says what the script is given.
        assert any(line.startswith("-- KEYS[1]") for line in header), name
        assert any(line.startswith("-- ARGV[1]") for line in header), name


def test_every_script_compiles_on_the_server(store: RedisStore) -> None:
    # SCRIPT LOAD compiles the script: a syntax error is an error reply.
    for name, script in lua.register(store.client).items():
        assert store.client.script_load(lua.source(name)) == script.sha, name


def test_scripts_are_registered_once_per_client(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    registered: list[str] = []
    register = redis.Redis.register_script

    def counted(client: redis.Redis, script: str) -> object:
        registered.append(script)
        return register(client, script)

    monkeypatch.setattr(redis.Redis, "register_script", counted)
    store = open_store(redis_server.url, {"key_prefix": f"r{time.monotonic_ns()}:"})
    with tagging(store):
        for _ in range(3):
            record = make_session(time.time())
            store.create_session(record)
            store.touch_session(record.key, time.time(), record.drop_at)
            store.delete_session(record.key)
        assert len(registered) == len(lua.NAMES)
        store.close()
        store.delete_session(record.key)  # a new client, registered again
        assert len(registered) == 2 * len(lua.NAMES)
    store.close()


# -- round trips ----------------------------------------------------------------


@pytest.fixture(params=["redis_server", "redis_cluster"])
def either(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    server: RedisServer | RedisCluster = request.getfixturevalue(request.param)
    s = open_store(server.url, {"key_prefix": f"r{time.monotonic_ns()}:"})
    assert isinstance(s, RedisStore)
    with tagging(s):
        yield s
    s.close()


def test_a_request_costs_one_command(
    either: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = either
    now = time.time()
    record = make_session(now)
    store.create_session(record)
    family, token = make_family(now)
    store.create_family(family, token)
    sent: list[str] = []
    # Counted where every command leaves for the server, whichever of
    # redis-py's layers sent it (the session read skips the client's).
    send = AbstractConnection.send_command

    def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]))
        return send(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_command", counted)

    def commands(call: Callable[[], object]) -> list[str]:
        call()  # the first call of a script on a server may load it
        sent.clear()
        call()
        return list(sent)

    # A cookie: one read, found or not; a Bearer token: one read.
    assert commands(lambda: store.get_session(record.key)) == ["HGETALL"]
    assert commands(lambda: store.get_session(new_key("alice"))) == ["HGETALL"]
    check = commands(lambda: store.access_state("alice", family.family_id, now))
    assert check == ["MGET"]
    # A save or a touch: one script.
    assert commands(lambda: store.update_session(record)) == ["EVALSHA"]
    assert commands(lambda: store.touch_session(record.key, now, now + 60)) == [
        "EVALSHA"
    ]
    # A refresh token: one read, one compare-and-set.
    assert commands(lambda: store.get_refresh(token.key)) == ["HGETALL"]
    assert commands(lambda: store.spend_refresh(token.key, now)) == ["EVALSHA"]


# -- stats ----------------------------------------------------------------------


def test_stats_scan_every_master_in_bounded_batches(
    either: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = either
    now = time.time()
    users = [f"user{i}" for i in range(12)]
    for user in users:
        store.create_session(make_session(now, user, remember=user.endswith("1")))
    for user in users[:5]:
        store.create_family(*make_family(now, user))
    if store.cluster:
        # The users' keys lie on several masters: a SCAN of one would miss some.
        client: Any = store.client
        nodes = {
            client.get_node_from_key(store.keys.base(store.user_tag(u))).name
            for u in users
        }
        assert len(nodes) > 1
    monkeypatch.setattr(stats, "BATCH", 5)
    sizes: list[int] = []
    make_pipeline = store.client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted(*a: Any, **k: Any) -> Any:
            sizes.append(len(pipe))
            return execute(*a, **k)

        pipe.execute = counted
        return pipe

    monkeypatch.setattr(store.client, "pipeline", pipeline)
    assert store.stats(now) == StoreStats(
        sessions=12, remembered=2, anonymous=0, families=5
    )
    # Never more than one batch of names at a time, whatever the store holds.
    assert sum(sizes) == 12 + 5
    assert max(sizes) <= 5


# -- provider-session indexes ------------------------------------------------------

IDP = "https://idp.example"


def _logout_before(
    store: RedisStore, script: str, monkeypatch: pytest.MonkeyPatch, **which: str
) -> None:
    """Run a logout of the provider session just before ``script`` runs: after
    the record was indexed, before it is written (the race of a sign-in with a
    logout on a cluster, where the two are in different slots)."""
    run = store._run

    def racing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == script:
            monkeypatch.setattr(store, "_run", run)
            store.end_provider_sessions(IDP, until=time.time() + 60, **which)
        return run(name, *args, **kwargs)

    monkeypatch.setattr(store, "_run", racing)


@pytest.mark.parametrize("which", [{"sid": "s1"}, {"sub": "u1"}])
def test_a_sign_in_racing_a_logout_of_its_provider_session_ends(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch, which: dict[str, str]
) -> None:
    now = time.time()
    record = make_session(now, oidc_iss=IDP, oidc_sid="s1", oidc_sub="u1")
    _logout_before(store, "create_session", monkeypatch, **which)
    store.create_session(record)
    assert store.get_session(record.key) is None
    # A sign-in after the logout lives.
    later = make_session(now, oidc_iss=IDP, oidc_sid="s1", oidc_sub="u1")
    store.create_session(later)
    assert store.get_session(later.key) == later


def test_a_family_racing_a_logout_of_its_provider_session_is_revoked(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    family, token = make_family(now)
    family.oidc_iss, family.oidc_sid, family.oidc_sub = IDP, "s1", "u1"
    _logout_before(store, "create_family", monkeypatch, sid="s1")
    store.create_family(family, token)
    assert store.get_family(family.family_id, "alice") is None
    assert store.access_state("alice", family.family_id, now).family_revoked


def test_a_logout_interrupted_half_way_is_finished_by_the_next(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    records = [make_session(now, oidc_iss=IDP, oidc_sid="s1") for _ in range(3)]
    for record in records:
        store.create_session(record)
    delete = store.delete_session
    calls: list[str] = []

    def failing(key: str) -> bool:
        calls.append(key)
        if len(calls) == 2:
            raise StoreUnavailable("down", backend="redis")
        return delete(key)

    monkeypatch.setattr(store, "delete_session", failing)
    with pytest.raises(StoreUnavailable):
        store.end_provider_sessions(IDP, sid="s1", until=now + 60)
    monkeypatch.setattr(store, "delete_session", delete)
    assert sum(store.get_session(r.key) is None for r in records) == 1
    assert store.end_provider_sessions(IDP, sid="s1", until=now + 60) == 2
    assert all(store.get_session(r.key) is None for r in records)


def test_a_provider_index_forgets_sessions_that_expired(store: RedisStore) -> None:
    # A user who signs in through the provider day after day, sessions
    # ending by their timeouts, while a remembered one on another device
    # keeps the index alive: the index of their sub must not keep one
    # member per session ever made.
    index, _ = store.keys.provider_index("sub", IDP, "u1")
    now = time.time()
    phone = make_session(now, oidc_iss=IDP, oidc_sid="phone", oidc_sub="u1")
    store.create_session(phone)
    for day in range(5):
        short = now + 0.3
        record = make_session(
            now, oidc_iss=IDP, oidc_sid=f"s{day}", oidc_sub="u1", expires_at=short
        )
        store.create_session(dataclasses.replace(record, drop_at=short))
    time.sleep(0.4)
    live = make_session(time.time(), oidc_iss=IDP, oidc_sid="s9", oidc_sub="u1")
    store.create_session(live)
    client = store.client
    kept = client.zcard if client.type(index) == "zset" else client.scard
    assert kept(index) == 2
    # The members not yet expired stay, and a logout ends their sessions.
    assert store.end_provider_sessions(IDP, sub="u1", until=now + 60) == 2
    assert store.get_session(live.key) is None
    assert store.get_session(phone.key) is None
