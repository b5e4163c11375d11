"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

The local session ends first, whatever the provider does; then the browser
goes to the provider's ``end_session_endpoint`` and comes back with the
``state`` it was sent with.
"""

from __future__ import annotations

import typing as t
import urllib.parse

import pytest
from flask import Flask

from tests.support.cookies import PLAIN_SESSION, client_with_cookie, session_cookie
from tests.support.oidc import CLIENT_ID, ProviderServer, id_token_response, signed_in

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def sign_in_with_token(
    app: Flask, idp: ProviderServer, name: str = "alice"
) -> tuple[t.Any, dict[str, t.Any]]:
    import json

    client = app.test_client()
    token = id_token_response(idp.issuer, f"sub-{name}", "sid-1")
    query = urllib.parse.urlencode({"token": json.dumps(token)})
    assert client.get(f"/callback/{name}?{query}").json == {"ok": True}
    return client, token


def post_logout(client: t.Any) -> t.Any:
    csrf = client.get("/csrf").json["token"]
    return client.post("/logout", headers={"X-CSRF-Token": csrf})


def test_logout_ends_the_session_then_goes_to_the_provider(
    app: Flask, idp: ProviderServer
) -> None:
    client, token = sign_in_with_token(app, idp)
    copied = session_cookie(client, PLAIN_SESSION)
    assert copied is not None
    response = post_logout(client)
    assert response.status_code == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{idp.issuer}/logout"
    )
    params = urllib.parse.parse_qs(location.query)
    state = params.pop("state")
    assert params == {
        "ui": ["1"],  # the endpoint's own query is kept
        "client_id": [CLIENT_ID],
        "id_token_hint": [token["id_token"]],
        "post_logout_redirect_uri": ["http://127.0.0.1:5000/login"],
    }
    assert len(state[0]) >= 43
    assert response.headers["Cache-Control"] == "no-store"
    assert "Clear-Site-Data" in response.headers
    assert signed_in(client) is None
    # A copy of the cookie taken before is dead too.
    thief = client_with_cookie(app, copied, PLAIN_SESSION)
    assert signed_in(thief) is None
    # The provider sends the browser back with the state: accepted once.
    assert client.get("/login?state=" + state[0]).json == {"state_ok": True}
    assert client.get("/login?state=" + state[0]).json == {"state_ok": False}


def test_a_wrong_or_missing_state_is_refused(app: Flask, idp: ProviderServer) -> None:
    client, _ = sign_in_with_token(app, idp)
    location = post_logout(client).headers["Location"]
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["state"][0]
    # No state: refused, and the kept one stays for the real redirect.
    assert client.get("/login").json == {"state_ok": False}
    assert client.get("/login?state=forged").json == {"state_ok": False}
    # A wrong state spent the kept one: the real one is refused after it.
    assert client.get("/login?state=" + state).json == {"state_ok": False}
    # Another browser never had it.
    other, _ = sign_in_with_token(app, idp, "bob")
    assert other.get("/login?state=" + state).json == {"state_ok": False}


def test_a_password_session_goes_to_the_default_redirect(
    app: Flask, idp: ProviderServer
) -> None:
    client = app.test_client()
    client.get("/password-login/alice")
    response = post_logout(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert signed_in(client) is None
    assert idp.requests == {}


@SQLITE_ONLY
def test_the_provider_down_still_signs_out_locally(
    app: Flask, idp: ProviderServer
) -> None:
    client, _ = sign_in_with_token(app, idp)
    idp.stop()
    response = post_logout(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert signed_in(client) is None


@SQLITE_ONLY
def test_logout_needs_the_csrf_token_as_before(app: Flask, idp: ProviderServer) -> None:
    client, _ = sign_in_with_token(app, idp)
    assert client.post("/logout").status_code == 403
    assert signed_in(client) == "alice"


@SQLITE_ONLY
def test_a_state_on_a_fresh_visit_writes_nothing(app: Flask) -> None:
    response = app.test_client().get("/login?state=anything")
    assert response.json == {"state_ok": False}
    assert "Set-Cookie" not in response.headers
