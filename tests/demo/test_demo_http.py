"""The reference app's contract, row by row, through Flask's test client."""

from __future__ import annotations

import datetime as dt
import os
import stat
import typing as t
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples.demo import create_app
from flask_signoff import FrozenClock
from tests.support.backends import count_sessions, forget_expired
from tests.support.cookies import (
    HOST_SESSION,
    client_with_cookie,
    session_cookie,
    set_cookie_header,
)
from tests.support.demo import CHEAP_ARGON2, PASSWORD
from tests.support.forms import csrf_token, post_form

Login = Callable[..., FlaskClient]
COOKIE = HOST_SESSION
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
FIREFOX = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
)
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
]
OFF_SITE = [
    "//evil.example/",
    "/\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
]


def me(client: FlaskClient) -> int:
    return client.get("/api/me").status_code


def replay(app: Flask, cookie: str) -> FlaskClient:
    """A new client that holds a copy of someone's session cookie."""
    return client_with_cookie(app, cookie)


def session_ids(client: FlaskClient) -> dict[str, bool]:
    response = client.get("/api/sessions")
    assert response.status_code == 200
    return {row["id"]: row["current"] for row in response.json}


# -- register ----------------------------------------------------------------


def test_register_then_duplicate(app: Flask) -> None:
    client = app.test_client()
    data = {"username": "alice", "password": PASSWORD}
    response = post_form(client, "/register", **data)
    assert response.status_code == 303
    assert response.location == "/login"
    response = post_form(client, "/register", **data)
    assert response.status_code == 409
    assert '<form method="post" action="/register">' in response.get_data(as_text=True)


def test_register_form_carries_csrf_token(app: Flask) -> None:
    html = app.test_client().get("/register").get_data(as_text=True)
    assert '<input type="hidden" name="csrf_token" value="a.' in html


@pytest.mark.parametrize(
    ("username", "password"), [("", PASSWORD), ("x" * 65, PASSWORD), ("bob", "short")]
)
def test_register_refuses_bad_input(app: Flask, username: str, password: str) -> None:
    client = app.test_client()
    response = post_form(client, "/register", username=username, password=password)
    assert response.status_code == 400


@pytest.mark.parametrize("headers", [{}, *CROSS_SITE])
def test_register_needs_csrf_and_same_origin(
    app: Flask, headers: dict[str, str]
) -> None:
    client = app.test_client()
    token = csrf_token(client, "/register")
    data = {"username": "mallory", "password": PASSWORD}
    if headers:
        data["csrf_token"] = token
    response = client.post("/register", data=data, headers=headers)
    assert response.status_code == 403
    # No account was made.
    login = post_form(client, "/login", **data)
    assert login.status_code == 401


# -- login -------------------------------------------------------------------


