"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) end to end.

A provider's documents are served for real on 127.0.0.1
(:mod:`tests.support.oidc`); logout tokens are signed with PyJWT. Each
refusal test breaks exactly one rule of section 2.6 and checks that the
token is refused with 400 and that nothing ended: the session still works
afterwards. The tests that end sessions run on every backend.
"""

from __future__ import annotations

import json
import logging
import time
import typing as t
import urllib.parse

import jwt
import pytest
from flask import Flask

from flask_signoff.core.clock import FrozenClock
from flask_signoff.signals import backchannel_logout
from tests.support.backends import Backend
from tests.support.oidc import (
    CLIENT_ID,
    LOGOUT_EVENT,
    OMIT,
    ProviderServer,
    SigningKey,
    id_token_response,
    make_oidc_app,
    sign_in,
    signed_in,
)

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def post_logout(client: t.Any, token: object, **kwargs: t.Any) -> t.Any:
    return client.post("/backchannel-logout", data={"logout_token": token}, **kwargs)


def assert_refused(response: t.Any, *, mentions: str = "") -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.json
    assert body["error"] == "invalid_request"
    assert mentions in body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


# -- what a valid token ends ---------------------------------------------------


def test_a_valid_token_ends_that_provider_session_only(
    app: Flask, idp: ProviderServer
) -> None:
    alice = sign_in(app, idp)
    alice_elsewhere = sign_in(app, idp, sid="sid-2")
    bob = sign_in(app, idp, "bob", sid="sid-b")
    password = app.test_client()
    password.get("/password-login/alice")
    received: list[dict[str, t.Any]] = []

    def record(sender: Flask, **extra: t.Any) -> None:
        received.append(extra)

    with backchannel_logout.connected_to(record, app):
        response = post_logout(app.test_client(), idp.logout_token())
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert signed_in(alice) is None
    # Another sid of the same user, another user, a password sign-in: alive.
    assert signed_in(alice_elsewhere) == "alice"
    assert signed_in(bob) == "bob"
    assert signed_in(password) == "alice"
    assert received == [
        {"issuer": idp.issuer, "sid": "sid-1", "sub": "sub-alice", "ended": 1}
    ]


def test_a_token_for_another_sid_ends_nothing(app: Flask, idp: ProviderServer) -> None:
    alice = sign_in(app, idp)
    response = post_logout(app.test_client(), idp.logout_token(sid="sid-unknown"))
    assert response.status_code == 200
    assert signed_in(alice) == "alice"


def test_by_sub_when_the_token_has_no_sid(app: Flask, idp: ProviderServer) -> None:
    first = sign_in(app, idp)
    second = sign_in(app, idp, sid="sid-2")
    without_sid = sign_in(app, idp, sid=None)
    bob = sign_in(app, idp, "bob", sid="sid-1")
    response = post_logout(app.test_client(), idp.logout_token(sid=OMIT))
    assert response.status_code == 200
    for client in (first, second, without_sid):
        assert signed_in(client) is None
    assert signed_in(bob) == "bob"


def test_with_both_sid_and_sub_only_the_sid_ends(
    app: Flask, idp: ProviderServer
) -> None:
    # Section 2.7: the sid names the one provider session that ended.
    first = sign_in(app, idp)
    second = sign_in(app, idp, sid="sid-2")
    response = post_logout(app.test_client(), idp.logout_token(sub="sub-alice"))
    assert response.status_code == 200
    assert signed_in(first) is None
    assert signed_in(second) == "alice"


def test_refresh_families_tied_to_the_session_are_revoked(
    app: Flask, idp: ProviderServer
) -> None:
    alice = sign_in(app, idp)
    csrf = alice.get("/csrf").json["token"]
    pair = alice.post("/api/token", headers={"X-CSRF-Token": csrf}).json
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    other = sign_in(app, idp, sid="sid-2")
    csrf = other.get("/csrf").json["token"]
    other_pair = other.post("/api/token", headers={"X-CSRF-Token": csrf}).json
    assert app.test_client().get("/api/me", headers=bearer).json == {"user": "alice"}

    assert post_logout(app.test_client(), idp.logout_token()).status_code == 200
    # The access token dies at once, and the refresh token with its family.
    assert app.test_client().get("/api/me", headers=bearer).status_code == 401
    with app.test_request_context():
        signoff = app.login_manager  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="not valid"):
            signoff.refresh_tokens(pair["refresh_token"])
        # The family of the other sid lives on.
        assert signoff.refresh_tokens(other_pair["refresh_token"]).access_token


def test_a_replayed_token_is_refused(app: Flask, idp: ProviderServer) -> None:
    token = idp.logout_token()
    assert post_logout(app.test_client(), token).status_code == 200
    alice = sign_in(app, idp)  # signed in again with the same sid
    assert_refused(post_logout(app.test_client(), token), mentions="jti")
    assert signed_in(alice) == "alice"


def test_the_same_jti_in_another_token_is_refused(
    app: Flask, idp: ProviderServer
) -> None:
    assert post_logout(app.test_client(), idp.logout_token(jti="j1")).status_code == 200
    alice = sign_in(app, idp, sid="sid-2")
    replay = idp.logout_token(jti="j1", sid="sid-2")
    assert_refused(post_logout(app.test_client(), replay), mentions="jti")
    assert signed_in(alice) == "alice"


def test_the_store_unreachable_is_503(
    backend: Backend, clock: FrozenClock, idp: ProviderServer
) -> None:
    with backend.outage() as dead:
        app, _ = make_oidc_app(dead, clock, idp.issuer)
        response = post_logout(app.test_client(), idp.logout_token())
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers


def test_a_store_failing_half_way_is_503_and_the_retry_works(
    app: Flask, idp: ProviderServer, store: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_signoff.exceptions import StoreUnavailable

    alice = sign_in(app, idp)

    def down(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise StoreUnavailable("down", operation="end_provider_sessions")

    monkeypatch.setattr(store, "end_provider_sessions", down)
    token = idp.logout_token()
    assert post_logout(app.test_client(), token).status_code == 503
    monkeypatch.undo()
    assert signed_in(alice) == "alice"
    # The provider retries the same token: not taken for a replay.
    assert post_logout(app.test_client(), token).status_code == 200
    assert signed_in(alice) is None


# -- each rule, broken alone -----------------------------------------------------


def _broken_tokens(idp: ProviderServer) -> dict[str, tuple[str, str]]:
    """Each rule's breaking token, with a word its refusal mentions."""
    now = int(time.time())
    # A key under the provider's kid that the provider does not have.
    stranger = SigningKey("key-1", variant="stranger")
    return {
        "bad signature": (idp.logout_token(key=stranger), "signature"),
        "unknown kid": (idp.logout_token(headers={"kid": "nope"}), "key"),
        "wrong iss": (idp.logout_token(iss="http://evil.example"), "iss"),
        "iss missing": (idp.logout_token(iss=OMIT), "iss"),
        "wrong aud": (idp.logout_token(aud="another-client"), "client"),
        "aud missing": (idp.logout_token(aud=OMIT), "client"),
        "iat missing": (idp.logout_token(iat=OMIT), "iat"),
        "iat not a number": (idp.logout_token(iat=float("nan")), "iat"),
        "exp not a number": (idp.logout_token(exp="soon"), "exp"),
        "iat in the future": (idp.logout_token(now=now + 3600), "future"),
        "expired": (idp.logout_token(iat=now - 600, exp=now - 120), "expired"),
        "too old without exp": (idp.logout_token(exp=OMIT, iat=now - 3600), "expired"),
        # An exp years ahead does not make an hour-old token new: its jti
        # would have to be kept for years, and a copy would end the user's
        # sessions again whenever the store forgot it.
        "too old with a far exp": (
            idp.logout_token(iat=now - 3600, exp=now + 10 * 365 * 86400),
            "expired",
        ),
        "wrong typ": (idp.logout_token(headers={"typ": "JWT"}), "typ"),
        "events missing": (idp.logout_token(events=OMIT), "events"),
        "wrong event": (
            idp.logout_token(events={"http://schemas.openid.net/event/other": {}}),
            "events",
        ),
        "event not an object": (
            idp.logout_token(events={LOGOUT_EVENT: "yes"}),
            "events",
        ),
        "neither sid nor sub": (idp.logout_token(sid=OMIT, sub=OMIT), "sid"),
        "a nonce": (idp.logout_token(nonce="n-0S6_WzA2Mj"), "nonce"),
        "jti missing": (idp.logout_token(jti=OMIT), "jti"),
        "crit header": (idp.logout_token(headers={"crit": ["exp"]}), "JWT"),
    }


