"""The demo's API rows: tokens, refresh, RFC 7009, API sign-out."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_signoff import FrozenClock
from tests.support.backends import count_sessions
from tests.support.demo import PASSWORD
from tests.support.forms import csrf_token, post_form


@pytest.fixture
def tokens(app: Flask) -> Callable[..., Any]:
    def tokens(username: str = "alice") -> dict[str, Any]:
        # Registered here or by the `login` fixture already (409).
        r = post_form(
            app.test_client(), "/register", username=username, password=PASSWORD
        )
        assert r.status_code in (303, 409)
        r = app.test_client().post(
            "/api/token", json={"username": username, "password": PASSWORD}
        )
        assert r.status_code == 200
        assert r.headers["Cache-Control"] == "no-store"
        assert set(r.json) == {
            "access_token",
            "refresh_token",
            "token_type",
            "expires_in",
        }
        assert r.json["token_type"] == "Bearer"
        return dict(r.json)

    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(app: Flask, token: str) -> Any:
    return app.test_client().get("/api/me", headers=bearer(token))


def refresh(app: Flask, token: str | None) -> Any:
    body = {} if token is None else {"refresh_token": token}
    return app.test_client().post("/api/token/refresh", json=body)


def test_token_then_api_me(app: Flask, tokens: Callable[..., Any]) -> None:
    pair = tokens()
    r = me(app, pair["access_token"])
    assert r.status_code == 200
    assert r.json == {"user": "alice"}
    assert r.headers["Cache-Control"] == "no-store"


def test_bad_credentials_are_401(app: Flask, register: Callable[[str], None]) -> None:
    register("alice")
    client = app.test_client()
    r = client.post("/api/token", json={"username": "alice", "password": "wrong pw!"})
    assert r.status_code == 401
    r = client.post("/api/token", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
    r = client.post("/api/token", json={"username": "alice"})
    assert r.status_code == 400
    assert r.json["error"] == "invalid_request"


def test_token_endpoint_is_throttled(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("alice")
    client = app.test_client()
    for _ in range(10):
        body = {"username": "alice", "password": "wrong pw!"}
        assert client.post("/api/token", json=body).status_code == 401
    r = client.post("/api/token", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0


def test_login_form_is_throttled(app: Flask, register: Callable[[str], None]) -> None:
    register("alice")
    client = app.test_client()
    for _ in range(10):
        r = post_form(client, "/login", username="alice", password="wrong pw!")
        assert r.status_code == 401
    r = post_form(client, "/login", username="alice", password=PASSWORD)
    assert r.status_code == 429
    assert "Retry-After" in r.headers
    assert client.get("/api/me").status_code == 401


def test_refresh_rotates_and_replay_revokes_the_family(
    app: Flask, tokens: Callable[..., Any], clock: FrozenClock
) -> None:
    first = tokens()
    r = refresh(app, first["refresh_token"])
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    second = r.json
    assert me(app, second["access_token"]).status_code == 200
    clock.advance(60)
    r = refresh(app, first["refresh_token"])
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"
    assert me(app, second["access_token"]).status_code == 401
    assert refresh(app, second["refresh_token"]).status_code == 400


@pytest.mark.parametrize("value", [None, "", "garbage", "x" * 5000])
def test_refresh_refuses_bad_input(
    app: Flask, value: str | None, tokens: Callable[..., Any]
) -> None:
    r = refresh(app, value)
    assert r.status_code == 400
    assert r.json["error"] == ("invalid_request" if not value else "invalid_grant")


def test_refresh_token_is_not_an_access_token(
    app: Flask, tokens: Callable[..., Any]
) -> None:
    pair = tokens()
    r = me(app, pair["refresh_token"])
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "nonsense"])
@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_rfc7009_revoke(
    app: Flask, tokens: Callable[..., Any], hint: str | None, kind: str
) -> None:
    pair = tokens()
    other = tokens("bob")
    form = {"token": pair[kind]}
    if hint:
        form["token_type_hint"] = hint
    r = app.test_client().post("/api/token/revoke", data=form)
    assert r.status_code == 200
    assert me(app, pair["access_token"]).status_code == 401
    assert refresh(app, pair["refresh_token"]).status_code == 400
    assert me(app, other["access_token"]).status_code == 200


def test_rfc7009_unknown_token_is_200_and_missing_is_400(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/api/token/revoke", data={"token": "nope"}).status_code == 200
    assert client.post("/api/token/revoke", data={}).status_code == 400


def test_api_logout_revokes_this_family(app: Flask, tokens: Callable[..., Any]) -> None:
    pair, laptop = tokens(), tokens()
    r = app.test_client().post("/api/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert me(app, pair["access_token"]).status_code == 401
    assert refresh(app, pair["refresh_token"]).status_code == 400
    assert me(app, laptop["access_token"]).status_code == 200


def test_api_logout_all_ends_sessions_and_tokens(
    app: Flask, tokens: Callable[..., Any], login: Callable[..., FlaskClient]
) -> None:
    browser = login("alice")
    bob = login("bob")
    pair, other = tokens(), tokens()
    r = app.test_client().post("/api/logout-all", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert me(app, other["access_token"]).status_code == 401
    assert refresh(app, other["refresh_token"]).status_code == 400
    assert browser.get("/api/me").status_code == 401
    assert bob.get("/api/me").status_code == 200


def test_api_logout_all_acts_on_the_tokens_user_not_the_cookies(
    app: Flask, tokens: Callable[..., Any], login: Callable[..., FlaskClient]
) -> None:
    # A shared browser: alice's session cookie rides along on bob's API call.
    browser = login("alice")
    alice_elsewhere = login("alice")
    pair, bob_other = tokens("bob"), tokens("bob")
    r = browser.post("/api/logout-all", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    # Bob is signed out everywhere, as the 204 says ...
    assert me(app, pair["access_token"]).status_code == 401
    assert me(app, bob_other["access_token"]).status_code == 401
    assert refresh(app, bob_other["refresh_token"]).status_code == 400
    # ... and alice, whom the header did not authenticate, is not.
    assert browser.get("/api/me").json == {"user": "alice"}
    assert alice_elsewhere.get("/api/me").status_code == 200


def test_api_logout_leaves_the_cookie_session_alone(
    app: Flask, tokens: Callable[..., Any], login: Callable[..., FlaskClient]
) -> None:
    browser = login("alice")
    pair = tokens("alice")
    r = browser.post("/api/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert me(app, pair["access_token"]).status_code == 401
    # Authenticated by the header alone: the browser's session is another
    # sign-in, ended by its own sign-out.
    assert browser.get("/api/me").json == {"user": "alice"}


@pytest.mark.parametrize("path", ["/api/logout", "/api/logout-all"])
def test_api_logout_needs_the_bearer_token(
    app: Flask, login: Callable[..., FlaskClient], path: str
) -> None:
    browser = login("alice")
    # A cross-site form post carries only the cookie.
    r = browser.post(path, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 401
    r = browser.post(path)
    assert r.status_code == 401
    assert browser.get("/api/me").status_code == 200


def test_api_sessions_with_bearer(
    app: Flask, tokens: Callable[..., Any], login: Callable[..., FlaskClient]
) -> None:
    login("alice")
    pair = tokens()
    r = app.test_client().get("/api/sessions", headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    assert len(r.json) == 1
    assert r.json[0]["current"] is False


def test_password_change_kills_tokens(
    app: Flask, tokens: Callable[..., Any], login: Callable[..., FlaskClient]
) -> None:
    here = login("alice")
    pair = tokens()
    r = post_form(here, "/password", current=PASSWORD, new="another long pw")
    assert r.status_code == 303
    assert me(app, pair["access_token"]).status_code == 401
    assert refresh(app, pair["refresh_token"]).status_code == 400
    assert here.get("/api/me").status_code == 200


def test_sign_out_everywhere_else_ends_api_clients_too(
    app: Flask, tokens: Callable[..., Any], login: Callable[..., FlaskClient]
) -> None:
    browser = login("alice")
    phone = login("alice")
    copied = browser.get_cookie("__Host-session")
    assert copied is not None
    bob = login("bob")
    cli, bob_cli = tokens("alice"), tokens("bob")
    r = browser.post(
        "/sessions/revoke-others", data={"csrf_token": csrf_token(browser, "/")}
    )
    assert r.status_code == 303
    # Every other client of alice ends: the API client's access token ...
    assert me(app, cli["access_token"]).status_code == 401
    # ... its refresh token ...
    r = refresh(app, cli["refresh_token"])
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"
    # ... her other browser, and a copy of this browser's cookie.
    assert phone.get("/api/me").status_code == 401
    thief = app.test_client()
    thief.set_cookie("__Host-session", copied.value, secure=True)
    assert thief.get("/api/me").status_code == 401
    # This browser stays signed in, and only it.
    assert browser.get("/api/me").json == {"user": "alice"}
    assert browser.get("/sessions").status_code == 200
    assert count_sessions(app) == 2  # alice's browser and bob's
    # Bob is another user: nothing of his ends.
    assert bob.get("/api/me").json == {"user": "bob"}
    assert me(app, bob_cli["access_token"]).status_code == 200
    assert refresh(app, bob_cli["refresh_token"]).status_code == 200
    # The page says so next to the button.
    page = browser.get("/sessions").get_data(as_text=True)
    assert "API clients" in page


# -- hostile input: a 4xx, never a 500 ---------------------------------------


@pytest.fixture
def production(app: Flask, caplog: pytest.LogCaptureFixture) -> Iterator[Flask]:
    """The app answering an unhandled error with a 500, as in production
    (``TESTING`` would raise it into the test), and logging no error."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield app
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors


