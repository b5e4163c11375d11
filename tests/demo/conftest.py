"""Fixtures for the demo's HTTP tests: a fresh app, clients, a frozen clock.

The ``app`` fixture runs every test that uses it once per store backend:
SQLite (the default, a file in the instance folder), Redis, a Redis Cluster
and PostgreSQL. The servers are started once per test session
(``tests/conftest.py``); each test gets a namespace of its own (a new key
prefix on Redis, a new table prefix on PostgreSQL), so no test sees another's
records and no server is restarted or flushed between tests.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from examples.demo import create_app
from flask_signoff import FrozenClock
from flask_signoff.extension import get_state
from flask_signoff.stores.redis import RedisStore
from flask_signoff.stores.sql import SQLStore
from tests.support import SECRET_KEY
from tests.support.csrf_apps import count_sessions as count_sqlite_sessions
from tests.support.servers import PostgresServer, RedisCluster, RedisServer

PASSWORD = "correct horse battery"
BACKENDS = ["sqlite", "redis", "redis_cluster", "postgres"]

_namespaces = itertools.count()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the store backend the test runs on."""
    return str(request.param)


@pytest.fixture
def store_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``SIGNOFF_*`` keys that put the demo's store on ``backend``."""
    n = next(_namespaces)
    if backend == "sqlite":
        return {}  # the default: signoff.sqlite3 in the instance folder
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres_server")
        return {"SIGNOFF_STORE_URL": pg.url, "SIGNOFF_TABLE_PREFIX": f"demo{n}_"}
    fixture = "redis_server" if backend == "redis" else "redis_cluster"
    server: RedisServer | RedisCluster = request.getfixturevalue(fixture)
    return {"SIGNOFF_STORE_URL": server.url, "SIGNOFF_KEY_PREFIX": f"demo{n}:"}


@pytest.fixture
def app(
    instance: Path, clock: FrozenClock, store_config: dict[str, Any]
) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": SECRET_KEY,
            "SIGNOFF_TEST_CLOCK": clock,
            # Cheap hashes: the tests sign in hundreds of times.
            "DEMO_ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024},
            **store_config,
        }
    )
    yield app
    # The tables or keys of this test stay behind (the servers are thrown away
    # at the end of the session); its connections do not.
    get_state(app).store.close()
    app.extensions["demo_users"].engine.dispose()


def count_sessions(app: Flask) -> int:
    """Session records in the app's store, in any state, read from the backend.

    Read directly rather than through the store's own reads, which skip what
    is expired: any record at all counts.
    """
    store = get_state(app).store
    if isinstance(store, SQLStore):
        if store.dialect == "sqlite":
            return count_sqlite_sessions(app.instance_path)
        sessions = store.t["sessions"]
        with store.engine.connect() as conn:
            if not sa.inspect(conn).has_table(sessions.name):
                return 0
            count = sa.select(sa.func.count()).select_from(sessions)
            return int(conn.execute(count).scalar_one())
    assert isinstance(store, RedisStore)
    # Every session hash is `<prefix>{<tag>}:s:<key>`; on a cluster, on any node.
    return len(store._scan(f"{store.prefix}*:s:*"))


def forget_expired(app: Flask) -> None:
    """Make the store forget every session past its ``drop_at``.

    What happens on its own, some time after the deadline: SQL stores drop
    such rows with ``flask signoff purge``; Redis expires the session hash on
    its own clock, leaving the user's index entry and the public-id link to
    expire or be cleaned later. A frozen clock runs ahead of Redis's, so this
    does by hand what Redis would do once real time caught up.
    """
    state = get_state(app)
    now = state.clock()
    store = state.store
    if isinstance(store, SQLStore):
        app.test_cli_runner().invoke(args=["signoff", "purge"], catch_exceptions=False)
        return
    assert isinstance(store, RedisStore)
    client = store.client
    for name in store._scan(f"{store.prefix}*:s:*"):
        drop_at = client.hget(name, "drop_at")
        if drop_at is not None and float(drop_at) <= now:
            client.delete(name)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The csrf_token of the first form on ``path``."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, f"no csrf_token on {path}"
    return match.group(1)


def post_form(client: FlaskClient, path: str, **fields: str) -> TestResponse:
    """POST ``fields`` to ``path`` with the csrf_token its own form shows."""
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, path)})


@pytest.fixture
def register(app: Flask) -> Callable[[str], None]:
    def register(username: str, password: str = PASSWORD) -> None:
        response = post_form(
            app.test_client(), "/register", username=username, password=password
        )
        assert response.status_code == 303

    return register


@pytest.fixture
def login(app: Flask, register: Callable[[str], None]) -> Callable[..., FlaskClient]:
    """``login("alice")``: a new client signed in as alice (registered once)."""
    known: set[str] = set()

    def login(
        username: str = "alice", *, remember: bool = False, user_agent: str = "Werkzeug"
    ) -> FlaskClient:
        if username not in known:
            register(username)
            known.add(username)
        client = app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = user_agent
        data = {
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_token(client),
        }
        if remember:
            data["remember"] = "1"
        response = client.post("/login", data=data)
        assert response.status_code == 303
        return client

    return login