RULES = [
    "bad signature",
    "unknown kid",
    "wrong iss",
    "iss missing",
    "wrong aud",
    "aud missing",
    "iat missing",
    "iat not a number",
    "exp not a number",
    "iat in the future",
    "expired",
    "too old without exp",
    "too old with a far exp",
    "wrong typ",
    "events missing",
    "wrong event",
    "event not an object",
    "neither sid nor sub",
    "a nonce",
    "jti missing",
    "crit header",
]


@SQLITE_ONLY
@pytest.mark.parametrize("rule", RULES)
def test_a_token_breaking_one_rule_is_refused_and_ends_nothing(
    app: Flask, idp: ProviderServer, rule: str
) -> None:
    alice = sign_in(app, idp)
    token, mentions = _broken_tokens(idp)[rule]
    assert_refused(post_logout(app.test_client(), token), mentions=mentions)
    assert signed_in(alice) == "alice"
    # The same claims, rightly signed and formed, do end it: the refusal
    # above was that one rule's.
    assert post_logout(app.test_client(), idp.logout_token()).status_code == 200
    assert signed_in(alice) is None


def test_every_rule_has_its_test(idp: ProviderServer) -> None:
    assert sorted(_broken_tokens(idp)) == sorted(RULES)


@SQLITE_ONLY
def test_alg_none_is_refused(app: Flask, idp: ProviderServer) -> None:
    alice = sign_in(app, idp)
    valid = jwt.decode(idp.logout_token(), options={"verify_signature": False})
    unsigned = jwt.encode(valid, None, algorithm="none", headers={"kid": "key-1"})
    assert_refused(post_logout(app.test_client(), unsigned), mentions="algorithm")
    assert signed_in(alice) == "alice"


