"""Bursts of parallel guesses against the demo under a real gunicorn.

Two worker processes with several threads each, on 127.0.0.1: the guesses of
one burst run at the same time in different processes, which share nothing
but the store. The password checks are counted from a log line that the test
app (:mod:`tests.outage.throttle_app`) writes for each, not from timing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.outage.conftest import STORE_TIMEOUT
from tests.support.backends import Backend
from tests.support.demo import PASSWORD
from tests.support.gunicorn_demo import Browser, gunicorn_demo

pytestmark = pytest.mark.slow

#: Threads per gunicorn worker (two workers).
THREADS = 8
#: ``SIGNOFF_THROTTLE_ACCOUNT_LIMIT``, the default.
LIMIT = 10
WRONG = "wrong password"


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


def test_a_burst_under_gunicorn_checks_no_more_than_the_limit(
    backend: Backend, tmp_path: Path
) -> None:
    log = tmp_path / "checks.log"
    env = {"THROTTLE_TEST_CHECK_LOG": str(log)}
    # The backend's namespace (a table or key prefix), as the server reads it.
    env.update({f"FLASK_{k}": v for k, v in backend.config.items()})
    # Long enough that every guess of a burst is in flight at once.
    env["THROTTLE_TEST_CHECK_SECONDS"] = "0.2"
    with gunicorn_demo(
        backend.url,
        tmp_path,
        store_timeout=STORE_TIMEOUT,
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
            f"\ngunicorn -w 2 --threads {THREADS}, {backend.name}: "
            f"30 parallel guesses, {first} checked, "
            f"{statuses.count(429)} answered 429"
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