def test_login_303_to_root_and_cookie_attributes(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("alice")
    client = app.test_client()
    response = post_form(client, "/login", username="alice", password=PASSWORD)
    assert response.status_code == 303
    assert response.location == "/"
    header = set_cookie_header(response)
    for attribute in ("HttpOnly", "SameSite=Lax", "Secure", "Path=/"):
        assert attribute in header
    # Without "remember", nothing persistent could sign the browser in again.
    assert "Max-Age" not in header
    assert "Expires" not in header
    assert "Domain" not in header
    assert me(client) == 200


def test_login_remember_sets_a_persistent_cookie(login: Login) -> None:
    client = login("alice", remember=True)
    response = client.get("/")
    assert response.status_code == 200
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    assert cookie.expires is not None


def test_login_follows_a_local_next(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("alice")
    client = app.test_client()
    login_page = client.get("/login?next=/sessions").get_data(as_text=True)
    assert 'name="next" value="/sessions"' in login_page
    response = post_form(
        client, "/login", username="alice", password=PASSWORD, next="/sessions"
    )
    assert response.status_code == 303
    assert response.location == "/sessions"


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_off_site(
    app: Flask, register: Callable[[str], None], target: str
) -> None:
    register("alice")
    client = app.test_client()
    response = post_form(
        client, "/login", username="alice", password=PASSWORD, next=target
    )
    assert response.status_code == 303
    assert response.location == "/"


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password"), ("nobody", PASSWORD), ("alice", ""), ("", "")],
)
def test_login_bad_credentials_401_with_form(
    app: Flask, register: Callable[[str], None], username: str, password: str
) -> None:
    register("alice")
    client = app.test_client()
    response = post_form(client, "/login", username=username, password=password)
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert '<form method="post" action="/login">' in html
    assert 'name="csrf_token"' in html
    assert session_cookie(client) is None


@pytest.mark.parametrize("headers", [{}, *CROSS_SITE])
def test_login_needs_csrf_and_same_origin(
    app: Flask, register: Callable[[str], None], headers: dict[str, str]
) -> None:
    register("alice")
    client = app.test_client()
    data = {"username": "alice", "password": PASSWORD}
    if headers:
        data["csrf_token"] = csrf_token(client)
    response = client.post("/login", data=data, headers=headers)
    assert response.status_code == 403
    assert session_cookie(client) is None


#: Credentials a browser keeps and sends by itself (HTTP authentication of a
#: staging site behind Basic auth, an intranet's Kerberos), also on a post
#: that another site's page makes.
AMBIENT_AUTHORIZATION = [
    "Basic c3RhZ2luZzpwYXNzd29yZA==",
    'Digest username="staging", realm="staging", nonce="n", uri="/login"',
    "Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXagMDAuBgkqhkiC9xIBAgIGCSqGSIb3",
    "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
]


@pytest.mark.parametrize("authorization", AMBIENT_AUTHORIZATION)
@pytest.mark.parametrize("headers", [{}, *CROSS_SITE])
def test_login_csrf_with_browser_sent_authorization_refused(
    app: Flask,
    register: Callable[[str], None],
    authorization: str,
    headers: dict[str, str],
) -> None:
    register("mallory")
    victim = app.test_client()
    response = victim.post(
        "/login",
        data={"username": "mallory", "password": PASSWORD},
        headers={**headers, "Authorization": authorization},
    )
    assert response.status_code == 403
    assert session_cookie(victim) is None


@pytest.mark.parametrize("authorization", AMBIENT_AUTHORIZATION)
def test_logout_with_browser_sent_authorization_needs_csrf(
    login: Login, authorization: str
) -> None:
    client = login("alice")
    # A sibling subdomain's page: same-site, so the Lax cookie goes along.
    response = client.post(
        "/logout",
        headers={"Authorization": authorization, "Sec-Fetch-Site": "same-site"},
    )
    assert response.status_code == 403
    assert me(client) == 200


def behind_http_authentication(client: FlaskClient, authorization: str) -> None:
    """From now on ``client`` sends ``authorization`` on every request, as a
    browser does once it has passed a staging site's Basic-auth gate."""
    client.environ_base["HTTP_AUTHORIZATION"] = authorization


@pytest.mark.parametrize("authorization", AMBIENT_AUTHORIZATION)
def test_http_authentication_leaves_the_cookie_user_signed_in(
    app: Flask, login: Login, authorization: str
) -> None:
    client = login("alice")
    behind_http_authentication(client, authorization)
    assert client.get("/api/me").json == {"user": "alice"}
    assert "alice" in client.get("/").get_data(as_text=True)
    assert client.get("/sessions").status_code == 200
    # Nobody signed in: the login page, as for any browser.
    anonymous = app.test_client()
    behind_http_authentication(anonymous, authorization)
    assert anonymous.get("/").status_code == 302
    assert anonymous.get("/api/me").status_code == 401


@pytest.mark.parametrize("authorization", AMBIENT_AUTHORIZATION)
def test_logout_behind_http_authentication_ends_the_session(
    app: Flask, login: Login, authorization: str
) -> None:
    client = login("alice")
    token = csrf_token(client, "/")
    behind_http_authentication(client, authorization)
    copied = session_cookie(client)
    assert copied is not None
    assert count_sessions(app) == 1
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location == "/login"
    # The record is gone from the store, not only forgotten by this browser.
    assert count_sessions(app) == 0
    deleted = set_cookie_header(response)
    for attribute in ("Max-Age=0", "Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
        assert attribute in deleted
    assert session_cookie(client) is None
    assert me(client) == 401
    # A copy of the cookie taken before sign-out is dead, header or not.
    thief = replay(app, copied)
    behind_http_authentication(thief, authorization)
    assert me(thief) == 401
    assert thief.get("/").status_code == 302


@pytest.mark.parametrize("authorization", AMBIENT_AUTHORIZATION)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}],
    ids=["no-token", "cross-site", "foreign-origin"],
)
def test_logout_behind_http_authentication_needs_csrf_and_same_origin(
    app: Flask, login: Login, authorization: str, headers: dict[str, str]
) -> None:
    client = login("alice")
    behind_http_authentication(client, authorization)
    # The right token, but cross-site; or same-site without a token.
    data = {"csrf_token": csrf_token(client, "/")} if headers else {}
    response = client.post("/logout", data=data, headers=headers)
    assert response.status_code == 403
    assert me(client) == 200
    assert count_sessions(app) == 1


