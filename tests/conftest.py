"""Fixtures shared by the whole test suite.

- ``clock``: a :class:`~flask_signoff.FrozenClock`, the one every app and
  lifecycle of a test shares; tests move time with ``clock.advance()``.
- ``db_path``, ``sql_store``, ``lifecycle``, ``app``, ``client``: the
  Flask-Login API test app (:mod:`tests.support.apps`) on a SQLite file.
- ``instance``: an app's instance folder (the demo keeps its files there).
- ``backend``, ``store``: the test runs once per store backend, SQLite,
  Redis, a Redis Cluster and PostgreSQL, each time in a namespace of its own
  (:mod:`tests.support.backends`). A test of an app puts its store there
  with ``**backend.config``; a test of a store takes ``store``.
- ``redis_server``, ``redis_cluster``, ``postgres_server``: the real
  servers, started once per test session on free loopback ports and stopped
  at the end even when tests fail (:mod:`tests.support.servers`).
- ``oidc_demo``: the demo under ``flask run``, signed in through a real
  OpenID Connect provider (panva's ``oidc-provider``), both started once
  per test session (:mod:`tests.support.oidc_demo`).

Helpers that are not fixtures live in :mod:`tests.support`.

Markers: a test that starts a server or a process, or takes seconds, is
``slow``; a test in a real browser is ``browser`` (and ``slow``). The hook
below marks by itself every test that uses a server fixture or runs on a
backend other than SQLite; others carry the mark in their module. So
``pytest -m "not slow and not browser"`` runs every module on SQLite in
well under a minute, and plain ``pytest`` (CI) runs everything.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_signoff import FrozenClock
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.store import Store
from flask_signoff.stores.sql import SQLStore
from tests.support.apps import make_app
from tests.support.backends import BACKENDS, SERVER_BACKENDS, Backend, open_backend
from tests.support.oidc_demo import OIDCDemo, run_oidc_demo
from tests.support.servers import (
    PostgresServer,
    RedisCluster,
    RedisServer,
    running_test,
    started,
)

# The forwarding `flask_login` package is imported only by the run of
# Flask-Login's own suite; collected here, its `test_client.py` would put it
# first on sys.path and shadow the real Flask-Login for every later test.
collect_ignore = ["flask_login_shim"]

#: Where the tests' temporary files go when the caller chose nowhere: memory.
TMPFS = "/dev/shm"


def pytest_configure(config: pytest.Config) -> None:
    # SQLite stores sync every commit to disk (synchronous=FULL): on a busy
    # disk that is most of what a store test waits for, and nothing a test
    # checks. With a roomy tmpfs, and neither TMPDIR nor --basetemp given,
    # tmp_path and every temporary folder (servers' too) live in memory.
    if config.option.basetemp or os.environ.get("TMPDIR"):
        return
    roomy = os.path.isdir(TMPFS) and os.access(TMPFS, os.W_OK)
    if roomy and shutil.disk_usage(TMPFS).free > 2 * 1024**3:
        tempfile.tempdir = TMPFS


#: Fixtures that start a server process: a test that uses one is ``slow``.
SERVER_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_cluster",
        "postgres_server",
        "outage_redis",
        "outage_postgres",
        "demo_server",
        "oidc_demo",
    }
)
#: Fixtures that drive a real browser: a test that uses one is ``browser``.
BROWSER_FIXTURES = frozenset({"new_browser"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that needs a server, ``browser`` a browser's.

    A test needs a server when it uses a server fixture, runs on a backend
    other than SQLite (the ``backend`` fixture or parameter), or takes the
    name of a server fixture as a parameter (to ``getfixturevalue`` it).
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = dict(callspec.params) if callspec is not None else {}
        names = {v for v in params.values() if isinstance(v, str)}
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if (
            fixtures & (SERVER_FIXTURES | BROWSER_FIXTURES)
            or params.get("backend") in SERVER_BACKENDS
            or names & SERVER_FIXTURES
        ):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    # tests.support.servers refuses to start a server for a test that is
    # not marked slow (a server fixture missing from SERVER_FIXTURES).
    running_test.append(item)
    try:
        return (yield)
    finally:
        running_test.remove(item)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """The instance folder of an app under test (not created)."""
    return tmp_path / "instance"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, instance: Path) -> Iterator[Backend]:
    """The store backend the test runs on, in a namespace of the test's own."""
    yield from open_backend(request.param, instance, request)


@pytest.fixture
def store(backend: Backend) -> Store:
    """The store of ``backend``."""
    return backend.store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "signoff.sqlite3"


@pytest.fixture
def sql_store(db_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{db_path}")
    yield store
    store.close()


@pytest.fixture
def lifecycle(sql_store: SQLStore, clock: FrozenClock) -> SessionLifecycle:
    return SessionLifecycle(sql_store, SessionPolicy(), clock)


@pytest.fixture
def app(db_path: Path, clock: FrozenClock) -> Flask:
    return make_app(db_path, clock)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone ``redis-server``."""
    directory = str(tmp_path_factory.mktemp("redis"))
    with started(lambda: RedisServer(directory)) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters."""
    directory = str(tmp_path_factory.mktemp("redis-cluster"))
    with started(lambda: RedisCluster(directory)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server with an empty database ``signoff``."""
    # mkdtemp, not tmp_path: the server runs as another user and pytest's
    # folders are 0700 root.
    with started(lambda: PostgresServer(tempfile.mkdtemp(prefix="signoff-pg-"))) as pg:
        yield pg


@pytest.fixture(scope="session", name="oidc_demo")
def oidc_demo_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OIDCDemo]:
    """The demo and the OpenID Connect provider it signs in through."""
    with run_oidc_demo(str(tmp_path_factory.mktemp("oidc"))) as servers:
        yield servers
