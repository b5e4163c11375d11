"""CSRF tokens and the cross-site check (flask_signoff.csrf)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from flask import Blueprint, Flask, render_template_string
from flask.testing import FlaskClient

from flask_signoff import Signoff, csrf_exempt, csrf_protect, current_user, login_user
from flask_signoff.testing import sign_in_client
from tests.support import SECRET_KEY
from tests.support.cookies import session_cookie
from tests.support.csrf_apps import (
    User,
    count_sessions,
    make_app,
    token_of,
)

NONCE_COOKIE = "__Host-signoff_csrf"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_app(tmp_path)[0]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def signed_in(app: Flask, user_id: str = "1") -> FlaskClient:
    client = app.test_client()
    sign_in_client(client, User(user_id))
    return client


# -- anonymous visitors ------------------------------------------------------


def test_anonymous_form_writes_nothing_to_the_store(
    client: FlaskClient, tmp_path: Path
) -> None:
    for _ in range(20):
        response = client.get("/form")
        assert response.status_code == 200
    assert count_sessions(tmp_path) == 0
    assert session_cookie(client) is None


def test_anonymous_token_rides_on_a_nonce_cookie(client: FlaskClient) -> None:
    response = client.get("/form")
    token = response.get_data(as_text=True)
    assert token.startswith("a.")
    header = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(NONCE_COOKIE)
    )
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" in header
    assert "Path=/" in header
    assert "Domain" not in header
    assert response.headers["Cache-Control"] == "no-store"
    # The same browser gets the same token while nothing changes.
    assert token_of(client) == token


def test_anonymous_token_accepted_with_its_cookie(client: FlaskClient) -> None:
    token = token_of(client)
    assert client.post("/act", data={"csrf_token": token}).status_code == 200


def test_anonymous_token_refused_without_its_cookie(client: FlaskClient) -> None:
    token = token_of(client)
    client.delete_cookie(NONCE_COOKIE)
    assert client.post("/act", data={"csrf_token": token}).status_code == 403


def test_anonymous_token_of_another_browser_refused(app: Flask) -> None:
    attacker, victim = app.test_client(), app.test_client()
    attacker_token = token_of(attacker)
    token_of(victim)  # the victim has a nonce cookie of their own
    response = victim.post("/act", data={"csrf_token": attacker_token})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "token",
    [None, "", "a.", "s.", "a.nope", "x" * 300, "a.\u00e9t\u00e9", "garbage"],
)
def test_missing_or_malformed_token_refused(
    client: FlaskClient, token: str | None
) -> None:
    token_of(client)
    data = {} if token is None else {"csrf_token": token}
    response = client.post("/act", data=data)
    assert response.status_code == 403
    assert "Request refused" in response.get_data(as_text=True)


def test_token_in_header(client: FlaskClient) -> None:
    token = token_of(client)
    response = client.post("/act", headers={"X-CSRF-Token": token})
    assert response.status_code == 200


def test_json_clients_get_a_json_refusal(client: FlaskClient) -> None:
    response = client.post("/act", json={"x": 1})
    assert response.status_code == 403
    assert response.json == {
        "error": "csrf",
        "message": "The CSRF token is missing.",
    }


# -- signed-in sessions ----------------------------------------------------------


def test_signed_in_token_is_bound_to_the_session(app: Flask) -> None:
    client = signed_in(app)
    token = token_of(client)
    assert token.startswith("s.")
    assert client.post("/act", data={"csrf_token": token}).status_code == 200


def test_token_of_another_session_refused(app: Flask) -> None:
    alice, mallory = signed_in(app, "alice"), signed_in(app, "mallory")
    mallory_token = token_of(mallory)
    alice_token = token_of(alice)
    assert mallory_token != alice_token
    response = alice.post("/act", data={"csrf_token": mallory_token})
    assert response.status_code == 403
    # Two sessions of the same user have different tokens too.
    other = signed_in(app, "alice")
    assert other.post("/act", data={"csrf_token": alice_token}).status_code == 403


def test_anonymous_token_refused_once_signed_in(client: FlaskClient) -> None:
    anonymous_token = token_of(client)
    response = client.post("/login/1", data={"csrf_token": anonymous_token})
    assert response.status_code == 200
    response = client.post("/act", data={"csrf_token": anonymous_token})
    assert response.status_code == 403


def test_token_changes_on_login_logout_and_rotation(app: Flask) -> None:
    client = app.test_client()
    # A session with data before sign-in, as a planted session would be.
    before = token_of(client)
    assert client.post("/data", data={"csrf_token": before}).status_code == 200
    planted = token_of(client)
    client.post("/login/1", data={"csrf_token": planted})
    signed_in_token = token_of(client)
    assert signed_in_token not in (before, planted)
    assert client.post("/act", data={"csrf_token": planted}).status_code == 403

    client.post("/rotate", data={"csrf_token": signed_in_token})
    rotated = token_of(client)
    assert rotated != signed_in_token
    assert client.post("/act", data={"csrf_token": signed_in_token}).status_code == 403
    assert client.post("/act", data={"csrf_token": rotated}).status_code == 200


def test_nonce_cookie_dropped_on_login(client: FlaskClient) -> None:
    token = token_of(client)
    response = client.post("/login/1", data={"csrf_token": token})
    headers = response.headers.getlist("Set-Cookie")
    assert any(h.startswith(f"{NONCE_COOKIE}=;") and "Max-Age=0" in h for h in headers)
    assert client.get_cookie(NONCE_COOKIE) is None


def test_old_secret_key_still_accepted(tmp_path: Path) -> None:
    old_app = make_app(tmp_path / "a", SECRET_KEY="the-old-key-0123456789")[0]
    old_client = old_app.test_client()
    token = token_of(old_client)
    nonce = old_client.get_cookie(NONCE_COOKIE)
    assert nonce is not None

    new_app = make_app(
        tmp_path / "b",
        SECRET_KEY=SECRET_KEY,
        SECRET_KEY_FALLBACKS=["the-old-key-0123456789"],
    )[0]
    client = new_app.test_client()
    client.set_cookie(NONCE_COOKIE, nonce.value, secure=True)
    assert client.post("/act", data={"csrf_token": token}).status_code == 200
    unrelated = make_app(tmp_path / "c", SECRET_KEY=SECRET_KEY)[0].test_client()
    unrelated.set_cookie(NONCE_COOKIE, nonce.value, secure=True)
    assert unrelated.post("/act", data={"csrf_token": token}).status_code == 403


# -- cross-site requests -------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "http://localhost:8080"},
        {"Origin": "https://localhost"},
        {"Origin": ""},
        {"Origin": "localhost"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
    ],
)
def test_cross_site_requests_refused_even_with_a_valid_token(
    app: Flask, headers: dict[str, str]
) -> None:
    client = signed_in(app)
    token = token_of(client)
    response = client.post("/act", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 403
    assert client.get("/whoami").get_data(as_text=True) == "1"
    json_response = client.post(
        "/act",
        data={"csrf_token": token},
        headers={**headers, "Accept": "application/json"},
    )
    assert json_response.json is not None
    assert json_response.json["error"] == "cross_site_request"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://localhost"},
        {"Origin": "http://LOCALHOST:80"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    ],
)
def test_same_origin_requests_pass(app: Flask, headers: dict[str, str]) -> None:
    client = signed_in(app)
    token = token_of(client)
    response = client.post("/act", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 200


def test_trusted_origins(tmp_path: Path) -> None:
    app = make_app(tmp_path, SIGNOFF_TRUSTED_ORIGINS=["https://app.example"])[0]
    client = signed_in(app)
    token = token_of(client)
    ok = client.post(
        "/act", data={"csrf_token": token}, headers={"Origin": "https://app.example"}
    )
    assert ok.status_code == 200
    refused = client.post(
        "/act", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    # A browser posting from the trusted front end says so in Sec-Fetch-Site.
    from_front_end = client.post(
        "/act",
        data={"csrf_token": token},
        headers={"Origin": "https://app.example", "Sec-Fetch-Site": "same-site"},
    )
    assert from_front_end.status_code == 200
    # The app's own origin gets no such pass: a cross-site fetch is refused.
    own_but_cross = client.post(
        "/act",
        data={"csrf_token": token},
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
    )
    assert own_but_cross.status_code == 403


# -- what is checked -----------------------------------------------------------


def test_bearer_requests_need_no_token(client: FlaskClient) -> None:
    response = client.post(
        "/act",
        headers={"Authorization": "Bearer x", "Origin": "https://front.example"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        'Digest username="user", realm="app", nonce="n", uri="/act"',
        "Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXag",
        "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAA",
        "Bearer",
    ],
)
def test_browser_sent_authorization_does_not_skip_the_checks(
    app: Flask, authorization: str
) -> None:
    # Browsers attach HTTP authentication credentials by themselves, to a
    # cross-site post as well: such a header proves nothing about the page.
    client = signed_in(app)
    response = client.post(
        "/act",
        headers={"Authorization": authorization, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert (
        client.post("/act", headers={"Authorization": authorization}).status_code == 403
    )


def test_cookie_requests_always_need_one(app: Flask) -> None:
    client = signed_in(app)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.open("/act", method=method).status_code in (403, 405)
    assert client.post("/act").status_code == 403
    assert client.get("/form").status_code == 200


def test_app_wide_check_off_by_default_then_decorator(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, SIGNOFF_CSRF_PROTECT=False)

    @app.post("/guarded")
    @csrf_protect
    def guarded() -> str:
        return "ok"

    client = app.test_client()
    assert client.post("/act").status_code == 200
    assert client.post("/guarded").status_code == 403
    token = token_of(client)
    assert client.post("/guarded", data={"csrf_token": token}).status_code == 200
    assert client.get("/guarded").status_code == 405


def test_exempt_view_and_blueprint(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path)

    @app.post("/hook")
    @csrf_exempt
    def hook() -> str:
        return "hooked"

    bp = csrf_exempt(Blueprint("api", __name__, url_prefix="/api"))

    @bp.post("/thing")
    def thing() -> str:
        return "thing"

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.post("/hook").status_code == 200
    assert client.post("/api/thing").status_code == 200
    assert client.post("/act").status_code == 403


def test_template_helpers(app: Flask) -> None:
    with app.test_request_context():
        html = render_template_string("{{ signoff_csrf_field() }}")
        token = render_template_string("{{ signoff_csrf_token() }}")
    assert html == f'<input type="hidden" name="csrf_token" value="{token}">'


# -- Flask-WTF -----------------------------------------------------------------

has_flask_wtf = importlib.util.find_spec("flask_wtf") is not None


def flask_wtf_app(tmp_path: Path) -> tuple[Flask, object, Signoff]:
    """An app with Flask-WTF's CSRFProtect set up before Flask-Signoff.

    Returns the app, Flask-WTF's ``csrf_token`` global, and the extension.
    Routes: ``GET /form`` (the token), ``POST /login``, ``POST /act``.
    """
    from flask_wtf.csrf import CSRFProtect

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, SIGNOFF_CSRF_PROTECT=True)
    CSRFProtect(app)
    wtf_global = app.jinja_env.globals["csrf_token"]
    signoff = Signoff(app)
    signoff.user_loader(User)

    @app.get("/form")
    def form() -> str:
        return render_template_string("{{ csrf_token() }}")

    @app.post("/login")
    def login() -> str:
        login_user(User("1"))
        return "in"

    @app.post("/act")
    def act() -> str:
        return "done"

    return app, wtf_global, signoff


@pytest.mark.skipif(not has_flask_wtf, reason="Flask-WTF is not installed")
def test_flask_wtf_coexists(tmp_path: Path) -> None:
    app, wtf_global, _ = flask_wtf_app(tmp_path)
    # Flask-WTF's global is left alone; ours has its own name.
    assert app.jinja_env.globals["csrf_token"] is wtf_global
    assert "signoff_csrf_token" in app.jinja_env.globals

    client = app.test_client()
    token = token_of(client)
    # Both checks accept Flask-WTF's token.
    assert client.post("/login", data={"csrf_token": token}).status_code == 200
    # Its per-session value was dropped with the old id: the token is new.
    signed_in_token = token_of(client)
    assert signed_in_token != token
    assert client.post("/act", data={"csrf_token": token}).status_code in (400, 403)
    assert client.post("/act", data={"csrf_token": signed_in_token}).status_code == 200
    cross = client.post(
        "/act",
        data={"csrf_token": signed_in_token},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403


@pytest.mark.skipif(not has_flask_wtf, reason="Flask-WTF is not installed")
def test_revoking_the_current_session_drops_flask_wtf_token(tmp_path: Path) -> None:
    app, _, signoff = flask_wtf_app(tmp_path)

    @app.post("/revoke-here")
    def revoke_here() -> str:
        current = signoff.current_session()
        assert current is not None
        signoff.revoke_session(current_user, current.public_id)
        return "signed out here"

    client = app.test_client()
    assert (
        client.post("/login", data={"csrf_token": token_of(client)}).status_code == 200
    )
    signed_in_token = token_of(client)
    response = client.post("/revoke-here", data={"csrf_token": signed_in_token})
    assert response.status_code == 200
    # Signed out, as by logout_user: the signed-in page's token is dead.
    response = client.post("/act", data={"csrf_token": signed_in_token})
    assert response.status_code in (400, 403)