def test_login_replaces_a_planted_session(app: Flask, login: Login) -> None:
    mallory = login("mallory")
    planted = session_cookie(mallory)
    assert planted is not None
    victim = replay(app, planted)
    response = victim.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": "x"},
    )
    assert response.status_code == 403  # mallory's page token is not the victim's
    login("alice")  # registers alice
    response = post_form(victim, "/login", username="alice", password=PASSWORD)
    assert response.status_code == 303
    assert session_cookie(victim) != planted
    assert victim.get("/api/me").json == {"user": "alice"}
    # The planted id is gone: it does not lead to alice, nor to anyone.
    assert me(replay(app, planted)) == 401


def test_anonymous_pages_create_no_store_record(app: Flask) -> None:
    client = app.test_client()
    for _ in range(10):
        assert client.get("/login").status_code == 200
        assert client.get("/register").status_code == 200
        assert client.get("/login?next=/sessions").status_code == 200
        assert client.get("/").status_code == 302
        assert client.get("/logout").status_code == 200
    failed = post_form(client, "/login", username="x", password="y")
    assert failed.status_code == 401
    assert count_sessions(app) == 0
    assert session_cookie(client) is None
    # The count sees records where there are some: signing in makes one.
    post_form(client, "/register", username="alice", password=PASSWORD)
    post_form(client, "/login", username="alice", password=PASSWORD)
    assert me(client) == 200
    assert count_sessions(app) == 1


# -- pages ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/sessions", "/password", "/?a=1"])
def test_signed_out_pages_redirect_to_login_with_next(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]


def test_home_says_who_and_has_the_sign_out_form(login: Login) -> None:
    client = login("alice")
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Signed in as <strong>alice</strong>" in html
    assert '<form class="inline" method="post" action="/logout">' in html
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<script src="/_signoff/signoff.js"' in html


@pytest.mark.parametrize("path", ["/", "/sessions", "/password", "/logout"])
def test_every_authenticated_page_has_the_sign_out_form(
    login: Login, path: str
) -> None:
    html = login("alice").get(path).get_data(as_text=True)
    assert 'action="/logout"' in html
    assert 'name="csrf_token" value="s.' in html


# -- logout --------------------------------------------------------------------


def test_get_logout_is_a_confirm_page_that_changes_nothing(login: Login) -> None:
    client = login("alice")
    cookie = session_cookie(client)
    response = client.get("/logout")
    assert response.status_code == 200
    assert '<button type="submit" id="confirm-sign-out">' in response.get_data(
        as_text=True
    )
    assert not any(
        h.startswith(f"{COOKIE}=") for h in response.headers.getlist("Set-Cookie")
    )
    assert "Clear-Site-Data" not in response.headers
    assert session_cookie(client) == cookie
    assert me(client) == 200


