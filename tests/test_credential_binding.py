"""Sessions and tokens bound to the credentials they were signed in with,
and users that are deleted: tried over HTTP, as an attacker would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient

from flask_signoff import FrozenClock, current_user, login_required, login_user
from flask_signoff.bearer import current_token, token_response
from flask_signoff.exceptions import InvalidRequest
from flask_signoff.stamps import security_stamp
from tests.support import SECRET_KEY
from tests.support.apps import User, make_app
from tests.support.backends import count_rows
from tests.support.cookies import PLAIN_SESSION, client_with_cookie, session_cookie

COOKIE = PLAIN_SESSION


class StampedUser(User):
    """A user as loaded from a row: the stamp is what the row held then."""

    def __init__(self, id: str, stamp: str) -> None:
        super().__init__(id)
        self.stamp = stamp

    def get_security_stamp(self) -> str:
        return self.stamp


@pytest.fixture
def stamps() -> dict[str, str]:
    """The users table: user id -> the current stamp (a password hash)."""
    return {"alice": "hash-1", "bob": "hash-b"}


@pytest.fixture
def app(db_path: Path, clock: FrozenClock, stamps: dict[str, str]) -> Flask:
    app = make_app(db_path, clock)
    signoff = app.login_manager  # type: ignore[attr-defined]

    def load(user_id: str) -> StampedUser | None:
        stamp = stamps.get(user_id)
        return None if stamp is None else StampedUser(user_id, stamp)

    signoff.user_loader(load)

    @app.post("/signin/<name>")
    def signin(name: str) -> Any:
        user = load(name)
        assert user is not None
        return jsonify(ok=login_user(user, remember="remember" in request.args))

    @app.post("/api/token/<name>")
    def token(name: str) -> Any:
        return token_response(signoff.issue_tokens(load(name)).as_dict())

    @app.post("/api/refresh")
    def refresh() -> Any:
        value = (request.get_json(silent=True) or {}).get("refresh_token")
        if not value:
            raise InvalidRequest("refresh_token is required.")
        return token_response(signoff.refresh_tokens(value).as_dict())

    @app.get("/api/me")
    @login_required
    def api_me() -> Any:
        return jsonify(user=current_user.get_id(), bearer=current_token() is not None)

    @app.post("/password/<new>")
    @login_required
    def password(new: str) -> Any:
        # As an app does it: the user was loaded at the start of the request,
        # the new hash is saved, then password_changed is told.
        user = current_user._get_current_object()
        stamps[user.id] = new
        ended = signoff.password_changed(user if "pass-user" in request.args else None)
        return jsonify(ended=ended, stamp=current_user.get_security_stamp())

    @app.get("/sessions")
    @login_required
    def sessions() -> Any:
        return jsonify([r.public_id for r in signoff.sessions_for(current_user)])

    return app


def sign_in(app: Flask, name: str = "alice", **args: str) -> FlaskClient:
    client = app.test_client()
    assert client.post(f"/signin/{name}", query_string=args).json == {"ok": True}
    return client


def cookie(client: FlaskClient) -> str:
    value = session_cookie(client, COOKIE)
    assert value is not None
    return value


def tokens(app: Flask, name: str = "alice") -> dict[str, Any]:
    r = app.test_client().post(f"/api/token/{name}")
    assert r.status_code == 200
    return dict(r.json)


def bearer_me(app: Flask, access_token: str) -> Any:
    headers = {"Authorization": f"Bearer {access_token}"}
    return app.test_client().get("/api/me", headers=headers)


def refresh(app: Flask, refresh_token: str) -> Any:
    return app.test_client().post("/api/refresh", json={"refresh_token": refresh_token})


# -- sessions --------------------------------------------------------------------


def test_a_copied_cookie_dies_when_the_stamp_changes(
    app: Flask, stamps: dict[str, str], db_path: Path
) -> None:
    owner = sign_in(app)
    thief = client_with_cookie(app, cookie(owner), COOKIE)
    bob = sign_in(app, "bob")
    assert thief.get("/me").status_code == 200
    stamps["alice"] = "hash-2"  # changed elsewhere: a reset by e-mail, say
    response = thief.get("/me")
    assert response.status_code == 401
    # Ended, not only refused: the record is gone and the cookie deleted.
    assert "session=;" in response.headers["Set-Cookie"]
    assert owner.get("/me").status_code == 401
    assert count_rows(db_path) == 1
    assert bob.get("/me").status_code == 200


def test_rotation_and_revival_keep_the_binding(
    app: Flask, stamps: dict[str, str], clock: FrozenClock
) -> None:
    client = sign_in(app, remember="1")
    first = cookie(client)
    assert client.post("/rotate").json == {"ok": True}
    clock.advance(3600)  # past the idle timeout: revived under a new id
    assert client.get("/me").status_code == 200
    assert cookie(client) != first
    stamps["alice"] = "hash-2"
    assert client.get("/me").status_code == 401


@pytest.mark.parametrize("pass_user", [True, False], ids=["user", "current_user"])
def test_password_changed_keeps_this_session_fresh_and_ends_the_rest(
    app: Flask, pass_user: bool
) -> None:
    laptop = sign_in(app)
    phone = sign_in(app, remember="1")
    before = cookie(laptop)
    stale_tokens = tokens(app)
    args = {"pass-user": "1"} if pass_user else {}
    r = laptop.post("/password/hash-2", query_string=args)
    assert r.json == {"ended": 1, "stamp": "hash-2"}
    # This session: a new id, bound to the new stamp, and fresh.
    assert cookie(laptop) != before
    assert laptop.get("/me").status_code == 200
    assert laptop.get("/fresh").status_code == 200
    assert len(laptop.get("/sessions").json) == 1
    # Everything else: dead.
    assert client_with_cookie(app, before, COOKIE).get("/me").status_code == 401
    assert phone.get("/me").status_code == 401
    assert bearer_me(app, stale_tokens["access_token"]).status_code == 401
    assert refresh(app, stale_tokens["refresh_token"]).status_code == 400


def test_a_session_bound_to_the_old_stamp_is_not_listed(
    app: Flask, stamps: dict[str, str]
) -> None:
    laptop = sign_in(app)
    late = sign_in(app)  # signs in with the old password, commits late
    stamps["alice"] = "hash-2"
    laptop_new = sign_in(app)
    listed = laptop_new.get("/sessions").json
    assert len(listed) == 1
    assert late.get("/me").status_code == 401
    assert laptop.get("/me").status_code == 401


def test_rotating_secret_key_signs_nobody_out(app: Flask) -> None:
    client = sign_in(app)
    pair = tokens(app)
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET_KEY]
    app.config["SECRET_KEY"] = "a-brand-new-secret-key-long-enough-for-hmac"
    assert client.get("/me").status_code == 200
    assert bearer_me(app, pair["access_token"]).status_code == 200
    r = refresh(app, pair["refresh_token"])
    assert r.status_code == 200
    assert bearer_me(app, r.json["access_token"]).status_code == 200
    assert sign_in(app).get("/me").status_code == 200
    # Once the old key is dropped, what was bound under it ends.
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/me").status_code == 401


# -- tokens ----------------------------------------------------------------------


def test_a_bearer_token_dies_when_the_stamp_changes(
    app: Flask, stamps: dict[str, str]
) -> None:
    pair = tokens(app)
    assert bearer_me(app, pair["access_token"]).json == {
        "user": "alice",
        "bearer": True,
    }
    stamps["alice"] = "hash-2"
    r = bearer_me(app, pair["access_token"])
    assert r.status_code == 401
    assert r.json["error"] == "invalid_token"
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_a_refresh_after_the_stamp_changed_revokes_the_family(
    app: Flask, stamps: dict[str, str]
) -> None:
    pair = tokens(app)
    stamps["alice"] = "hash-2"
    r = refresh(app, pair["refresh_token"])
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"
    # Revoked: even with the old stamp back, neither token works again.
    stamps["alice"] = "hash-1"
    assert refresh(app, pair["refresh_token"]).status_code == 400
    assert bearer_me(app, pair["access_token"]).status_code == 401


def test_tokens_of_another_users_stamp_never_pass(
    app: Flask, stamps: dict[str, str]
) -> None:
    stamps["bob"] = stamps["alice"]  # same stamp, another user
    pair = tokens(app, "bob")
    assert bearer_me(app, pair["access_token"]).json["user"] == "bob"
    assert refresh(app, pair["refresh_token"]).status_code == 200


# -- deleted users ---------------------------------------------------------------


@pytest.fixture
def plain_app(db_path: Path, clock: FrozenClock) -> Flask:
    """The test app with users that have no stamp (UserMixin's None)."""
    app = make_app(db_path, clock)
    signoff = app.login_manager  # type: ignore[attr-defined]
    users = app.extensions["test_users"]

    @app.post("/api/token/<name>")
    def token(name: str) -> Any:
        return token_response(signoff.issue_tokens(users[name]).as_dict())

    @app.post("/api/refresh")
    def refresh() -> Any:
        value = (request.get_json(silent=True) or {}).get("refresh_token", "")
        return token_response(signoff.refresh_tokens(value).as_dict())

    @app.get("/api/me")
    @login_required
    def api_me() -> Any:
        return jsonify(user=current_user.get_id())

    return app


def test_a_deleted_users_refresh_revokes_the_family(plain_app: Flask) -> None:
    app = plain_app
    users = app.extensions["test_users"]
    pair = tokens(app)
    client = app.test_client()
    client.post("/login/alice")
    alice = users.pop("alice")  # deleted without signoff.revoke_user
    assert client.get("/me").status_code == 401
    assert bearer_me(app, pair["access_token"]).status_code == 401
    r = refresh(app, pair["refresh_token"])
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"
    # A new account under the same id inherits nothing.
    users["alice"] = alice
    assert refresh(app, pair["refresh_token"]).status_code == 400
    assert bearer_me(app, pair["access_token"]).status_code == 401
    assert client.get("/me").status_code == 401


def test_users_without_a_stamp_are_bound_to_none(plain_app: Flask) -> None:
    app = plain_app
    pair = tokens(app)
    r = refresh(app, pair["refresh_token"])
    assert r.status_code == 200
    assert bearer_me(app, r.json["access_token"]).status_code == 200


def test_a_stamp_must_be_a_string_or_none() -> None:
    class Odd(User):
        def get_security_stamp(self) -> Any:
            return b"bytes"

    assert security_stamp(User("x")) is None
    assert security_stamp(StampedUser("x", "s")) == "s"
    with pytest.raises(TypeError):
        security_stamp(Odd("x"))
