"""Real faults under one store: a frozen server, a restarted one.

Every call made while the server is frozen fails as ``StoreUnavailable``
within a bound (``SIGNOFF_STORE_TIMEOUT`` and a margin), never hangs; after a
restart the first call works, on connections that died in the pool; a
restarted server still has every record.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.store import Store
from flask_signoff.exceptions import StoreUnavailable
from flask_signoff.stores import open_store
from tests.outage.conftest import STORE_TIMEOUT
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

#: Longest a failing call may take: PostgreSQL's watchdog ends a call at
#: 1.5 times the timeout, and psycopg never gives up connecting before 2 s.
BOUND = max(1.5 * STORE_TIMEOUT, 2.0) + 0.5

_namespaces = itertools.count()


@pytest.fixture(params=["redis", "postgres"])
def server(request: pytest.FixtureRequest) -> RedisServer | PostgresServer:
    name = "outage_redis" if request.param == "redis" else "outage_postgres"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def store(server: RedisServer | PostgresServer) -> Iterator[Store]:
    n = next(_namespaces)
    options: dict[str, object] = {"timeout": STORE_TIMEOUT}
    if isinstance(server, RedisServer):
        options["key_prefix"] = f"faults{n}:"
    else:
        options["table_prefix"] = f"faults{n}_"
    store = open_store(server.url, options)
    yield store
    store.close()


def timed(call: Callable[[], object], limit: float = 10.0) -> tuple[object, float]:
    """Run ``call`` in a thread; its result or exception, and how long it took.

    A thread, so that a call that hangs (the bug this guards against) fails
    the test after ``limit`` seconds instead of hanging it.
    """
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as e:
            outcome.append(e)

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - start
    assert outcome, f"the call still hangs after {limit} s"
    return outcome[0], elapsed


def test_frozen_server_fails_fast_then_recovers(
    server: RedisServer | PostgresServer, store: Store
) -> None:
    lifecycle = SessionLifecycle(store, SessionPolicy())
    secret, record = lifecycle.sign_in("alice")
    assert lifecycle.load(secret).alive  # a pooled connection, now in use
    server.pause()
    try:
        # A read on a pooled connection, then a write (on PostgreSQL, on a
        # new connection: the pool was emptied).
        outcome, elapsed = timed(lambda: lifecycle.load(secret))
        assert isinstance(outcome, StoreUnavailable), outcome
        assert elapsed < BOUND
        outcome, elapsed = timed(lambda: lifecycle.touch(record))
        assert isinstance(outcome, StoreUnavailable), outcome
        assert elapsed < BOUND
    finally:
        server.resume()
    # The very first call after the server thaws works.
    assert lifecycle.load(secret).alive
    assert lifecycle.touch(record)


def test_restarted_server_has_everything_and_the_first_call_works(
    server: RedisServer | PostgresServer, store: Store
) -> None:
    lifecycle = SessionLifecycle(store, SessionPolicy())
    signed_in = [lifecycle.sign_in("alice") for _ in range(3)]
    for secret, _ in signed_in:
        assert lifecycle.load(secret).alive  # every pooled connection used
    server.stop()
    try:
        # On a pooled connection, then on new ones that cannot connect.
        calls = [lambda: lifecycle.load(signed_in[0][0])] * 2
        calls.append(lambda: lifecycle.touch(signed_in[0][1]))
        for call in calls:
            outcome, elapsed = timed(call)
            assert isinstance(outcome, StoreUnavailable), outcome
            assert elapsed < BOUND
    finally:
        server.start()
    # Reads and writes each work at the first try, and nothing was lost.
    secret, record = signed_in[1]
    assert lifecycle.load(secret).alive
    assert lifecycle.touch(record)
    assert {r.key for r in lifecycle.sessions_for("alice")} == {
        r.key for _, r in signed_in
    }


def test_stale_connections_after_a_restart_cost_no_request(
    server: RedisServer | PostgresServer, store: Store
) -> None:
    # The server restarts while the store is idle: its pooled connections
    # die without it noticing. No call may fail because of them.
    lifecycle = SessionLifecycle(store, SessionPolicy())
    secret, record = lifecycle.sign_in("alice")
    assert lifecycle.load(secret).alive
    server.stop()
    server.start()
    assert lifecycle.touch(record)  # a write first
    server.stop()
    server.start()
    assert lifecycle.load(secret).alive  # a read first