def test_post_logout_ends_the_session_for_good(app: Flask, login: Login) -> None:
    client = login("alice")
    copied = session_cookie(client)
    assert copied is not None
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 303
    assert response.location == "/login"
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert response.headers["Cache-Control"] == "no-store"
    deleted = set_cookie_header(response)
    for attribute in ("Max-Age=0", "Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
        assert attribute in deleted
    assert me(client) == 401
    # A copy of the cookie taken before sign-out is refused.
    thief = replay(app, copied)
    assert me(thief) == 401
    assert thief.get("/api/me").json["error"] == "unauthorized"
    assert thief.get("/").status_code == 302


@pytest.mark.parametrize("target", OFF_SITE)
def test_logout_never_redirects_off_site(login: Login, target: str) -> None:
    client = login("alice")
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(client, "/"), "next": target}
    )
    assert response.status_code == 303
    assert response.location == "/login"


def test_logout_refuses_missing_wrong_and_foreign_tokens(
    app: Flask, login: Login
) -> None:
    client = login("alice")
    other = login("alice")
    anonymous = app.test_client()
    tokens: list[str | None] = [
        None,
        "s.wrong",
        csrf_token(other, "/"),
        csrf_token(anonymous),
        csrf_token(client, "/").replace("s.", "a.", 1),
    ]
    for token in tokens:
        data = {} if token is None else {"csrf_token": token}
        response = client.post("/logout", data=data)
        assert response.status_code == 403, token
        assert me(client) == 200
    assert me(other) == 200


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/logout", {}),
        ("/sessions/revoke-others", {"password": PASSWORD}),
        ("/password", {"current": PASSWORD, "new": "a brand new password"}),
    ],
)
def test_cross_site_posts_refused_and_nothing_changes(
    login: Login, headers: dict[str, str], path: str, data: dict[str, str]
) -> None:
    client = login("alice")
    other = login("alice")
    token = csrf_token(client, "/")
    response = client.post(path, data={**data, "csrf_token": token}, headers=headers)
    assert response.status_code == 403
    assert me(client) == 200
    assert me(other) == 200
    # The same request from the app's own pages goes through.
    same = client.post(
        path,
        data={**data, "csrf_token": token},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    )
    assert same.status_code == 303


# -- sessions ------------------------------------------------------------------


def test_sessions_page_lists_devices(login: Login) -> None:
    laptop = login("alice", user_agent=CHROME)
    login("alice", user_agent=FIREFOX)
    login("bob", user_agent=FIREFOX)
    response = laptop.get("/sessions")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert html.count("<tr data-session-id=") == 2
    assert "Chrome on Linux <strong>(this device)</strong>" in html
    assert "Firefox on Windows" in html
    assert "127.0.0.1" in html
    assert html.count('action="/sessions/') == 3  # two revoke forms, one "others"
    assert 'action="/sessions/revoke-others"' in html
    assert "<time datetime=" in html


def test_api_sessions_json(login: Login, clock: FrozenClock) -> None:
    login("alice", user_agent=FIREFOX)
    clock.advance(5)
    client = login("alice", user_agent=CHROME)
    response = client.get("/api/sessions")
    assert response.status_code == 200
    rows = response.json
    assert isinstance(rows, list)
    assert len(rows) == 2
    assert set(rows[0]) == {
        "id",
        "created_at",
        "last_seen_at",
        "ip",
        "user_agent",
        "current",
        "device",
    }
    newest, older = rows
    assert newest["current"] is True
    assert older["current"] is False
    assert newest["user_agent"] == CHROME
    assert newest["device"] == "Chrome on Linux"
    assert newest["ip"] == "127.0.0.1"
    created = dt.datetime.fromisoformat(newest["created_at"])
    assert created.timestamp() == clock()
    assert dt.datetime.fromisoformat(older["last_seen_at"]).tzinfo is not None
    # The public id is not the cookie.
    assert newest["id"] not in (session_cookie(client) or "")


