"""The sign-out blueprint, the cross-tab script and the signals."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from flask_signoff import (
    confirm_login,
    is_safe_redirect,
    logout_blueprint,
    session_rotated,
    user_logged_in,
    user_logged_out,
)
from flask_signoff.testing import sign_in_client
from flask_signoff.views import SIGNED_OUT_COOKIE
from tests.support.cookies import session_cookie
from tests.support.csrf_apps import (
    User,
    count_sessions,
    make_app,
    token_of,
)


def build(tmp_path: Path, **config: t.Any) -> Flask:
    app, signoff, _ = make_app(tmp_path, **config)
    signoff.login_view = "sign_in"

    @app.get("/sign-in")
    def sign_in() -> str:
        return render_template_string("sign in {{ signoff_script() }}")

    @app.get("/private")
    def private() -> str:
        return render_template_string("private {{ signoff_script() }}")

    app.register_blueprint(logout_blueprint())
    return app


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return build(tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    sign_in_client(client, User("1"))
    return client


def whoami(client: FlaskClient) -> str:
    return client.get("/whoami").get_data(as_text=True)


def test_get_shows_a_confirm_form_and_changes_nothing(
    client: FlaskClient, tmp_path: Path
) -> None:
    cookie = session_cookie(client)
    before = count_sessions(tmp_path)
    response = client.get("/logout")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<form method="post" action="/logout">' in html
    assert 'name="csrf_token"' in html
    assert not any(
        h.startswith("__Host-session=") for h in response.headers.getlist("Set-Cookie")
    )
    assert whoami(client) == "1"
    assert session_cookie(client) == cookie
    assert count_sessions(tmp_path) == before


def test_post_signs_out_for_good(client: FlaskClient, app: Flask) -> None:
    cookie = session_cookie(client)
    assert cookie is not None
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    assert response.status_code == 303
    assert response.location == "/"
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert response.headers["Cache-Control"] == "no-store"
    deleted = next(
        h
        for h in response.headers.getlist("Set-Cookie")
        if h.startswith("__Host-session=")
    )
    # Deleted with the attributes it was set with, or browsers keep it.
    for attribute in ("Max-Age=0", "Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
        assert attribute in deleted
    assert whoami(client) == "None"
    # A copy of the cookie taken before sign-out is dead.
    thief = app.test_client()
    thief.set_cookie("__Host-session", cookie, secure=True)
    assert thief.get("/whoami").get_data(as_text=True) == "None"


def test_post_marks_the_sign_out_for_other_tabs(client: FlaskClient) -> None:
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    marker = next(
        h
        for h in response.headers.getlist("Set-Cookie")
        if h.startswith(f"__Host-{SIGNED_OUT_COOKIE}=1")
    )
    # The script must read it; it holds no secret.
    assert "HttpOnly" not in marker
    assert "Max-Age=30" in marker


def test_sign_out_marker_is_host_prefixed_when_cookies_are_secure(
    client: FlaskClient,
) -> None:
    """Like the session cookie, the marker cannot be planted by a sibling
    subdomain or over plain http: ``__Host-``, ``Secure``, ``Path=/``, no
    ``Domain``."""
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    markers = [
        h
        for h in response.headers.getlist("Set-Cookie")
        if SIGNED_OUT_COOKIE in h.partition("=")[0]
    ]
    assert len(markers) == 1
    marker = markers[0]
    assert marker.startswith(f"__Host-{SIGNED_OUT_COOKIE}=1;")
    assert "Secure" in marker
    assert "Path=/" in marker
    assert "Domain" not in marker


def test_sign_out_marker_on_plain_http_has_no_prefix(tmp_path: Path) -> None:
    app = build(tmp_path, SIGNOFF_COOKIE_SECURE=False)
    client = app.test_client()
    sign_in_client(client, User("1"))
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    marker = next(
        h
        for h in response.headers.getlist("Set-Cookie")
        if SIGNED_OUT_COOKIE in h.partition("=")[0]
    )
    # Browsers drop a __Host- cookie that is not Secure.
    assert marker.startswith(f"{SIGNED_OUT_COOKIE}=1;")
    assert "Secure" not in marker


def test_non_auth_data_survives_under_a_new_id(client: FlaskClient) -> None:
    assert client.post("/data", data={"csrf_token": token_of(client)}).status_code
    cookie = session_cookie(client)
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    assert response.status_code == 303
    new_cookie = session_cookie(client)
    assert new_cookie is not None
    assert new_cookie != cookie
    assert whoami(client) == "None"


@pytest.mark.parametrize(
    "token", [None, "s.wrong", "a.wrong"], ids=["missing", "wrong", "anonymous"]
)
def test_bad_token_refused_and_still_signed_in(
    client: FlaskClient, token: str | None
) -> None:
    data = {} if token is None else {"csrf_token": token}
    response = client.post("/logout", data=data)
    assert response.status_code == 403
    assert "Clear-Site-Data" not in response.headers
    assert whoami(client) == "1"


def test_token_of_another_session_refused(app: Flask, client: FlaskClient) -> None:
    other = app.test_client()
    sign_in_client(other, User("1"))
    response = client.post("/logout", data={"csrf_token": token_of(other)})
    assert response.status_code == 403
    assert whoami(client) == "1"


def test_cross_site_post_refused(client: FlaskClient) -> None:
    response = client.post(
        "/logout",
        data={"csrf_token": token_of(client)},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert whoami(client) == "1"


def test_safe_next_is_followed(client: FlaskClient) -> None:
    response = client.post(
        "/logout", data={"csrf_token": token_of(client), "next": "/private?x=1"}
    )
    assert response.location == "/private?x=1"


UNSAFE_TARGETS = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "/\tevil",
    " /x",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", UNSAFE_TARGETS)
def test_unsafe_next_falls_back(client: FlaskClient, target: str) -> None:
    response = client.post(
        "/logout", data={"csrf_token": token_of(client), "next": target}
    )
    assert response.status_code == 303
    assert response.location == "/"


@pytest.mark.parametrize("target", UNSAFE_TARGETS)
def test_is_safe_redirect_refuses(target: str) -> None:
    assert not is_safe_redirect(target)


def test_confirm_page_drops_unsafe_next(client: FlaskClient) -> None:
    html = client.get("/logout?next=//evil.example").get_data(as_text=True)
    assert "evil.example" not in html
    html = client.get("/logout?next=/private").get_data(as_text=True)
    assert 'name="next" value="/private"' in html


def test_settings(tmp_path: Path) -> None:
    app = build(
        tmp_path,
        SIGNOFF_CLEAR_SITE_DATA='"cache"',
        SIGNOFF_LOGOUT_REDIRECT="sign_in",
    )
    client = app.test_client()
    sign_in_client(client, User("1"))
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    assert response.headers["Clear-Site-Data"] == '"cache"'
    assert response.location == "/sign-in"

    app = build(tmp_path / "none", SIGNOFF_CLEAR_SITE_DATA=None)
    client = app.test_client()
    sign_in_client(client, User("1"))
    response = client.post("/logout", data={"csrf_token": token_of(client)})
    assert response.status_code == 303
    assert "Clear-Site-Data" not in response.headers


def test_script_is_served_and_tagged(app: Flask, client: FlaskClient) -> None:
    response = client.get("/_signoff/signoff.js")
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    script = response.get_data(as_text=True)
    assert 'var NAME = "flask-signoff"' in script
    assert "BroadcastChannel" in script
    assert '"storage"' in script
    assert f'"{SIGNED_OUT_COOKIE}"' in script
    assert '"__Host-"' in script
    response.close()

    tag = client.get("/private").get_data(as_text=True)
    assert (
        '<script src="/_signoff/signoff.js" data-login-url="/sign-in" '
        'data-signed-in="1" defer></script>'
    ) in tag
    anonymous = app.test_client().get("/sign-in").get_data(as_text=True)
    assert 'data-signed-in="0"' in anonymous


def test_signals_fire(app: Flask, tmp_path: Path) -> None:
    events: list[tuple[str, t.Any]] = []

    def logged_in(sender: Flask, user: t.Any) -> None:
        events.append(("in", user.get_id()))

    def logged_out(sender: Flask, user: t.Any) -> None:
        events.append(("out", user.get_id()))

    def rotated(sender: Flask, user_id: str | None, reason: str) -> None:
        events.append(("rotated", reason))

    @app.post("/confirm")
    def confirm() -> str:
        confirm_login()
        return "confirmed"

    client = app.test_client()
    with (
        user_logged_in.connected_to(logged_in, app),
        user_logged_out.connected_to(logged_out, app),
        session_rotated.connected_to(rotated, app),
    ):
        client.post("/login/7", data={"csrf_token": token_of(client)})
        client.post("/rotate", data={"csrf_token": token_of(client)})
        client.post("/confirm", data={"csrf_token": token_of(client)})
        client.post("/logout", data={"csrf_token": token_of(client)})
    assert events == [
        ("rotated", "login"),
        ("in", "7"),
        ("rotated", "privilege"),
        ("rotated", "confirm"),
        ("out", "7"),
    ]
