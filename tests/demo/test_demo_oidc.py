"""Sign-in through an OpenID Connect provider, and single sign-out with it.

Without ``FLASK_DEMO_OIDC_*`` the demo is exactly as before: no route, no
link. With them, against a real provider (panva's ``oidc-provider``, started
by the ``oidc_demo`` fixture) and the demo under ``flask run``: sign-in
creates the local user once, linked by the provider's ``(iss, sub)``; a
back-channel logout from the provider ends the demo's session, copied
cookies included; the demo's sign-out ends the provider's session.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from flask import Flask

from tests.support.demo import PASSWORD, close_demo
from tests.support.forms import csrf_field, csrf_token
from tests.support.oidc_demo import ACCOUNTS, Agent, OIDCDemo, api_me
from tests.support.servers import free_port

ISSUER = "https://idp.example"


# -- Without the settings -----------------------------------------------------


def test_routes_do_not_exist_without_the_settings(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404
    response = client.post(
        "/backchannel-logout", data={"logout_token": "x.y.z", "csrf_token": token}
    )
    assert response.status_code == 404
    page = client.get("/login").get_data(as_text=True)
    assert "identity provider" not in page
    assert "/login/oidc" not in page


def test_partial_settings_add_nothing(app: Flask) -> None:
    from examples.demo import create_app

    partial = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": app.instance_path,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "DEMO_OIDC_ISSUER": ISSUER,
            "DEMO_OIDC_CLIENT_ID": "demo",
        }
    )
    assert partial.test_client().get("/login/oidc").status_code == 404
    close_demo(partial)


def test_an_unreachable_provider_is_a_503(app: Flask) -> None:
    from examples.demo import create_app

    # Nothing listens there: the discovery document cannot be fetched.
    issuer = f"http://127.0.0.1:{free_port()}"
    configured = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": app.instance_path,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "DEMO_OIDC_ISSUER": issuer,
            "DEMO_OIDC_CLIENT_ID": "demo",
            "DEMO_OIDC_CLIENT_SECRET": "secret",
        }
    )
    client = configured.test_client()
    response = client.get("/login")
    assert 'href="/login/oidc"' in response.get_data(as_text=True)
    # Sign-out posts a form that ends at the provider: CSP must allow it.
    csp = response.headers["Content-Security-Policy"]
    assert f"form-action 'self' {issuer};" in csp
    response = client.get("/login/oidc")
    assert response.status_code == 503
    assert "cannot be reached" in response.get_data(as_text=True)
    close_demo(configured)


# -- Users made by a provider's sign-in -----------------------------------------


def test_a_provider_user_is_found_by_issuer_and_subject(app: Flask) -> None:
    users = app.extensions["demo_users"]
    first = users.oidc_user(ISSUER, "sub-1", ["ada", "sub-1"])
    assert first is not None
    assert first.username == "ada"
    # Same (iss, sub): the same user, whatever name the provider sends now.
    again = users.oidc_user(ISSUER, "sub-1", ["ada-renamed", "sub-1"])
    assert again is not None
    assert again.id == first.id
    assert again.username == "ada"
    # Another issuer's "sub-1" is someone else.
    other = users.oidc_user("https://other.example", "sub-1", [None, "sub-1"])
    assert other is not None
    assert other.id != first.id
    assert other.username == "sub-1"


def test_a_provider_name_never_takes_over_a_local_account(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("grace")
    users = app.extensions["demo_users"]
    user = users.oidc_user(ISSUER, "sub-grace", ["grace", "sub-grace"])
    assert user is not None
    assert user.username == "sub-grace"
    local = users.authenticate("grace", PASSWORD)
    assert local is not None
    assert local.id != user.id
    # Every name taken: no user, rather than someone else's.
    register("sub-taken")
    assert users.oidc_user(ISSUER, "sub-taken", ["grace", "sub-taken"]) is None


def test_a_provider_user_has_no_password(app: Flask) -> None:
    users = app.extensions["demo_users"]
    user = users.oidc_user(ISSUER, "sub-hal", ["hal", "sub-hal"])
    assert user is not None
    for guess in ("", user.password_hash, "!no-password:", PASSWORD):
        assert users.authenticate("hal", guess) is None
    client = app.test_client()
    data = {"username": "hal", "password": user.password_hash}
    response = client.post("/login", data={**data, "csrf_token": csrf_token(client)})
    assert response.status_code == 401


# -- Against a real provider ------------------------------------------------------


def test_sign_in_creates_the_user_once(oidc_demo: OIDCDemo) -> None:
    agent = Agent()
    page = agent.sign_in(oidc_demo, "ada")
    assert "Signed in as <strong>ada</strong>" in page
    # Signed in again later (a new browser): the same user, not "ada" twice.
    page = Agent().sign_in(oidc_demo, "ada")
    assert "Signed in as <strong>ada</strong>" in page


def test_sign_in_goes_back_to_a_local_next(oidc_demo: OIDCDemo) -> None:
    Agent().sign_in(oidc_demo, "gus", query="?next=/sessions", lands="/sessions")
    for target in ("https://evil.example/", "//evil.example/"):
        Agent().sign_in(oidc_demo, "hana", query=f"?next={target}", lands="/")


def test_sign_in_without_a_free_name_uses_sub(oidc_demo: OIDCDemo) -> None:
    agent = Agent()
    # A local password account holds the provider user's preferred name.
    _, _, page = agent.open(f"{oidc_demo.base}/register")
    token = csrf_field(page)
    assert token is not None
    form = {"username": "collide", "password": PASSWORD, "csrf_token": token}
    _, url, _ = agent.open(f"{oidc_demo.base}/register", form)
    assert url == f"{oidc_demo.base}/login"
    page = Agent().sign_in(oidc_demo, "collide")
    assert f"Signed in as <strong>{ACCOUNTS['collide']['sub']}</strong>" in page
    page = Agent().sign_in(oidc_demo, "nameless")
    assert f"Signed in as <strong>{ACCOUNTS['nameless']['sub']}</strong>" in page


def test_a_forged_callback_signs_nobody_in(oidc_demo: OIDCDemo) -> None:
    agent = Agent()
    # A code and state that this browser's session never asked for.
    url = f"{oidc_demo.base}/login/oidc/callback?code=forged&state=forged"
    status, _, page = agent.open(url)
    assert status == 400
    assert "Sign-in with the identity provider failed" in page
    status, _, _ = agent.open(f"{oidc_demo.base}/login/oidc/callback")
    assert status == 400
    with pytest.raises(KeyError):
        agent.cookie("session")


def test_provider_sign_out_ends_the_demo_session(oidc_demo: OIDCDemo) -> None:
    """The provider's back-channel call ends the session, and its copies.

    Prints the time from the provider's sign-out to the demo refusing the
    session (median of five).
    """
    delays = []
    for _ in range(5):
        agent = Agent()
        agent.sign_in(oidc_demo, "brian")
        copied = agent.cookie("session")
        assert api_me(oidc_demo, copied) == 200
        start = time.perf_counter()
        agent.end_provider_session(oidc_demo)
        while api_me(oidc_demo, copied) != 401:
            assert time.perf_counter() - start < 10, "the session still works"
        delays.append(time.perf_counter() - start)
        # The browser itself is signed out too.
        status, url, _ = agent.open(f"{oidc_demo.base}/")
        assert (status, url.split("?")[0]) == (200, f"{oidc_demo.base}/login")
    print(
        "provider sign-out -> demo session refused: median "
        f"{statistics.median(delays) * 1000:.1f} ms over {len(delays)} "
        f"(min {min(delays) * 1000:.1f}, max {max(delays) * 1000:.1f})"
    )
    assert "back-channel logout" not in oidc_demo.provider.read_log()


def test_demo_sign_out_ends_the_provider_session(oidc_demo: OIDCDemo) -> None:
    agent = Agent()
    page = agent.sign_in(oidc_demo, "carla")
    copied = agent.cookie("session")
    token = csrf_field(page)
    assert token is not None
    # To the provider's end-session endpoint, which asks for confirmation.
    status, url, page = agent.open(f"{oidc_demo.base}/logout", {"csrf_token": token})
    assert status == 200
    assert url.startswith(f"{oidc_demo.issuer}/session/end?")
    assert api_me(oidc_demo, copied) == 401
    xsrf = page.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
    form = {"xsrf": xsrf, "logout": "yes"}
    status, url, page = agent.open(f"{oidc_demo.issuer}/session/end/confirm", form)
    # Back at the demo's login page, which knows its state came back.
    assert (status, url.split("?")[0]) == (200, f"{oidc_demo.base}/login")
    assert 'id="signed-out-at-provider"' in page
    # Signing in again asks for the password: the provider's session is gone.
    status, url, page = agent.open(f"{oidc_demo.base}/login/oidc")
    assert url.startswith(f"{oidc_demo.issuer}/interaction/")
    assert 'name="password"' in page


def test_a_password_sign_in_signs_out_here_only(oidc_demo: OIDCDemo) -> None:
    agent = Agent()
    base = oidc_demo.base
    _, _, page = agent.open(f"{base}/register")
    form = {"username": "local-gus", "password": PASSWORD}
    agent.open(f"{base}/register", {**form, "csrf_token": csrf_field(page) or ""})
    _, _, page = agent.open(f"{base}/login")
    status, url, page = agent.open(
        f"{base}/login", {**form, "csrf_token": csrf_field(page) or ""}
    )
    assert (status, url) == (200, f"{base}/"), page
    status, url, _ = agent.open(
        f"{base}/logout", {"csrf_token": csrf_field(page) or ""}
    )
    # Straight back to the login page: this session owes the provider nothing.
    assert (status, url) == (200, f"{base}/login")


def test_a_bad_logout_token_is_refused(oidc_demo: OIDCDemo) -> None:
    agent = Agent()
    agent.sign_in(oidc_demo, "dmitri")
    copied = agent.cookie("session")
    for form in ({}, {"logout_token": "x"}, {"logout_token": "a.b.c"}):
        status, _, body = agent.open(f"{oidc_demo.base}/backchannel-logout", form)
        assert status == 400, (form, status, body)
        assert "invalid_request" in body
    assert api_me(oidc_demo, copied) == 200