def test_revoke_one_session(login: Login) -> None:
    laptop = login("alice")
    phone = login("alice")
    phone_id = next(i for i, current in session_ids(phone).items() if current)
    response = laptop.post(
        f"/sessions/{phone_id}/revoke", data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.status_code == 303
    assert response.location == "/sessions"
    assert me(phone) == 401
    assert me(laptop) == 200
    assert phone_id not in session_ids(laptop)


@pytest.mark.parametrize("which", ["another user's", "unknown"])
def test_revoke_someone_elses_or_unknown_session_404(login: Login, which: str) -> None:
    alice = login("alice")
    bob = login("bob")
    bob_id = next(iter(session_ids(bob)))
    target = bob_id if which == "another user's" else "no-such-session"
    response = alice.post(
        f"/sessions/{target}/revoke", data={"csrf_token": csrf_token(alice, "/")}
    )
    assert response.status_code == 404
    assert me(bob) == 200
    assert me(alice) == 200
    assert bob_id in session_ids(bob)


def test_revoke_current_session_signs_out_here(login: Login) -> None:
    client = login("alice")
    current = next(iter(session_ids(client)))
    response = client.post(
        f"/sessions/{current}/revoke", data={"csrf_token": csrf_token(client, "/")}
    )
    assert response.status_code == 303
    assert response.location == "/login"
    assert me(client) == 401


def test_revoke_others_when_fresh(login: Login) -> None:
    laptop = login("alice")
    phone = login("alice")
    tablet = login("alice")
    bob = login("bob")
    response = laptop.post(
        "/sessions/revoke-others", data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.status_code == 303
    assert [me(c) for c in (laptop, phone, tablet, bob)] == [200, 401, 401, 200]


def test_stale_login_needs_the_password(login: Login, clock: FrozenClock) -> None:
    laptop = login("alice")
    phone = login("alice")
    phone_id = next(i for i, current in session_ids(phone).items() if current)
    clock.advance(11 * 60)  # past SIGNOFF_FRESH_FOR, within the idle timeout
    page = laptop.get("/sessions").get_data(as_text=True)
    assert 'name="password" type="password"' in page
    for password in (None, "", "wrong password"):
        data = {"csrf_token": csrf_token(laptop, "/")}
        if password is not None:
            data["password"] = password
        response = laptop.post("/sessions/revoke-others", data=data)
        assert response.status_code == 403
        html = response.get_data(as_text=True)
        assert 'action="/sessions/revoke-others"' in html
        assert 'name="password"' in html
        response = laptop.post(f"/sessions/{phone_id}/revoke", data=data)
        assert response.status_code == 403
        assert me(phone) == 200
    response = laptop.post(
        "/sessions/revoke-others",
        data={"csrf_token": csrf_token(laptop, "/"), "password": PASSWORD},
    )
    assert response.status_code == 303
    assert me(phone) == 401
    assert me(laptop) == 200
    # The password made the login fresh again: no password for the next one.
    tablet = login("alice")
    clock.advance(60)
    response = laptop.post(
        "/sessions/revoke-others", data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.status_code == 303
    assert me(tablet) == 401


# -- timeouts ------------------------------------------------------------------
# Whether the store still holds a record past its deadline (SQL before a
# purge, Redis before its own clock gets there) or has forgotten it, what the
# browser sees is the same.

IDLE = 30 * 60
ABSOLUTE = 12 * 3600
REMEMBER = 30 * 86400


def dropped(response: t.Any) -> bool:
    """Whether ``response`` deletes the session cookie."""
    return any(
        h.startswith(f"{COOKIE}=;") and "Max-Age=0" in h
        for h in response.headers.getlist("Set-Cookie")
    )


@pytest.mark.parametrize("forgotten", [False, True], ids=["kept", "forgotten"])
def test_idle_session_ends(
    app: Flask, login: Login, clock: FrozenClock, forgotten: bool
) -> None:
    laptop = login("alice")
    phone = login("alice")
    clock.advance(IDLE - 1)
    assert me(laptop) == 200  # activity within the idle timeout
    clock.advance(2)
    if forgotten:
        forget_expired(app)
    response = phone.get("/api/me")
    assert response.status_code == 401
    assert dropped(response)
    assert phone.get("/").status_code == 302
    assert me(laptop) == 200
    assert len(session_ids(laptop)) == 1


@pytest.mark.parametrize("forgotten", [False, True], ids=["kept", "forgotten"])
def test_absolute_timeout_ends_an_active_session(
    app: Flask, login: Login, clock: FrozenClock, forgotten: bool
) -> None:
    client = login("alice")
    step = 20 * 60  # well within the idle timeout
    for _ in range(ABSOLUTE // step - 1):
        clock.advance(step)
        assert me(client) == 200
    clock.advance(step)  # 12 hours after sign-in
    if forgotten:
        forget_expired(app)
    response = client.get("/api/me")
    assert response.status_code == 401
    assert dropped(response)


@pytest.mark.parametrize("forgotten", [False, True], ids=["kept", "forgotten"])
def test_remembered_session_comes_back_after_idle_under_a_new_id(
    app: Flask, login: Login, clock: FrozenClock, forgotten: bool
) -> None:
    laptop = login("alice", remember=True)
    phone = login("alice")
    before = session_cookie(laptop)
    assert before is not None
    clock.advance(IDLE + 60)
    if forgotten:
        forget_expired(app)  # the phone's session; the laptop's lives on
    response = laptop.get("/api/me")
    assert response.status_code == 200
    after = session_cookie(laptop)
    assert after is not None
    assert after != before
    assert me(replay(app, before)) == 401
    assert me(phone) == 401
    # Back, but not fresh: ending other sessions asks for the password.
    response = laptop.post(
        "/sessions/revoke-others", data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.status_code == 403
    assert list(session_ids(laptop).values()) == [True]
    clock.advance(REMEMBER)
    if forgotten:
        forget_expired(app)
    response = laptop.get("/api/me")
    assert response.status_code == 401
    assert dropped(response)


@pytest.mark.parametrize("forgotten", [False, True], ids=["kept", "forgotten"])
def test_expired_sessions_leave_the_list_and_cannot_be_revoked(
    app: Flask, login: Login, clock: FrozenClock, forgotten: bool
) -> None:
    phone = login("alice")
    phone_id = next(iter(session_ids(phone)))
    clock.advance(IDLE + 1)
    if forgotten:
        forget_expired(app)
    laptop = login("alice")
    assert list(session_ids(laptop).values()) == [True]
    response = laptop.post(
        f"/sessions/{phone_id}/revoke", data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.status_code == 404
    assert me(laptop) == 200


# -- password --------------------------------------------------------------------


def test_password_change_ends_every_other_session(app: Flask, login: Login) -> None:
    laptop = login("alice")
    phone = login("alice")
    bob = login("bob")
    old_cookie = session_cookie(laptop)
    assert old_cookie is not None

    for current in (None, "", "wrong password"):
        data = {"csrf_token": csrf_token(laptop, "/"), "new": "a brand new password"}
        if current is not None:
            data["current"] = current
        response = laptop.post("/password", data=data)
        assert response.status_code == 403
        assert 'action="/password"' in response.get_data(as_text=True)
        assert me(phone) == 200

    response = laptop.post(
        "/password",
        data={
            "csrf_token": csrf_token(laptop, "/"),
            "current": PASSWORD,
            "new": "a brand new password",
        },
    )
    assert response.status_code == 303
    assert me(laptop) == 200
    assert session_cookie(laptop) != old_cookie
    assert me(replay(app, old_cookie)) == 401
    assert me(phone) == 401
    assert me(bob) == 200

    client = app.test_client()
    old = post_form(client, "/login", username="alice", password=PASSWORD)
    assert old.status_code == 401
    new = post_form(client, "/login", username="alice", password="a brand new password")
    assert new.status_code == 303


def test_password_change_refuses_a_short_new_password(login: Login) -> None:
    client = login("alice")
    response = client.post(
        "/password",
        data={"csrf_token": csrf_token(client, "/"), "current": PASSWORD, "new": "x"},
    )
    assert response.status_code == 400


# -- API -------------------------------------------------------------------------


def test_api_me(app: Flask, login: Login) -> None:
    client = login("alice")
    response = client.get("/api/me")
    assert response.status_code == 200
    assert response.json == {"user": "alice"}
    assert response.headers["Cache-Control"] == "no-store"

    anonymous = app.test_client().get("/api/me")
    assert anonymous.status_code == 401
    assert anonymous.mimetype == "application/json"
    assert "error" in anonymous.json


def test_api_me_with_a_bearer_header_never_falls_back_to_the_cookie(
    login: Login,
) -> None:
    client = login("alice")
    response = client.get("/api/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer error="invalid_token"'
    )


def test_api_sessions_needs_a_credential(app: Flask) -> None:
    response = app.test_client().get("/api/sessions")
    assert response.status_code == 401
    assert response.mimetype == "application/json"


# -- configuration -----------------------------------------------------------------


def test_config_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FrozenClock()
    store = tmp_path / "elsewhere.sqlite3"
    monkeypatch.setenv("FLASK_SIGNOFF_IDLE_TIMEOUT", "2")
    monkeypatch.setenv("FLASK_SIGNOFF_STORE_URL", f"sqlite:///{store}")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SIGNOFF_TEST_CLOCK": clock,
            "DEMO_ARGON2_PARAMETERS": CHEAP_ARGON2,
        }
    )
    assert app.config["SIGNOFF_IDLE_TIMEOUT"] == 2
    client = app.test_client()
    post_form(client, "/register", username="alice", password=PASSWORD)
    post_form(client, "/login", username="alice", password=PASSWORD)
    assert me(client) == 200
    assert store.exists()
    assert not (tmp_path / "instance" / "signoff.sqlite3").exists()
    clock.advance(3)
    assert me(client) == 401


def instance_only(path: Path) -> dict[str, t.Any]:
    """The demo's test config naming only its instance folder (cheap hashes)."""
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(path),
        "DEMO_ARGON2_PARAMETERS": CHEAP_ARGON2,
    }


def test_secret_key_generated_once_into_the_instance_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    first = create_app(instance_only(tmp_path))
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = create_app(instance_only(tmp_path))
    assert first.secret_key == second.secret_key
    assert len(str(first.secret_key)) == 64
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    assert create_app(instance_only(tmp_path)).secret_key == "from-the-environment"


def test_plain_http_cookies_under_the_flask_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    app = create_app(instance_only(tmp_path))
    assert app.config["SIGNOFF_COOKIE_SECURE"] is False
    client = app.test_client()
    response = client.get("/login")
    header = set_cookie_header(response, "signoff_csrf")
    assert "Secure" not in header
    assert "HttpOnly" in header
    # An explicit setting wins.
    monkeypatch.setenv("FLASK_SIGNOFF_COOKIE_SECURE", "true")
    app = create_app(instance_only(tmp_path))
    assert app.config["SIGNOFF_COOKIE_SECURE"] is True


def test_secure_cookies_by_default(app: Flask) -> None:
    assert app.config["SIGNOFF_COOKIE_SECURE"] is True
    header = set_cookie_header(app.test_client().get("/login"), "__Host-signoff_csrf")
    assert "Secure" in header


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_instance_files_are_private_whatever_the_umask(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mask: int
) -> None:
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    old = os.umask(mask)
    try:
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": str(tmp_path),
                "DEMO_ARGON2_PARAMETERS": CHEAP_ARGON2,
                # Where the store is outside testing mode, which would
                # otherwise put it in a temporary folder.
                "SIGNOFF_STORE_URL": f"sqlite:///{tmp_path / 'signoff.sqlite3'}",
            }
        )
        client = app.test_client()
        post_form(client, "/register", username="alice", password=PASSWORD)
        post_form(client, "/login", username="alice", password=PASSWORD)
        assert me(client) == 200
    finally:
        os.umask(old)
    names = sorted(p.name for p in tmp_path.iterdir())
    for expected in (
        "secret_key",
        "demo-users.sqlite3",
        "signoff.sqlite3",
        "signoff.sqlite3-wal",
        "signoff.sqlite3-shm",
    ):
        assert expected in names
    for name in names:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
