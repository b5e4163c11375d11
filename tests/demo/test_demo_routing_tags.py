"""What a credential tells about its user, on every backend.

The attacker holds a cookie or a refresh token seen in a proxy log and knows
the user ids are small integers. The routing tag in front of the credential
must not tell them whose it is, must differ between two apps, and must stay
put for the app's own store whatever happens to ``SECRET_KEY``, because the
Redis store finds a user's sessions and families through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_signoff import FrozenClock
from flask_signoff.core.ids import TAG_LENGTH
from flask_signoff.extension import get_state
from tests.support import SECRET_KEY
from tests.support.backends import Backend
from tests.support.demo import PASSWORD, close_demo, open_demo
from tests.support.forms import post_form

COOKIE = "__Host-session"
OLD_SECRET = SECRET_KEY
NEW_SECRET = "demo-test-secret-rotated-9876543210"


def unkeyed_tag(user_id: str) -> str:
    """What anyone can compute from a user id alone."""
    digest = hashlib.sha256(b"flask-signoff:tag:" + user_id.encode())
    return digest.hexdigest()[:TAG_LENGTH]


def tag_of(credential: str) -> str:
    return credential.partition(".")[0]


def sign_in(app: Flask, username: str = "alice") -> tuple[FlaskClient, str]:
    client = app.test_client()
    r = post_form(client, "/login", username=username, password=PASSWORD)
    assert r.status_code == 303
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return client, cookie.value


def token_pair(app: Flask, username: str = "alice") -> dict[str, Any]:
    r = app.test_client().post(
        "/api/token", json={"username": username, "password": PASSWORD}
    )
    assert r.status_code == 200
    return dict(r.json)


def user_id_of(app: Flask, username: str) -> str:
    user = app.extensions["demo_users"].authenticate(username, PASSWORD)
    assert user is not None
    return str(user.id)


@pytest.fixture
def opened() -> Iterator[list[Flask]]:
    """Apps a test makes beside ``app``; their connections closed after it."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        close_demo(app)


def test_a_credential_does_not_tell_whose_it_is(app: Flask) -> None:
    assert (
        post_form(
            app.test_client(), "/register", username="alice", password=PASSWORD
        ).status_code
        == 303
    )
    assert user_id_of(app, "alice") == "1"
    _, cookie = sign_in(app)
    pair = token_pair(app)
    # The attacker's guess: the tag anyone computes for user 1.
    assert tag_of(cookie) != unkeyed_tag("1")
    assert tag_of(pair["refresh_token"]) != unkeyed_tag("1")
    # It is still the routing tag of user 1 in this store.
    store = get_state(app).store
    assert tag_of(cookie) == tag_of(pair["refresh_token"]) == store.user_tag("1")


def test_two_apps_on_two_stores_give_user_1_different_tags(
    app: Flask,
    backend: Backend,
    tmp_path: Path,
    clock: FrozenClock,
    opened: list[Flask],
) -> None:
    # The same backend, another namespace: what a second app deploys.
    other_config = {
        key: value + "other_" if key.endswith("_PREFIX") else value
        for key, value in backend.config.items()
    }
    if backend.name == "sqlite":  # another file
        other_file = tmp_path / "other-instance" / "signoff.sqlite3"
        other_config["SIGNOFF_STORE_URL"] = f"sqlite:///{other_file}"
    other = open_demo(tmp_path / "other-instance", clock, **other_config)
    opened.append(other)
    tags = []
    for each in (app, other):
        r = post_form(
            each.test_client(), "/register", username="alice", password=PASSWORD
        )
        assert r.status_code == 303
        assert user_id_of(each, "alice") == "1"
        tags.append(tag_of(sign_in(each)[1]))
    assert tags[0] != tags[1]


def test_the_tag_survives_a_secret_key_rotation(
    app: Flask,
    backend: Backend,
    instance: Path,
    clock: FrozenClock,
    opened: list[Flask],
) -> None:
    post_form(app.test_client(), "/register", username="alice", password=PASSWORD)
    before_client, before = sign_in(app)
    before_pair = token_pair(app)
    # The app restarts with a new SECRET_KEY, the old one kept as a fallback.
    rotated = open_demo(
        instance,
        clock,
        SECRET_KEY=NEW_SECRET,
        SECRET_KEY_FALLBACKS=[OLD_SECRET],
        **backend.config,
    )
    opened.append(rotated)
    after_client, after = sign_in(rotated)
    after_pair = token_pair(rotated)
    assert tag_of(before) != unkeyed_tag("1")
    assert tag_of(before) == tag_of(after)
    assert tag_of(before_pair["refresh_token"]) == tag_of(after_pair["refresh_token"])
    assert tag_of(before) == tag_of(after_pair["refresh_token"])

    # Sign-out everywhere, from the rotated app, ends what came before too.
    assert len(after_client.get("/api/sessions").json) == 2
    r = rotated.test_client().post(
        "/api/logout-all",
        headers={"Authorization": f"Bearer {after_pair['access_token']}"},
    )
    assert r.status_code == 204
    for client in (before_client, after_client):
        assert client.get("/api/me").status_code == 401
    for pair in (before_pair, after_pair):
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        assert rotated.test_client().get("/api/me", headers=bearer).status_code == 401
        r = rotated.test_client().post(
            "/api/token/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert r.status_code == 400
        assert r.json["error"] == "invalid_grant"
    assert get_state(rotated).store.list_sessions("1", clock()) == []


def test_the_cli_finds_a_users_sessions_across_a_rotation(
    app: Flask,
    backend: Backend,
    instance: Path,
    clock: FrozenClock,
    opened: list[Flask],
) -> None:
    post_form(app.test_client(), "/register", username="alice", password=PASSWORD)
    post_form(app.test_client(), "/register", username="bob", password=PASSWORD)
    before_client, _ = sign_in(app)
    rotated = open_demo(
        instance,
        clock,
        SECRET_KEY=NEW_SECRET,
        SECRET_KEY_FALLBACKS=[OLD_SECRET],
        **backend.config,
    )
    opened.append(rotated)
    after_client, _ = sign_in(rotated)
    bob, _ = sign_in(rotated, "bob")

    def run(*args: str) -> str:
        result = rotated.test_cli_runner().invoke(
            args=["signoff", *args], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return str(result.output)

    assert "2 live session(s)" in run("sessions", "1")
    assert "(2 session(s) ended)" in run("revoke-user", "1")
    assert before_client.get("/api/me").status_code == 401
    assert after_client.get("/api/me").status_code == 401
    assert bob.get("/api/me").status_code == 200
    sign_in(app)
    assert "(2 session(s) ended)" in run("revoke-all", "--yes")
    assert bob.get("/api/me").status_code == 401
    assert "Purged" in run("purge")
