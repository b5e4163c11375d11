"""The pytest fixtures that flask-signoff installs (entry point pytest11)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask_signoff import FrozenClock
from tests.support.apps import User, make_app


def test_plugin_fixtures_sign_in_for_real(
    tmp_path: Path, signoff_clock: FrozenClock, signoff_login: Callable[..., str]
) -> None:
    app = make_app(tmp_path / "s.sqlite3", signoff_clock)
    client = app.test_client()
    secret = signoff_login(client, User("alice"))
    assert client.get("/me").json == {"user": "alice"}
    signoff_clock.advance(31 * 60)  # idle timeout
    assert client.get("/me").status_code == 401
    # The cookie value it returned is the real id: a replay is refused too.
    thief = app.test_client()
    thief.set_cookie("session", secret)
    assert thief.get("/me").status_code == 401