@SQLITE_ONLY
def test_hs256_signed_with_the_public_key_is_refused(
    app: Flask, idp: ProviderServer
) -> None:
    # The classic confusion: the provider's public key, which anyone can
    # fetch, used as an HMAC secret.
    from cryptography.hazmat.primitives import serialization

    alice = sign_in(app, idp)
    public = (
        idp.keys[0]
        .private.public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    valid = jwt.decode(idp.logout_token(), options={"verify_signature": False})
    forged = _hmac_token(valid, public)
    assert_refused(post_logout(app.test_client(), forged), mentions="algorithm")
    assert signed_in(alice) == "alice"


def _hmac_token(payload: dict[str, t.Any], secret: bytes) -> str:
    # PyJWT refuses to use a PEM public key as an HMAC secret, rightly; the
    # attacker's token is made by hand.
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "logout+jwt", "kid": "key-1"}
    signing_input = (
        b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("data", "content_type", "mentions"),
    [
        ({"token": "a.b.c"}, None, "one logout_token"),
        ({"logout_token": ""}, None, "missing"),
        ({"logout_token": "not a jwt"}, None, "not a signed JWT"),
        ({"logout_token": "a.b.c"}, None, "not a signed JWT"),
        ({"logout_token": "x" * 9000}, None, "not a signed JWT"),
        ({"logout_token": ["a.b.c", "d.e.f"]}, None, "one logout_token"),
        (None, "application/json", "form"),
    ],
)
def test_a_malformed_request_is_refused(
    app: Flask,
    idp: ProviderServer,
    data: t.Any,
    content_type: str | None,
    mentions: str,
) -> None:
    alice = sign_in(app, idp)
    client = app.test_client()
    if content_type is None:
        response = client.post("/backchannel-logout", data=data)
    else:
        body = json.dumps({"logout_token": idp.logout_token()})
        response = client.post(
            "/backchannel-logout", data=body, content_type=content_type
        )
    assert_refused(response, mentions=mentions)
    assert signed_in(alice) == "alice"


