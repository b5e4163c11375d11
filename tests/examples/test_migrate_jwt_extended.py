"""The Flask-JWT-Extended example, before and after the move to Flask-Signoff.

``test_sign_in_use_refresh_sign_out`` runs against both APIs with the same
client: the move keeps what clients see. The others show what changes; each
asserts what the API before actually does, so the contrast
``docs/migrating-from-flask-jwt-extended.md`` draws is checked, not claimed.

The API before keeps its blocklist in Redis, so it runs on the Redis server
only; the API after runs there and on a SQLite store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token

from examples.accounts import PASSWORD
from examples.migrate_jwt_extended import after, before

from .conftest import Place

#: The API before on Redis; the API after on SQLite and on Redis.
each_api = pytest.mark.parametrize(
    ("version", "place"),
    [("before", "redis_server"), ("after", "local"), ("after", "redis_server")],
    indirect=True,
)

#: A Redis URL where nothing listens.
DEAD_REDIS = "redis://127.0.0.1:1/0"

FACTORIES = {"before": before.create_app, "after": after.create_app}


@pytest.fixture
def app(version: str, place: Place, open_apps: Callable[[Flask], Flask]) -> Flask:
    # A replay a second after the refresh is a replay, not a concurrent retry.
    return open_apps(make_app(version, place, SIGNOFF_REFRESH_GRACE=0))


def make_app(version: str, place: Place, **config: Any) -> Flask:
    config = {"TESTING": True, **config}
    if place.redis_url is None:
        config["SIGNOFF_STORE_URL"] = f"sqlite:///{place.tmp_path / 'signoff.sqlite3'}"
    else:
        config["REDIS_URL"] = place.redis_url
        config["BLOCKLIST_PREFIX"] = f"{place.prefix}blocklist:"
        config["SIGNOFF_KEY_PREFIX"] = f"{place.prefix}signoff:"
    return FACTORIES[version](config)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: FlaskClient) -> dict[str, Any]:
    response = client.post(
        "/api/token", json={"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 200
    pair = response.get_json()
    assert isinstance(pair, dict)
    assert {"access_token", "refresh_token"} <= pair.keys()
    return pair


def refresh(client: FlaskClient, refresh_token: str) -> Any:
    return client.post("/api/token/refresh", json={"refresh_token": refresh_token})


def me(client: FlaskClient, access_token: str) -> int:
    """The status of ``GET /api/me`` with ``access_token``; 200 is alice's."""
    response = client.get("/api/me", headers=bearer(access_token))
    if response.status_code == 200:
        assert response.get_json() == {"user": "alice"}
    return response.status_code


@each_api
def test_sign_in_use_refresh_sign_out(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/hello").get_json() == {"hello": "stranger"}
    wrong = client.post("/api/token", json={"username": "alice", "password": "no"})
    assert wrong.status_code == 401

    pair = sign_in(client)
    assert me(client, pair["access_token"]) == 200
    hello = client.get("/api/hello", headers=bearer(pair["access_token"]))
    assert hello.get_json() == {"hello": "alice"}

    refreshed = refresh(client, pair["refresh_token"])
    assert refreshed.status_code == 200
    access = refreshed.get_json()["access_token"]
    assert me(client, access) == 200

    assert client.post("/api/logout").status_code == 401
    assert client.post("/api/logout", headers=bearer(access)).status_code == 204
    assert me(client, access) == 401
    # Not a token at all: Flask-JWT-Extended says 422, Flask-Signoff 401.
    assert me(client, "not.a.token") in (401, 422)


@each_api
def test_refresh_token_after_sign_out(app: Flask, version: str) -> None:
    """Sign-out, then the refresh token the client (or a thief) still holds."""
    client = app.test_client()
    pair = sign_in(client)
    assert (
        client.post("/api/logout", headers=bearer(pair["access_token"])).status_code
        == 204
    )
    assert me(client, pair["access_token"]) == 401  # both: the access token is dead

    response = refresh(client, pair["refresh_token"])
    if version == "before":
        # The blocklist holds the access token's jti only: the refresh token
        # still buys access tokens, for JWT_REFRESH_TOKEN_EXPIRES (30 days).
        assert response.status_code == 200
        assert me(client, response.get_json()["access_token"]) == 200
    else:
        # Sign-out revoked the family: access and refresh tokens.
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_grant"


@each_api
def test_refresh_token_replayed(app: Flask, version: str) -> None:
    """A refresh token used twice: a copy of it was taken."""
    client = app.test_client()
    pair = sign_in(client)
    first = refresh(client, pair["refresh_token"])
    assert first.status_code == 200
    access = first.get_json()["access_token"]

    replay = refresh(client, pair["refresh_token"])
    if version == "before":
        # A refresh token works any number of times until it expires.
        assert replay.status_code == 200
        assert me(client, replay.get_json()["access_token"]) == 200
        assert me(client, access) == 200
    else:
        # Rotated on use; the replay revokes the whole family, the access
        # token of the rightful refresh and the refresh token it got too.
        assert replay.status_code == 400
        assert me(client, access) == 401
        assert refresh(client, first.get_json()["refresh_token"]).status_code == 400


@each_api
def test_tokens_of_flask_jwt_extended_are_refused(
    version: str, place: Place, open_apps: Callable[[Flask], Flask]
) -> None:
    """On the switch, Flask-JWT-Extended's tokens stop working, even signed
    with the same key: clients sign in once more."""
    key = "k" * 64
    old = open_apps(before.create_app({"TESTING": True, "JWT_SECRET_KEY": key}))
    with old.app_context():
        token = create_access_token(identity="alice")
    app = open_apps(
        make_app(version, place, JWT_SECRET_KEY=key, SIGNOFF_JWT_SECRET_KEY=key)
    )
    client = app.test_client()
    assert me(client, token) == (200 if version == "before" else 401)


def test_store_down(version: str, open_apps: Callable[[Flask], Flask]) -> None:
    """Redis unreachable: Flask-JWT-Extended's blocklist lookup fails with a
    500; Flask-Signoff answers 503 and serves nobody."""
    key = "k" * 64
    config = {
        "TESTING": True,
        "PROPAGATE_EXCEPTIONS": False,
        "REDIS_URL": DEAD_REDIS,
        "JWT_SECRET_KEY": key,
    }
    token_app = open_apps(before.create_app(config))
    with token_app.app_context():
        token = create_access_token(identity="alice")
    client = open_apps(FACTORIES[version](config)).test_client()
    if version == "before":
        assert me(client, token) == 500
    else:
        response = client.get("/api/me", headers=bearer(token))
        assert response.status_code == 503
        assert response.get_json()["error"] == "store_unavailable"
    signed_in = client.post(
        "/api/token", json={"username": "alice", "password": PASSWORD}
    )
    # Flask-JWT-Extended issues tokens without the store: no revocation.
    assert signed_in.status_code == (200 if version == "before" else 503)