def test_a_deeply_nested_jose_header_is_401_and_revokes_nothing(
    production: Flask, tokens: Callable[..., Any]
) -> None:
    pair = tokens()
    # 3,000 nested arrays as the header: 8 kB, under the length limits of
    # the Authorization header and of a token, deeper than json.loads goes.
    header = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).rstrip(b"=")
    token = f"{header.decode()}.e30.c2ln"
    client = production.test_client()
    for method, path in [("GET", "/api/me"), ("POST", "/api/logout")]:
        r = client.open(path, method=method, headers=bearer(token))
        assert r.status_code == 401, path
        assert r.json["error"] == "invalid_token"
    # RFC 7009: 200 whether or not the token was valid.
    r = client.post("/api/token/revoke", data={"token": token})
    assert r.status_code == 200
    assert me(production, pair["access_token"]).status_code == 200


@pytest.mark.parametrize("value", ["\ud800", "alice\udfff"])
@pytest.mark.parametrize("field", ["username", "password"])
def test_a_lone_surrogate_in_the_token_request_is_400(
    production: Flask, register: Callable[[str], None], field: str, value: str
) -> None:
    # JSON can say "\ud800"; no UTF-8 text (a form, a URL) can.
    register("alice")
    body = {"username": "alice", "password": PASSWORD, field: value}
    r = production.test_client().post("/api/token", json=body)
    assert r.status_code == 400
    assert r.json["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/api/token", "/api/token/refresh"])
@pytest.mark.parametrize("opening", ["[", '{"username":'])
def test_a_deeply_nested_json_body_is_400(
    production: Flask, path: str, opening: str
) -> None:
    closing = "]" if opening == "[" else "}"
    body = opening * 100_000 + "1" + closing * 100_000
    r = production.test_client().post(path, data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.json["error"] == "invalid_request"
