"""Bursts of parallel guesses against the demo's sign-in, on every backend.

An attacker does not wait for one guess to fail before sending the next: the
requests below start together, each from a thread of its own. The throttle
must hold anyway: no more passwords are checked than the limit allows, and
a locked account stays locked for every request of a burst, the right
password included. Password checks are counted where they happen, in the
demo's ``UserStore.authenticate``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_signoff.extension import get_state
from tests.demo.test_demo_http import COOKIE
from tests.support.backends import count_sessions
from tests.support.demo import PASSWORD
from tests.support.forms import csrf_token, post_form

#: How long one password check takes here, in seconds: about what a real
#: argon2 hash costs (the tests' own hashes are made cheap). argon2 and
#: sleep both release the GIL, so checks overlap as on a real server.
CHECK_SECONDS = 0.05
WRONG = "wrong password"


class Checks:
    """Counts the password checks of the demo's user store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def wrap(self, authenticate: Callable[[str, str], Any]) -> Callable[..., Any]:
        def counted(username: str, password: str) -> Any:
            with self.lock:
                self.count += 1
            time.sleep(CHECK_SECONDS)
            return authenticate(username, password)

        return counted


@pytest.fixture
def checks(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Checks:
    users = app.extensions["demo_users"]
    counter = Checks()
    monkeypatch.setattr(users, "authenticate", counter.wrap(users.authenticate))
    return counter


@pytest.fixture
def limit(app: Flask) -> int:
    value = get_state(app).settings.throttle_account_limit
    assert value == 10  # the default, which these tests rely on
    return value


class Burst:
    """Requests prepared one by one (clients, CSRF tokens), sent at once."""

    def __init__(self, app: Flask, endpoint: str) -> None:
        self.app = app
        self.endpoint = endpoint
        self.clients: list[FlaskClient] = []
        self.sends: list[Callable[[], Any]] = []

    def add(self, username: str, password: str) -> FlaskClient:
        client = self.app.test_client()
        if self.endpoint == "/login":
            form = {
                "username": username,
                "password": password,
                "csrf_token": csrf_token(client),
            }
            self.sends.append(lambda: client.post("/login", data=form))
        else:
            body = {"username": username, "password": password}
            self.sends.append(lambda: client.post("/api/token", json=body))
        self.clients.append(client)
        return client

    def run(self) -> list[int]:
        barrier = threading.Barrier(len(self.sends))
        statuses: list[int] = [0] * len(self.sends)

        def send(i: int) -> None:
            barrier.wait(timeout=30)
            statuses[i] = self.sends[i]().status_code

        threads = [
            threading.Thread(target=send, args=(i,)) for i in range(len(self.sends))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "the burst did not end"
        return statuses


@pytest.fixture(params=["/login", "/api/token"])
def endpoint(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def alice(register: Callable[[str], None]) -> str:
    register("alice")
    return "alice"


@pytest.mark.slow  # bursts of checks that each take CHECK_SECONDS: seconds
def test_a_burst_of_guesses_checks_no_more_than_the_limit(
    app: Flask, endpoint: str, alice: str, checks: Checks, limit: int
) -> None:
    burst = Burst(app, endpoint)
    for _ in range(30):
        burst.add(alice, WRONG)
    statuses = burst.run()
    refused = statuses.count(429)
    print(f"\n{endpoint}: 30 parallel guesses, {checks.count} checked, {refused} 429")
    assert checks.count <= limit
    assert checks.count == limit  # and no earlier than the limit either
    assert statuses.count(401) == checks.count
    assert refused == 30 - checks.count

    # The window is locked: a burst of guesses with the right password in
    # it checks nothing, and nobody is signed in.
    burst = Burst(app, endpoint)
    for _ in range(39):
        burst.add(alice, WRONG)
    right = burst.add(alice, PASSWORD)
    statuses = burst.run()
    print(f"{endpoint}: locked, 40 more: {checks.count - limit} checked")
    assert statuses == [429] * 40
    assert checks.count == limit
    assert count_sessions(app) == 0
    assert right.get("/api/me").status_code == 401


def test_a_success_gives_back_its_own_attempt_only(
    app: Flask, alice: str, checks: Checks, limit: int
) -> None:
    """9 wrong, the right one, 9 wrong: the success is not counted, but it
    does not wipe the failures before it either (else every sign-in of the
    real user would buy an attacker a new round of guesses)."""
    client = app.test_client()

    def attempt(password: str) -> int:
        r = post_form(client, "/login", username=alice, password=password)
        return r.status_code

    statuses = [attempt(WRONG) for _ in range(limit - 1)]
    assert statuses == [401] * (limit - 1)
    assert attempt(PASSWORD) == 303
    statuses = [attempt(WRONG) for _ in range(limit - 1)]
    # The tenth failure of the window is checked; the rest are refused.
    assert statuses == [401] + [429] * (limit - 2)
    assert attempt(PASSWORD) == 429
    assert checks.count == limit + 1


def test_reauthentication_is_reserved_too(
    app: Flask, login: Callable[..., FlaskClient], checks: Checks, limit: int
) -> None:
    """The password asked again for sensitive actions (``password_ok``),
    from copies of one stolen session cookie."""
    signed_in = login("alice")
    cookie = signed_in.get_cookie(COOKIE)
    assert cookie is not None
    form = {
        "current": WRONG,
        "new": "another password",
        "csrf_token": csrf_token(signed_in, "/password"),
    }
    checks.count = 0
    burst = Burst(app, "/password")
    for _ in range(20):
        thief = app.test_client()
        thief.set_cookie(COOKIE, cookie.value, secure=True)
        burst.sends.append(lambda c=thief: c.post("/password", data=form))
    statuses = burst.run()
    assert checks.count == limit
    assert sorted(statuses) == [403] * limit + [429] * (20 - limit)
