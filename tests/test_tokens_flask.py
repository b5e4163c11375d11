"""API tokens over HTTP, tried as an attacker would."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask, jsonify, request

from flask_signoff import FrozenClock, current_user, login_required, logout_user
from flask_signoff.bearer import current_token, token_required, token_response
from flask_signoff.core.ids import new_secret, random_tag
from flask_signoff.exceptions import InvalidRequest
from tests.support.apps import make_app
from tests.support.backends import count_rows


def add_api(app: Flask) -> None:
    signoff = app.login_manager  # type: ignore[attr-defined]
    users = app.extensions["test_users"]

    @app.post("/api/token")
    def token() -> Any:
        user = users.get(request.json["username"])  # type: ignore[index]
        if user is None:
            return jsonify(error="invalid_grant"), 401
        return token_response(signoff.issue_tokens(user).as_dict())

    @app.post("/api/token/refresh")
    def refresh() -> Any:
        value = (request.get_json(silent=True) or {}).get("refresh_token")
        if not value:
            raise InvalidRequest("refresh_token is required.")
        return token_response(signoff.refresh_tokens(value).as_dict())

    @app.post("/api/token/revoke")
    def revoke() -> Any:
        signoff.revoke_token(request.form.get("token", ""), request.form.get("hint"))
        return token_response({})

    @app.get("/api/me")
    @login_required
    def api_me() -> Any:
        claims = current_token()
        return jsonify(user=current_user.get_id(), bearer=claims is not None)

    @app.post("/api/logout")
    @token_required
    def api_logout() -> Any:
        logout_user()
        return "", 204

    @app.post("/api/logout-all")
    @token_required
    def api_logout_all() -> Any:
        logout_user(everywhere=True)
        return "", 204

    @app.post("/password")
    @login_required
    def password() -> Any:
        return jsonify(ended=signoff.password_changed())


@pytest.fixture
def api(app: Flask) -> Flask:
    add_api(app)
    return app


def tokens_for(client: Any, name: str = "alice") -> dict[str, Any]:
    r = client.post("/api/token", json={"username": name})
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = r.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(client: Any, token: str) -> Any:
    return client.get("/api/me", headers=bearer(token))


def test_bearer_authenticates_and_is_not_cached(api: Flask, db_path: Path) -> None:
    client = api.test_client()
    pair = tokens_for(client)
    r = me(client, pair["access_token"])
    assert r.json == {"user": "alice", "bearer": True}
    assert r.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in r.headers
    assert count_rows(db_path) == 0  # no session for a token request


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), id="sig"),
        pytest.param(
            lambda t: (
                _b64({"alg": "none", "typ": "at+jwt"}) + "." + t.split(".")[1] + "."
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}),
                "a-wrong-key-that-is-long-enough-0123456789",
                headers={"typ": "at+jwt"},
            ),
            id="wrong-key",
        ),
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: "x" * 7000, id="oversized"),
        pytest.param(lambda t: new_secret(random_tag()), id="refresh-shape"),
    ],
)
def test_forged_tokens_get_401_invalid_token(api: Flask, forge: Any) -> None:
    client = api.test_client()
    pair = tokens_for(client)
    r = me(client, forge(pair["access_token"]))
    assert r.status_code == 401
    assert r.json["error"] == "invalid_token"
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_refresh_token_is_refused_as_access_token(api: Flask) -> None:
    client = api.test_client()
    pair = tokens_for(client)
    assert me(client, pair["refresh_token"]).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer \u00e9t\u00e9", "Bearer " + "a" * 9000],
)
def test_malformed_authorization_headers(api: Flask, header: str) -> None:
    r = api.test_client().get("/api/me", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json["error"] == "invalid_token"


def test_a_bad_header_never_falls_back_to_the_cookie(api: Flask) -> None:
    client = api.test_client()
    client.post("/login/alice")
    assert client.get("/api/me").json == {"user": "alice", "bearer": False}
    r = client.get("/api/me", headers=bearer("garbage"))
    assert r.status_code == 401


def with_api_keys(app: Flask) -> list[str]:
    """Give ``app`` a request_loader for its own API keys; return what it saw."""
    seen: list[str] = []

    @app.login_manager.request_loader  # type: ignore[attr-defined]
    def api_key(request: Any) -> Any:
        header = request.headers.get("Authorization", "")
        seen.append(header)
        users = app.extensions["test_users"]
        return users["bob"] if header == "Bearer apikey-123" else None

    return seen


def test_a_bearer_value_not_ours_goes_to_the_request_loader(api: Flask) -> None:
    seen = with_api_keys(api)
    client = api.test_client()
    client.post("/login/alice")
    r = client.get("/api/me", headers=bearer("apikey-123"))
    assert r.json == {"user": "bob", "bearer": False}
    assert seen == ["Bearer apikey-123"]
    # A key the app refuses: 401, never the cookie's user.
    r = client.get("/api/me", headers=bearer("apikey-999"))
    assert r.status_code == 401
    assert r.mimetype == "application/json"
    assert seen[-1] == "Bearer apikey-999"
    # Tokens of ours still work beside the app's keys.
    pair = tokens_for(client)
    assert me(client, pair["access_token"]).json == {"user": "alice", "bearer": True}
    assert len(seen) == 2


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param("expired", id="expired"),
        pytest.param(lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), id="sig"),
        pytest.param(
            lambda t: (
                _b64({"alg": "none", "typ": "at+jwt"}) + "." + t.split(".")[1] + "."
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}),
                "a-wrong-key-that-is-long-enough-0123456789",
                headers={"typ": "at+jwt"},
            ),
            id="wrong-key",
        ),
    ],
)
def test_our_refused_tokens_never_reach_the_request_loader(
    api: Flask, clock: FrozenClock, spoil: Any
) -> None:
    seen = with_api_keys(api)
    client = api.test_client()
    pair = tokens_for(client)
    client.post("/login/bob")
    token = pair["access_token"]
    if spoil == "expired":
        clock.advance(900)
    else:
        token = spoil(token)
    r = me(client, token)
    assert r.status_code == 401
    assert r.json["error"] == "invalid_token"
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert seen == []
    # The cookie alone is still bob's session.
    assert client.get("/api/me").json == {"user": "bob", "bearer": False}


def test_token_required_refuses_the_cookie(api: Flask) -> None:
    client = api.test_client()
    client.post("/login/alice")
    r = client.post("/api/logout")
    assert r.status_code == 401
    assert client.get("/api/me").status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_family(
    api: Flask, clock: FrozenClock
) -> None:
    client = api.test_client()
    first = tokens_for(client)
    r = client.post(
        "/api/token/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    second = r.json
    assert second["refresh_token"] != first["refresh_token"]
    assert me(client, second["access_token"]).status_code == 200
    clock.advance(10)  # past the grace window: this is theft
    r = client.post(
        "/api/token/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"
    # The whole family is dead, the newest tokens included.
    assert me(client, second["access_token"]).status_code == 401
    assert me(client, first["access_token"]).status_code == 401
    r = client.post(
        "/api/token/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert r.status_code == 400


def test_retry_inside_grace_is_invalid_grant_without_revoking(api: Flask) -> None:
    client = api.test_client()
    first = tokens_for(client)
    body = {"refresh_token": first["refresh_token"]}
    second = client.post("/api/token/refresh", json=body).json
    retry = client.post("/api/token/refresh", json=body)
    assert retry.status_code == 400
    assert retry.json["error"] == "invalid_grant"
    assert me(client, second["access_token"]).status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, None])
def test_missing_refresh_token_is_invalid_request(api: Flask, body: Any) -> None:
    r = api.test_client().post("/api/token/refresh", json=body)
    assert r.status_code == 400
    assert r.json["error"] == "invalid_request"


def test_api_logout_kills_this_family_only(api: Flask) -> None:
    client = api.test_client()
    phone = tokens_for(client)
    laptop = tokens_for(client)
    bob = tokens_for(client, "bob")
    r = client.post("/api/logout", headers=bearer(phone["access_token"]))
    assert r.status_code == 204
    assert me(client, phone["access_token"]).status_code == 401
    r = client.post(
        "/api/token/refresh", json={"refresh_token": phone["refresh_token"]}
    )
    assert r.status_code == 400
    assert me(client, laptop["access_token"]).status_code == 200
    assert me(client, bob["access_token"]).status_code == 200


def test_api_logout_all_kills_sessions_and_tokens(api: Flask) -> None:
    browser = api.test_client()
    browser.post("/login/alice")
    client = api.test_client()
    one, two = tokens_for(client), tokens_for(client)
    bob = tokens_for(client, "bob")
    r = client.post("/api/logout-all", headers=bearer(one["access_token"]))
    assert r.status_code == 204
    for pair in (one, two):
        assert me(client, pair["access_token"]).status_code == 401
        body = {"refresh_token": pair["refresh_token"]}
        assert client.post("/api/token/refresh", json=body).status_code == 400
    assert browser.get("/api/me").status_code == 401
    assert me(client, bob["access_token"]).status_code == 200
    # Tokens issued after it work.
    assert me(client, tokens_for(client)["access_token"]).status_code == 200


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus"])
def test_rfc7009_revocation_finds_the_token_whatever_the_hint(
    api: Flask, hint: str | None
) -> None:
    client = api.test_client()
    for kind in ("access_token", "refresh_token"):
        pair = tokens_for(client)
        form = {"token": pair[kind], **({"hint": hint} if hint else {})}
        assert client.post("/api/token/revoke", data=form).status_code == 200
        assert me(client, pair["access_token"]).status_code == 401
        body = {"refresh_token": pair["refresh_token"]}
        assert client.post("/api/token/refresh", json=body).status_code == 400


def test_rfc7009_forged_access_token_revokes_nothing(api: Flask) -> None:
    client = api.test_client()
    victim = tokens_for(client)
    claims = jwt.decode(victim["access_token"], options={"verify_signature": False})
    forged = jwt.encode(
        claims, "attacker-key-attacker-key-attacker-key!", headers={"typ": "at+jwt"}
    )
    for token in (forged, "garbage", ""):
        r = client.post("/api/token/revoke", data={"token": token})
        assert r.status_code == 200
    assert me(client, victim["access_token"]).status_code == 200


def test_password_change_kills_other_clients_and_keeps_this_one(api: Flask) -> None:
    here = api.test_client()
    here.post("/login/alice")
    before = here.get_cookie("session").value
    other = api.test_client()
    other.post("/login/alice")
    pair = tokens_for(api.test_client())
    bob = api.test_client()
    bob.post("/login/bob")
    assert here.post("/password").json == {"ended": 1}
    assert here.get_cookie("session").value != before  # rotated
    assert here.get("/api/me").status_code == 200
    assert other.get("/api/me").status_code == 401
    assert me(here, pair["access_token"]).status_code == 401
    assert bob.get("/api/me").status_code == 200


def test_revocation_is_seen_by_another_process_at_once(
    api: Flask, db_path: Path, clock: FrozenClock
) -> None:
    # A second app on the same store stands for another worker process.
    other_worker = make_app(db_path, clock)
    add_api(other_worker)
    pair = tokens_for(api.test_client())
    assert me(other_worker.test_client(), pair["access_token"]).status_code == 200
    r = api.test_client().post("/api/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert me(other_worker.test_client(), pair["access_token"]).status_code == 401


def test_deleted_user_token_is_refused(api: Flask) -> None:
    client = api.test_client()
    pair = tokens_for(client)
    del api.extensions["test_users"]["alice"]
    assert me(client, pair["access_token"]).status_code == 401


def test_expired_access_token(api: Flask, clock: FrozenClock) -> None:
    client = api.test_client()
    pair = tokens_for(client)
    clock.advance(900)
    r = me(client, pair["access_token"])
    assert r.status_code == 401
    assert r.json["error"] == "invalid_token"


def test_jwt_secret_key_equal_to_secret_key_is_refused(
    db_path: Path, clock: FrozenClock
) -> None:
    from flask_signoff import ConfigError
    from tests.support import SECRET_KEY

    with pytest.raises(ConfigError, match="SIGNOFF_JWT_SECRET_KEY"):
        make_app(db_path, clock, SIGNOFF_JWT_SECRET_KEY=SECRET_KEY)
