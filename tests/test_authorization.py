"""The one reading of the Authorization header, and what each scheme decides."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask

import flask_signoff
from flask_signoff.authorization import (
    BearerToken,
    MalformedBearer,
    NoAuthorization,
    OtherScheme,
    parse_authorization,
    request_authorization,
)
from flask_signoff.core.access import AccessTokenCodec
from flask_signoff.core.ids import new_secret, random_tag
from flask_signoff.core.keys import KeySet
from flask_signoff.responses import wants_json
from tests.support.backends import count_rows

#: Credentials a browser keeps and sends by itself on every request to the
#: site: a staging gate's Basic, an intranet's Kerberos or NTLM; and a header
#: that is not HTTP authentication at all.
NOT_BEARER = [
    "Basic c3RhZ2luZzpwYXNzd29yZA==",
    'Digest username="staging", realm="staging", nonce="n", uri="/me"',
    "Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXagMDAuBgkqhkiC9xIBAgIGCSqGSIb3",
    "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
    "garbage",
    "",
]


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- the parser ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, NoAuthorization()),
        ("Bearer abc.def-_~+/=", BearerToken("abc.def-_~+/=")),
        ("bearer abc", BearerToken("abc")),
        ("  BEARER \t abc  ", BearerToken("abc")),
        ("Basic dXNlcjpwYXNz", OtherScheme("basic")),
        ("NTLM TlRMTVNT", OtherScheme("ntlm")),
        ("Negotiate " + "A" * 20000, OtherScheme("negotiate")),
        ("Bearerabc", OtherScheme("bearerabc")),
        ("garbage", OtherScheme("garbage")),
        ("", OtherScheme("")),
        ("   ", OtherScheme("")),
        ("Bearer", MalformedBearer("The Bearer token is missing.")),
        ("Bearer   ", MalformedBearer("The Bearer token is missing.")),
        ("Bearer a b", MalformedBearer("The Bearer token is malformed.")),
        ("Bearer \u00e9t\u00e9", MalformedBearer("The Bearer token is malformed.")),
        ("Bearer a\x01b", MalformedBearer("The Bearer token is malformed.")),
        (
            "Bearer " + "a" * 9000,
            MalformedBearer("The Authorization header is too long."),
        ),
    ],
)
def test_parse_authorization(header: str | None, expected: object) -> None:
    assert parse_authorization(header) == expected


def test_only_a_well_formed_bearer_header_is_token_authentication() -> None:
    assert BearerToken("x").by_bearer
    assert MalformedBearer("bad").by_bearer
    assert not OtherScheme("basic").by_bearer
    assert not NoAuthorization().by_bearer


def test_ours_is_a_jwt_that_says_it_is_an_access_token() -> None:
    codec = AccessTokenCodec(
        KeySet.from_secret_keys(["k" * 32]), issuer="i", audience="a", access_ttl=60
    )
    token, _ = codec.encode(
        subject="alice", family_id="f", client_id="", epoch=0, now=1000.0
    )
    assert BearerToken(token).ours
    claims = {"sub": "alice", "iss": "elsewhere"}
    key = "another-key-that-is-long-enough-0123456789"
    # Signed by anyone, verified or not: the header decides whose it is.
    assert BearerToken(jwt.encode(claims, key, headers={"typ": "at+jwt"})).ours
    typ = {"typ": "application/AT+JWT"}
    assert BearerToken(jwt.encode(claims, key, headers=typ)).ours
    forged = _b64({"alg": "none", "typ": "at+jwt"}) + "." + _b64(claims) + "."
    assert BearerToken(forged).ours
    # An ID token, an app's own JWT, an API key, a refresh token: not ours.
    assert not BearerToken(jwt.encode(claims, key)).ours
    assert not BearerToken(jwt.encode(claims, key, headers={"typ": "JWT"})).ours
    assert not BearerToken("apikey-123").ours
    assert not BearerToken(new_secret(random_tag())).ours
    assert not BearerToken("%%%.e30.x").ours
    assert not BearerToken(_b64({"typ": ["at+jwt"]}) + ".e30.x").ours
    assert not BearerToken("W10.e30.x").ours  # a JSON list, not an object


def test_request_authorization_reads_the_current_request(app: Flask) -> None:
    with app.test_request_context(headers={"Authorization": "Basic eDp5"}):
        assert request_authorization() == OtherScheme("basic")
    with app.test_request_context():
        assert request_authorization() == NoAuthorization()


def test_only_one_module_reads_the_authorization_header() -> None:
    # Every reader goes through flask_signoff.authorization, so that no two
    # parts of the extension can disagree about what a header means.
    package = Path(flask_signoff.__file__).parent
    readers = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in (
                "Authorization",
                "HTTP_AUTHORIZATION",
            ):
                readers.append(path.relative_to(package).as_posix())
    assert sorted(set(readers)) == ["authorization.py"]


# -- what the other schemes leave to the cookie -------------------------------------


@pytest.mark.parametrize("header", NOT_BEARER)
def test_other_schemes_leave_the_cookie_session_in_charge(
    app: Flask, db_path: Path, header: str
) -> None:
    client = app.test_client()
    client.post("/login/alice")
    copied = client.get_cookie("session")
    assert copied is not None
    client.environ_base["HTTP_AUTHORIZATION"] = header
    assert client.get("/me").json == {"user": "alice"}
    r = client.post("/logout")
    assert r.status_code == 200
    assert count_rows(db_path) == 0
    deleted = r.headers["Set-Cookie"]
    assert deleted.startswith("session=;")
    assert "Max-Age=0" in deleted
    assert "Path=/" in deleted
    assert client.get("/me").status_code == 401
    thief = app.test_client()
    thief.set_cookie("session", copied.value)
    thief.environ_base["HTTP_AUTHORIZATION"] = header
    assert thief.get("/me").status_code == 401


@pytest.mark.parametrize("header", NOT_BEARER)
def test_a_browser_behind_http_authentication_still_wants_html(
    app: Flask, header: str
) -> None:
    app.login_manager.login_view = "public"  # type: ignore[attr-defined]
    client = app.test_client()
    r = client.get("/me", headers={"Authorization": header, "Accept": "text/html"})
    assert r.status_code == 302
    assert r.location == "/public?next=%2Fme"
    with app.test_request_context(headers={"Authorization": header}):
        assert not wants_json()


@pytest.mark.parametrize("header", ["Bearer x", "Bearer", "Bearer a b"])
def test_a_bearer_client_gets_json(app: Flask, header: str) -> None:
    app.login_manager.login_view = "public"  # type: ignore[attr-defined]
    client = app.test_client()
    client.post("/login/alice")
    r = client.get("/me", headers={"Authorization": header, "Accept": "text/html"})
    assert r.status_code == 401
    assert r.json["error"] == "invalid_token"
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    with app.test_request_context(headers={"Authorization": header}):
        assert wants_json()
