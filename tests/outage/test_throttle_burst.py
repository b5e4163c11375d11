"""Bursts of parallel guesses against the demo under a real gunicorn.

Two worker processes with several threads each, on 127.0.0.1: the guesses of
one burst run at the same time in different processes, which share nothing
but the store. The password checks are counted from a log line that the test
app (:mod:`tests.outage.throttle_app`) writes for each, not from timing.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from tests.outage.test_outage import PASSWORD, Browser, gunicorn_demo
from tests.support.servers import PostgresServer, RedisCluster, RedisServer

pytestmark = pytest.mark.slow

#: Threads per gunicorn worker (two workers).
THREADS = 8
#: ``SIGNOFF_THROTTLE_ACCOUNT_LIMIT``, the default.
LIMIT = 10
WRONG = "wrong password"

_namespaces = itertools.count()


def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    n = next(_namespaces)
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'signoff.sqlite3'}"
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres_server")
        return pg.create_database(f"throttle_burst_{n}")
    fixture = "redis_server" if backend == "redis" else "redis_cluster"
    server: RedisServer | RedisCluster = request.getfixturevalue(fixture)
    return server.url


def burst(base: str, passwords: list[str]) -> tuple[list[int], Browser]:
    """Sign-ins as alice, one per password, all sent at once.

    Each browser fetches its form (and CSRF token) first; then they all
    post together. Returns the statuses and the browser of the last one.
    """
    browsers = [Browser(base, user_agent=f"burst {i}") for i in range(len(passwords))]
    tokens = [b.csrf("/login") for b in browsers]
    barrier = threading.Barrier(len(browsers))
    statuses = [0] * len(browsers)

    def post(i: int) -> None:
        form = {"username": "alice", "password": passwords[i], "csrf_token": tokens[i]}
        barrier.wait(timeout=30)
        statuses[i] = browsers[i].request("POST", "/login", form=form)[0]

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(browsers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "the burst did not end"
    return statuses, browsers[-1]


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis_cluster", "postgres"])
def test_a_burst_under_gunicorn_checks_no_more_than_the_limit(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(backend, request, tmp_path)
    log = tmp_path / "checks.log"
    env = {
        "THROTTLE_TEST_CHECK_LOG": str(log),
        "FLASK_SIGNOFF_KEY_PREFIX": f"burst{next(_namespaces)}:",
    }
    # Long enough that every guess of a burst is in flight at once.
    env["THROTTLE_TEST_CHECK_SECONDS"] = "0.2"
    if backend in ("sqlite", "postgres"):
        del env["FLASK_SIGNOFF_KEY_PREFIX"]
    with gunicorn_demo(
        url,
        tmp_path,
        threads=THREADS,
        app="tests.outage.throttle_app:create_app()",
        env_extra=env,
    ) as (base, logs):

        def checked() -> int:
            return len(log.read_text().splitlines()) if log.exists() else 0

        assert (
            Browser(base).post_form("/register", username="alice", password=PASSWORD)
            == 303
        )
        statuses, _ = burst(base, [WRONG] * 30)
        first = checked()
        print(
            f"\ngunicorn -w 2 --threads {THREADS}, {backend}: 30 parallel guesses, "
            f"{first} checked, {statuses.count(429)} answered 429"
        )
        assert first <= LIMIT
        assert first == LIMIT
        assert sorted(statuses) == [401] * LIMIT + [429] * (30 - LIMIT)

        # Locked: 39 guesses and the right password, at once. None is checked.
        statuses, right = burst(base, [WRONG] * 39 + [PASSWORD])
        print(f"  locked window, 40 more: {checked() - first} checked")
        assert statuses == [429] * 40
        assert checked() == first
        assert right.request("GET", "/api/me")[0] == 401
    error_log = (logs / "error.log").read_text() + (logs / "stderr.log").read_text()
    assert "Traceback" not in error_log, error_log[-3000:]