@SQLITE_ONLY
def test_the_receiver_needs_no_csrf_token_but_answers_only_post(
    app: Flask, idp: ProviderServer
) -> None:
    # App-wide CSRF protection is on in this app; a cookie riding along
    # changes nothing.
    alice = sign_in(app, idp)
    assert alice.get("/backchannel-logout").status_code == 405
    response = post_logout(
        alice, idp.logout_token(), headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 200
    assert signed_in(alice) is None


# -- keys ---------------------------------------------------------------------------


@SQLITE_ONLY
def test_a_rotated_key_is_fetched_once(
    app: Flask, idp: ProviderServer, clock: FrozenClock
) -> None:
    alice = sign_in(app, idp)
    bob = sign_in(app, idp, "bob", sid="sid-b")
    assert post_logout(app.test_client(), idp.logout_token()).status_code == 200
    assert idp.requests["/jwks"] == 1
    # The provider rotates its key; a minute later it signs with the new one.
    rotated = SigningKey("key-2", "ES256")
    idp.keys.append(rotated)
    clock.advance(61)
    token = idp.logout_token(key=rotated, sid="sid-b", sub="sub-bob", now=clock())
    assert post_logout(app.test_client(), token).status_code == 200
    assert idp.requests["/jwks"] == 2
    assert signed_in(bob) is None
    assert signed_in(alice) is None
    # The new key is kept: the next token signed with it costs no fetch.
    again = idp.logout_token(key=rotated, sid="sid-x", now=clock())
    assert post_logout(app.test_client(), again).status_code == 200
    assert idp.requests["/jwks"] == 2


@SQLITE_ONLY
def test_an_unknown_kid_costs_one_fetch_per_interval(
    app: Flask, idp: ProviderServer, clock: FrozenClock
) -> None:
    alice = sign_in(app, idp)
    assert post_logout(app.test_client(), idp.logout_token(sid="x")).status_code == 200
    assert idp.requests["/jwks"] == 1
    clock.advance(61)
    unknown = SigningKey("key-9")
    for _ in range(3):
        token = idp.logout_token(key=unknown, now=clock())
        assert_refused(post_logout(app.test_client(), token), mentions="key")
    # The first unknown kid fetched the set again; the next ones did not.
    assert idp.requests["/jwks"] == 2
    assert signed_in(alice) == "alice"


@SQLITE_ONLY
def test_a_failing_key_set_is_fetched_once_per_interval(
    app: Flask, idp: ProviderServer, clock: FrozenClock
) -> None:
    # Forged tokens with made-up kids, while the provider's JWK Set fails:
    # each would otherwise send the provider one more request.
    alice = sign_in(app, idp)
    assert post_logout(app.test_client(), idp.logout_token(sid="x")).status_code == 200
    assert idp.requests["/jwks"] == 1
    clock.advance(61)
    idp.raw["/jwks"] = (500, {}, b"")
    for i in range(5):
        token = idp.logout_token(key=SigningKey(f"made-up-{i}"), now=clock())
        assert post_logout(app.test_client(), token).status_code in (400, 503)
    assert idp.requests["/jwks"] == 2
    # A key the set holds still verifies meanwhile, with no fetch.
    token = idp.logout_token(sid="y", now=clock())
    assert post_logout(app.test_client(), token).status_code == 200
    assert idp.requests["/jwks"] == 2
    # An interval later the set is fetched again, and the rotated key found.
    del idp.raw["/jwks"]
    rotated = SigningKey("key-2", "ES256")
    idp.keys.append(rotated)
    clock.advance(61)
    token = idp.logout_token(key=rotated, now=clock())
    assert post_logout(app.test_client(), token).status_code == 200
    assert idp.requests["/jwks"] == 3
    assert signed_in(alice) is None


@SQLITE_ONLY
def test_a_key_set_never_fetched_is_tried_once_per_interval(
    app: Flask, idp: ProviderServer, clock: FrozenClock
) -> None:
    alice = sign_in(app, idp)
    idp.raw["/jwks"] = (500, {}, b"")
    for i in range(5):
        token = idp.logout_token(key=SigningKey(f"made-up-{i}"), now=clock())
        assert post_logout(app.test_client(), token).status_code == 503
    assert idp.requests["/jwks"] == 1
    del idp.raw["/jwks"]
    clock.advance(61)
    token = idp.logout_token(now=clock())
    assert post_logout(app.test_client(), token).status_code == 200
    assert idp.requests["/jwks"] == 2
    assert signed_in(alice) is None


@SQLITE_ONLY
def test_the_provider_down_is_503_and_ends_nothing(
    app: Flask, idp: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = sign_in(app, idp)
    token = idp.logout_token()
    idp.stop()
    with caplog.at_level(logging.INFO, logger="flask_signoff"):
        response = post_logout(app.test_client(), token)
    assert response.status_code == 503
    assert response.json["error"] == "temporarily_unavailable"
    assert signed_in(alice) == "alice"
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


@SQLITE_ONLY
def test_no_token_reaches_the_log(
    app: Flask, idp: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    sign_in(app, idp)
    good, bad = idp.logout_token(), idp.logout_token(aud="other")
    with caplog.at_level(logging.DEBUG):
        assert post_logout(app.test_client(), bad).status_code == 400
        assert post_logout(app.test_client(), good).status_code == 200
    assert "Back-channel logout" in caplog.text
    for token in (good, bad):
        for part in token.split("."):
            assert part not in caplog.text


# -- sign-in ------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    "change",
    [
        {"iss": "http://evil.example"},
        {"aud": "another-client"},
        {"aud": ["another-client"]},
        {"sub": ""},
    ],
)
def test_sign_in_refuses_claims_of_another_provider_or_client(
    app: Flask, idp: ProviderServer, change: dict[str, t.Any]
) -> None:
    token = id_token_response(idp.issuer, "sub-alice", "sid-1")
    token["userinfo"].update(change)
    client = app.test_client()
    query = urllib.parse.urlencode({"token": json.dumps(token)})
    assert client.get(f"/callback/alice?{query}").status_code == 401
    assert signed_in(client) is None


@SQLITE_ONLY
def test_sign_in_accepts_an_audience_list(app: Flask, idp: ProviderServer) -> None:
    token = id_token_response(idp.issuer, "sub-alice", "sid-1")
    token["userinfo"]["aud"] = ["other", CLIENT_ID]
    client = app.test_client()
    query = urllib.parse.urlencode({"token": json.dumps(token)})
    assert client.get(f"/callback/alice?{query}").json == {"ok": True}


@SQLITE_ONLY
def test_a_sign_in_is_fresh_unless_the_provider_checked_long_ago(
    app: Flask, idp: ProviderServer, clock: FrozenClock
) -> None:
    assert sign_in(app, idp).get("/fresh").json == {"fresh": True}
    just_now = sign_in(app, idp, auth_time=int(clock()) - 60)
    assert just_now.get("/fresh").json == {"fresh": True}
    long_ago = sign_in(app, idp, auth_time=int(clock()) - 3600)
    assert long_ago.get("/fresh").json == {"fresh": False}
