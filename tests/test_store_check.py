"""A store that may lose revocation records is refused before anything is served.

Revocation markers and epochs are ordinary Redis keys. A Redis whose
``maxmemory-policy`` evicts keys (shared with a cache, say) may drop them when
memory runs short, and a revoked token then works again. So ``init_app``
reads the policy on the server, or on every master of a cluster, and refuses
anything but ``noeviction`` unless ``SIGNOFF_REDIS_ALLOW_EVICTION`` says the
operator takes that on. A store that is down at start-up does not stop the
app: every request gets 503 until the check has passed.

Every test runs against real servers: the shared ones with their policy
changed and set back, or a ``redis-server`` of its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from flask_signoff import FrozenClock, Signoff
from flask_signoff.exceptions import ConfigError
from flask_signoff.extension import get_state
from tests.support import SECRET_KEY
from tests.support.apps import make_app
from tests.support.servers import RedisCluster, RedisServer, missing, redis_binary
from tests.test_tokens_flask import add_api, bearer, tokens_for

#: Every test here starts or uses a Redis server.
pytestmark = pytest.mark.slow

FIX = "CONFIG SET maxmemory-policy noeviction"
OPT_OUT = "SIGNOFF_REDIS_ALLOW_EVICTION"


@contextlib.contextmanager
def policy(node: RedisServer, value: str) -> Iterator[None]:
    """Give ``node`` another ``maxmemory-policy`` for the block."""
    assert "OK" in node.command("CONFIG", "SET", "maxmemory-policy", value)
    try:
        yield
    finally:
        node.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        node.command("CONFIG", "SET", "maxmemory", "0")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Make a ``redis-server`` of the test's own: ``own_redis(*args)``.

    Started unless ``start=False``; every one is stopped at the end.
    """
    if redis_binary() is None:
        missing("redis-server")
    made: list[RedisServer] = []

    def make(*args: str, start: bool = True) -> RedisServer:
        directory = tmp_path / f"redis{len(made)}"
        directory.mkdir()
        server = RedisServer(str(directory), args=args)
        made.append(server)
        if start:
            server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture
def redis_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Make the test app (tests/support/apps.py) with the token API on Redis at a URL.

    ``redis_app(url, **config)``; the stores are closed at the end.
    """
    made: list[Flask] = []

    def make(url: str, **config: Any) -> Flask:
        app = make_app(
            tmp_path / "unused.sqlite3",
            FrozenClock(),
            SIGNOFF_STORE_URL=url,
            SIGNOFF_KEY_PREFIX=f"chk{time.monotonic_ns()}:",
            SIGNOFF_STORE_TIMEOUT=1,
            **config,
        )
        add_api(app)
        made.append(app)
        return app

    try:
        yield make
    finally:
        for app in made:
            get_state(app).store.close()


def signs_in(app: Flask) -> bool:
    client = app.test_client()
    return (
        client.post("/login/alice").status_code == 200
        and client.get("/me").status_code == 200
    )


# -- refused at start-up ----------------------------------------------------------


@pytest.mark.parametrize("value", ["allkeys-lru", "volatile-ttl", "allkeys-random"])
def test_an_evicting_policy_is_refused_at_init_app(
    redis_app: Callable[..., Flask], redis_server: RedisServer, value: str
) -> None:
    with policy(redis_server, value), pytest.raises(ConfigError) as refused:
        redis_app(redis_server.url)
    message = str(refused.value)
    assert "maxmemory-policy" in message
    assert repr(value) in message
    assert f"127.0.0.1:{redis_server.port}" in message
    assert FIX in message
    assert "redis.conf" in message
    assert OPT_OUT in message


def test_one_cluster_master_with_an_evicting_policy_is_enough_to_refuse(
    redis_app: Callable[..., Flask], redis_cluster: RedisCluster
) -> None:
    bad = redis_cluster.nodes[1]
    with policy(bad, "allkeys-lru"), pytest.raises(ConfigError) as refused:
        redis_app(redis_cluster.url)
    message = str(refused.value)
    assert f"127.0.0.1:{bad.port}" in message
    assert "'allkeys-lru'" in message
    assert FIX in message
    for good in (redis_cluster.nodes[0], redis_cluster.nodes[2]):
        assert f"127.0.0.1:{good.port}" not in message


@pytest.mark.parametrize("where", ["redis_server", "redis_cluster"])
def test_noeviction_is_accepted(
    redis_app: Callable[..., Flask],
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    server: RedisServer | RedisCluster = request.getfixturevalue(where)
    app = redis_app(server.url)
    assert signs_in(app)
    assert "maxmemory-policy" not in caplog.text


def test_the_opt_out_starts_with_a_warning(
    redis_app: Callable[..., Flask],
    redis_cluster: RedisCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = redis_cluster.nodes[2]
    with policy(bad, "volatile-lru"):
        app = redis_app(redis_cluster.url, **{OPT_OUT: True})
        assert signs_in(app)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        r.name == "flask_signoff"
        and f"127.0.0.1:{bad.port}" in r.getMessage()
        and "'volatile-lru'" in r.getMessage()
        and OPT_OUT in r.getMessage()
        for r in warnings
    ), caplog.text


def test_the_opt_out_is_read_from_the_environment(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"FLASK_{OPT_OUT}", "true")
    with policy(redis_server, "allkeys-lru"):
        app = Flask(__name__, instance_path=str(tmp_path))
        app.config.from_prefixed_env()
        assert app.config[OPT_OUT] is True
        app.config.update(
            SECRET_KEY=SECRET_KEY, TESTING=True, SIGNOFF_STORE_URL=redis_server.url
        )
        Signoff(app)  # starts
        get_state(app).store.close()


# -- the policy cannot be read ------------------------------------------------------


def test_config_renamed_away_is_a_config_error_naming_the_opt_out(
    redis_app: Callable[..., Flask],
    own_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = own_redis("--rename-command", "CONFIG", "")
    with pytest.raises(ConfigError) as refused:
        redis_app(server.url)
    message = str(refused.value)
    assert "maxmemory-policy" in message
    assert "could not be read" in message
    assert f"127.0.0.1:{server.port}" in message
    assert OPT_OUT in message
    # What the operator then answers for.
    assert "noeviction" in message
    assert "never evicts" in message

    app = redis_app(server.url, **{OPT_OUT: True})
    assert signs_in(app)
    assert any(
        r.levelno == logging.WARNING
        and "could not be read" in r.getMessage()
        and OPT_OUT in r.getMessage()
        for r in caplog.records
    ), caplog.text


def test_a_user_without_config_permission_is_a_config_error(
    redis_app: Callable[..., Flask], own_redis: Callable[..., RedisServer]
) -> None:
    server = own_redis()
    server.command(
        "ACL", "SETUSER", "app", "on", ">hunter2", "~*", "&*", "+@all", "-config"
    )
    url = f"redis://app:hunter2@127.0.0.1:{server.port}/0"
    with pytest.raises(ConfigError) as refused:
        redis_app(url)
    message = str(refused.value)
    assert "could not be read" in message
    assert "no permissions" in message
    assert OPT_OUT in message
    assert "hunter2" not in message


# -- the store is down at start-up -----------------------------------------------------


def test_a_store_down_at_start_gives_503_until_it_is_checked(
    redis_app: Callable[..., Flask],
    own_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = own_redis(start=False)
    app = redis_app(server.url)  # starts
    assert "will be checked" in caplog.text
    client = app.test_client()
    for path in ("/public", "/me"):
        r = client.get(path, headers={"Accept": "application/json"})
        assert r.status_code == 503, path
        assert r.json["error"] == "store_unavailable"
        assert r.headers["Retry-After"]
        assert not r.headers.getlist("Set-Cookie")
    assert client.post("/login/alice").status_code == 503

    server.start()
    assert client.get("/public").status_code == 200
    assert signs_in(app)


def test_a_store_back_with_an_evicting_policy_stays_503_until_fixed(
    redis_app: Callable[..., Flask],
    own_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = own_redis("--maxmemory-policy", "allkeys-lru", start=False)
    app = redis_app(server.url)
    client = app.test_client()
    assert client.get("/public").status_code == 503
    server.start()
    caplog.clear()
    for _ in range(3):
        assert client.post("/login/alice").status_code == 503
        assert client.get("/public").status_code == 503
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    # Said once, with what to do, not once per request.
    assert len(errors) == 1, caplog.text
    assert FIX in errors[0].getMessage()
    assert "'allkeys-lru'" in errors[0].getMessage()

    server.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    assert client.get("/public").status_code == 200
    assert signs_in(app)


# -- the attack ----------------------------------------------------------------------


def revoke_then_fill(app: Flask, server: RedisServer) -> int:
    """Revoke an access token, let another tenant fill Redis; the token's status.

    The other tenant caches values for an hour; the revocation marker lives
    as long as the access token (15 minutes), so ``volatile-ttl`` evicts it
    first once Redis reaches ``maxmemory``.
    """
    client = app.test_client()
    access = tokens_for(client)["access_token"]
    assert client.get("/api/me", headers=bearer(access)).status_code == 200
    assert client.post("/api/logout", headers=bearer(access)).status_code == 204
    assert client.get("/api/me", headers=bearer(access)).status_code == 401

    with contextlib.closing(redis.Redis(host="127.0.0.1", port=server.port)) as tenant:
        markers = list(tenant.scan_iter(match="chk*:rv:*"))
        assert len(markers) == 1
        used = int(tenant.info("memory")["used_memory"])
        tenant.config_set("maxmemory", used + 256 * 1024)
        value = b"x" * 4096
        for i in range(2048):  # 8 MB at most
            tenant.set(f"cache:{i}", value, ex=3600)
            if i % 16 == 0 and not tenant.exists(*markers):
                break
        evicted = not tenant.exists(*markers)
        assert tenant.dbsize() > 16
    assert evicted, "the marker outlived 8 MB of another tenant's data"
    status: int = client.get("/api/me", headers=bearer(access)).status_code
    return status


def test_eviction_cannot_bring_a_revoked_token_back(
    redis_app: Callable[..., Flask], own_redis: Callable[..., RedisServer]
) -> None:
    server = own_redis("--maxmemory-policy", "volatile-ttl")
    refused = ""
    try:
        app = redis_app(server.url)
    except ConfigError as e:
        refused = str(e)
    if refused:
        assert "'volatile-ttl'" in refused
        assert FIX in refused
        return
    # The app started on an evicting Redis: this is what that lets through.
    status = revoke_then_fill(app, server)
    assert status == 401, f"a revoked access token worked again ({status})"


def test_what_the_opt_out_gives_up(
    redis_app: Callable[..., Flask],
    own_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not a property to keep but the reason for the check: under the opt-out,
    # an evicting Redis does bring a revoked token back.
    server = own_redis("--maxmemory-policy", "volatile-ttl")
    app = redis_app(server.url, **{OPT_OUT: True})
    assert "'volatile-ttl'" in caplog.text
    assert revoke_then_fill(app, server) == 200
