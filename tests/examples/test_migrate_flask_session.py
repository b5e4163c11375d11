"""The Flask-Session example, before and after the move to Flask-Signoff.

``test_sign_in_use_sign_out`` runs against both apps: the move keeps what
users see. The others show what changes; each asserts what the app before
actually does, so the contrast ``docs/migrating-from-flask-session.md``
draws is checked, not claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cachelib import FileSystemCache
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from examples.accounts import PASSWORD
from examples.migrate_flask_session import after, before
from tests.support.forms import csrf_token

from .conftest import Place

FACTORIES = {"before": before.create_app, "after": after.create_app}


def make_app(version: str, place: Place, **config: Any) -> Flask:
    config = {"TESTING": True, **config}
    if place.redis_url is None and version == "before":
        config["SESSION_TYPE"] = "cachelib"
        config["SESSION_CACHELIB"] = FileSystemCache(str(place.tmp_path / "sessions"))
    elif place.redis_url is None:
        config["SIGNOFF_STORE_URL"] = f"sqlite:///{place.tmp_path / 'signoff.sqlite3'}"
    else:
        config["REDIS_URL"] = place.redis_url
        config["SESSION_KEY_PREFIX"] = f"{place.prefix}session:"
        config["SIGNOFF_KEY_PREFIX"] = f"{place.prefix}signoff:"
    return FACTORIES[version](config)


@pytest.fixture
def app(version: str, place: Place, open_apps: Callable[[Flask], Flask]) -> Flask:
    return open_apps(make_app(version, place))


def post(client: FlaskClient, path: str, page: str, **fields: str) -> TestResponse:
    """POST ``fields`` with the csrf_token of the forms on ``page``."""
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, page)})


def sign_in(client: FlaskClient, username: str = "alice") -> None:
    response = post(client, "/login", "/login", username=username, password=PASSWORD)
    assert response.status_code == 303


def sign_out(client: FlaskClient) -> None:
    response = post(client, "/logout", "/")
    assert response.status_code == 303
    assert response.location == "/login"


def me(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/me")
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def session_cookie(app: Flask, client: FlaskClient) -> str | None:
    found = client.get_cookie(app.session_interface.get_cookie_name(app))
    return found.value if found is not None else None


def replay(app: Flask, value: str) -> FlaskClient:
    """A client of someone else holding a copy of a session cookie."""
    other = app.test_client()
    other.set_cookie(app.session_interface.get_cookie_name(app), value)
    return other


def test_sign_in_use_sign_out(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 302
    assert response.location.startswith("/login")
    assert me(client) == {"user": None, "lang": None}

    assert post(client, "/lang", "/login", lang="fr").status_code == 303
    wrong = post(client, "/login", "/login", username="alice", password="nope")
    assert wrong.status_code == 401
    assert me(client) == {"user": None, "lang": "fr"}

    sign_in(client)
    assert me(client) == {"user": "alice", "lang": "fr"}
    home = client.get("/")
    assert home.status_code == 200
    assert "Signed in as alice." in home.get_data(as_text=True)
    # A post without the form's token changes nothing (Flask-WTF: 400; 403).
    assert client.post("/lang", data={"lang": "de"}).status_code in (400, 403)
    assert me(client)["lang"] == "fr"

    sign_out(client)
    # Signed out, and the app's own data kept.
    assert me(client) == {"user": None, "lang": "fr"}
    assert client.get("/").status_code == 302


def test_copy_of_a_signed_in_cookie(app: Flask, version: str) -> None:
    """A copy of the cookie taken while signed in, replayed after sign-out."""
    client = app.test_client()
    post(client, "/lang", "/login", lang="fr")
    sign_in(client)
    copied = session_cookie(app, client)
    assert copied is not None
    assert me(replay(app, copied))["user"] == "alice"  # while signed in: both

    sign_out(client)
    sign_in(client)  # the owner comes back, in the same browser
    if version == "before":
        # The session id never changed: the copy is the owner's session,
        # signed in again by the owner's next sign-in.
        assert session_cookie(app, client) == copied
        assert me(replay(app, copied)) == {"user": "alice", "lang": "fr"}
    else:
        # Sign-out deleted the record behind the copy; each sign-in gets a
        # new id.
        assert session_cookie(app, client) != copied
        assert me(replay(app, copied)) == {"user": None, "lang": None}
        assert me(client) == {"user": "alice", "lang": "fr"}


def test_cookie_from_before_sign_in(app: Flask, version: str) -> None:
    """Session fixation: a cookie known before sign-in, used after it."""
    client = app.test_client()
    post(client, "/lang", "/login", lang="fr")
    planted = session_cookie(app, client)
    assert planted is not None

    sign_in(client)
    if version == "before":
        assert me(replay(app, planted)) == {"user": "alice", "lang": "fr"}
    else:
        assert me(replay(app, planted)) == {"user": None, "lang": None}
        assert me(client) == {"user": "alice", "lang": "fr"}


def test_store_holds_no_cookie_value(
    version: str, redis_server: Any, tmp_path: Any, open_apps: Any
) -> None:
    """A reader of the store (a backup, a replica, ``MONITOR``) gets cookies
    from Flask-Session's keys, and nothing usable from Flask-Signoff's."""
    place = Place("redis", tmp_path, redis_server.url, f"fs{version}:")
    app = open_apps(make_app(version, place))
    client = app.test_client()
    sign_in(client)
    value = session_cookie(app, client)
    assert value is not None
    redis = place.redis()
    keys = sorted(redis.scan_iter(match=f"{place.prefix}*"))
    stored = " ".join(keys + [_dump(redis, key) for key in keys])
    if version == "before":
        assert f"{place.prefix}session:{value}" in keys
    else:
        secret = value.rpartition(".")[2]
        assert len(secret) == 43
        assert keys
        assert secret not in stored
    for key in keys:
        # Every id found in the store, tried as a cookie.
        candidate = key.rpartition(":")[2]
        works = me(replay(app, candidate))["user"] == "alice"
        assert works == (version == "before" and key.endswith(value))
    redis.close()


def _dump(redis: Any, key: str) -> str:
    kind = redis.type(key)
    if kind == "hash":
        return repr(redis.hgetall(key))
    if kind == "zset":
        return repr(redis.zrange(key, 0, -1))
    if kind == "set":
        return repr(redis.smembers(key))
    try:
        return repr(redis.get(key))
    except UnicodeDecodeError:  # Flask-Session's msgpack
        return ""


def test_sessions_of_flask_session_are_dropped(
    place: Place, open_apps: Callable[[Flask], Flask]
) -> None:
    """On the switch, every Flask-Session session ends: users sign in once more.

    Even under the same cookie name, the old value is not of Flask-Signoff's
    form: refused without a store read, and deleted.
    """
    old = open_apps(make_app("before", place))
    new = open_apps(make_app("after", place, SIGNOFF_COOKIE_SECURE=False))
    assert old.session_interface.get_cookie_name(old) == "session"
    assert new.session_interface.get_cookie_name(new) == "session"
    client = old.test_client()
    post(client, "/lang", "/login", lang="fr")
    sign_in(client)
    value = session_cookie(old, client)
    assert value is not None

    browser = replay(new, value)
    response = browser.get("/api/me")
    assert response.get_json() == {"user": None, "lang": None}
    assert session_cookie(new, browser) is None  # deleted by the response
    assert browser.get("/").status_code == 302


def test_store_down(version: str, open_apps: Callable[[Flask], Flask]) -> None:
    """Redis unreachable: Flask-Session's request fails with a 500;
    Flask-Signoff answers 503 and serves nobody."""
    config = {"TESTING": True, "PROPAGATE_EXCEPTIONS": False}
    app = open_apps(
        FACTORIES[version]({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    )
    client = app.test_client()
    client.set_cookie(app.session_interface.get_cookie_name(app), "a" * 43)
    assert client.get("/api/me").status_code == (500 if version == "before" else 503)
