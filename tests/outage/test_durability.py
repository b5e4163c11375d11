"""A revocation answered is a revocation kept, whatever kills the process.

The demo runs under a real gunicorn. It answers a sign-out, a token
revocation or a password change; right after the answer (a few
milliseconds) everything is killed at once:

- SQLite: the gunicorn arbiter and its worker, with ``SIGKILL``;
- PostgreSQL: the server too, with an immediate shutdown (``SIGQUIT``, as
  ``pg_ctl stop -m immediate``), which drops the WAL still in shared
  memory as a crash would. The test server runs with
  ``synchronous_commit = off`` (:mod:`tests.support.servers`), so a
  revocation that did not ask for a synchronous commit may be lost here.

Then everything starts again on the same data, and the credential copied
before the revocation must be refused.

What this proves, and what it cannot: that the answer is sent only once the
revocation is committed where a crash of the processes cannot take it
(SQLite's file, PostgreSQL's WAL written out). A power cut cannot be
simulated here: that the commit also reached the disk is SQLite's
``synchronous=FULL`` and PostgreSQL's synchronous commit, whose choice per
write ``tests/stores/test_sql_writes.py`` checks.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.demo import PASSWORD
from tests.support.gunicorn_demo import Browser, GunicornDemo
from tests.support.servers import PostgresServer, started

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a brand new long password"

#: Kills everything at once and starts it again: the demo's new URL.
Crash = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgres"])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Crash]]:
    """The demo on a store of its own (its URL), and how to crash both."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        yield from _run(url, tmp_path, None)
        return
    with started(lambda: PostgresServer(tempfile.mkdtemp(prefix="signoff-pg-"))) as pg:
        yield from _run(pg.url, tmp_path, pg)


def _run(
    url: str, tmp_path: Path, pg: PostgresServer | None
) -> Iterator[tuple[str, Crash]]:
    app = GunicornDemo(url, tmp_path, store_timeout=5.0, workers=1)

    def crash() -> str:
        if pg is not None:
            pg.stop(immediate=True)
        app.kill()
        if pg is not None:
            pg.start()
        return app.start()

    try:
        yield app.start(), crash
    finally:
        app.stop()


def signed_in(base: str, username: str, password: str = PASSWORD) -> Browser:
    browser = Browser(base)
    assert browser.post_form("/login", username=username, password=password) == 303
    assert browser.request("GET", "/api/me")[0] == 200
    return browser


def register(base: str, username: str) -> None:
    status = Browser(base).post_form("/register", username=username, password=PASSWORD)
    assert status == 303


def with_cookies(base: str, cookies: dict[str, str]) -> Browser:
    browser = Browser(base)
    browser.cookies = dict(cookies)
    return browser


def test_a_sign_out_answered_survives_a_crash(demo: tuple[str, Crash]) -> None:
    base, crash = demo
    register(base, "ada")
    browser = signed_in(base, "ada")
    copied = dict(browser.cookies)
    assert browser.post_form("/logout") == 303
    base = crash()
    status, _, _ = with_cookies(base, copied).request("GET", "/api/me")
    assert status == 401


def test_a_token_revocation_answered_survives_a_crash(
    demo: tuple[str, Crash],
) -> None:
    base, crash = demo
    register(base, "grace")
    status, _, text = Browser(base).request(
        "POST",
        "/api/token",
        json_body={"username": "grace", "password": PASSWORD},
        cookies=False,
    )
    assert status == 200
    pair = json.loads(text)
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert Browser(base).request("GET", "/api/me", headers=bearer)[0] == 200
    assert Browser(base).request("POST", "/api/logout", headers=bearer)[0] == 204
    base = crash()
    assert Browser(base).request("GET", "/api/me", headers=bearer)[0] == 401
    refresh = {"refresh_token": pair["refresh_token"]}
    status, _, _ = Browser(base).request(
        "POST", "/api/token/refresh", json_body=refresh, cookies=False
    )
    assert status == 400


def test_a_password_change_answered_survives_a_crash(
    demo: tuple[str, Crash],
) -> None:
    base, crash = demo
    register(base, "edsger")
    laptop, phone = signed_in(base, "edsger"), signed_in(base, "edsger")
    copied = dict(phone.cookies)
    status = laptop.post_form("/password", current=PASSWORD, new=NEW_PASSWORD)
    assert status == 303
    base = crash()
    status, _, _ = with_cookies(base, copied).request("GET", "/api/me")
    assert status == 401
