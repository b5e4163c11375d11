"""Adopting Flask-Login's sign-ins (``SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL``).

The old cookies are made the way a migrating app's users hold them: by a
real Flask-Login 0.6.3 app with the same ``SECRET_KEY``, signed in through
its test client. Each cookie is then presented to a Flask-Signoff app.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_login
import pytest
from flask import Flask, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient

from flask_signoff import FrozenClock, Signoff
from flask_signoff.core.ids import parse_secret
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.exceptions import ConfigError, StoreUnavailable
from flask_signoff.extension import get_state
from flask_signoff.session_management import password_changed
from flask_signoff.signals import session_rotated, user_logged_in
from tests.support import SECRET_KEY
from tests.support.apps import make_app
from tests.support.backends import Backend, count_sessions
from tests.support.cookies import HOST_SESSION, PLAIN_SESSION, session_cookie
from tests.support.counting import CountingStore

#: Flask's session cookie and Flask-Login's remember cookie, as they were.
OLD_SESSION = "session"
OLD_REMEMBER = "remember_token"
#: Another app's key: what it signs is not ours.
OTHER_KEY = "another application's secret key, not ours at all"


class LateClock(FrozenClock):
    """A frozen clock set on first use to a few seconds ahead of the real
    time, by which the old app signs (Flask refuses a cookie signed in the
    future): after the servers of the ``backend`` fixture have started."""

    def __init__(self) -> None:
        self.started = False
        super().__init__()

    def __call__(self) -> float:
        if not self.started:
            self.started = True
            self.now = float(int(time.time()) + 5)
        return self.now

    def advance(self, seconds: float) -> None:
        self()
        super().advance(seconds)


@pytest.fixture
def clock() -> FrozenClock:
    return LateClock()


# -- the app as it was: Flask-Login -----------------------------------------------


class OldUser(flask_login.UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def flask_login_app(**config: Any) -> Flask:
    """The app before the migration: Flask's cookie session and Flask-Login."""
    app = Flask("before_migration")
    app.config.update({"SECRET_KEY": SECRET_KEY, "TESTING": True, **config})
    manager = flask_login.LoginManager(app)
    manager.user_loader(OldUser)

    @app.post("/login/<name>")
    def login(name: str) -> Any:
        remember = request.args.get("remember") == "1"
        flask_login.login_user(OldUser(name), remember=remember)
        return "signed in"

    @app.post("/cart/<item>")
    def cart(item: str) -> Any:
        session["cart"] = item
        return "added"

    return app


def old_cookies(
    name: str = "alice",
    *,
    remember: bool = False,
    cart: str | None = "book",
    headers: dict[str, str] | None = None,
    **config: Any,
) -> dict[str, str]:
    """Sign ``name`` in on the Flask-Login app; the cookies its browser keeps."""
    client = flask_login_app(**config).test_client()
    if cart is not None:
        client.post(f"/cart/{cart}", headers=headers)
    query = "?remember=1" if remember else ""
    assert client.post(f"/login/{name}{query}", headers=headers).status_code == 200
    cookies = {}
    for cookie_name in (OLD_SESSION, OLD_REMEMBER):
        cookie = client.get_cookie(cookie_name)
        if cookie is not None:
            cookies[cookie_name] = cookie.value
    return cookies


# -- the app after: Flask-Signoff ---------------------------------------------------


def until(clock: FrozenClock, days: float = 30) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock() + days * 86400, dt.timezone.utc)


def signoff_app(
    tmp_path: Path, clock: FrozenClock, backend: Backend | None = None, **config: Any
) -> Flask:
    """The app after the migration, adopting until 30 days from now."""
    config.setdefault("SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL", until(clock))
    config.setdefault("SIGNOFF_COOKIE_SECURE", True)
    app = make_app(
        tmp_path / "signoff.sqlite3",
        clock,
        **(backend.config if backend is not None else {}),
        **config,
    )

    @app.get("/keys")
    def keys() -> Any:
        return jsonify(sorted(session.keys()))

    return app


def browser(app: Flask, cookies: dict[str, str]) -> FlaskClient:
    """A client holding ``cookies`` as the old app set them."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def deletions(response: Any) -> dict[str, str]:
    """The cookies ``response`` deletes, with their ``Set-Cookie`` header."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.partition("=")[0]
        if "Max-Age=0" in header or "Expires=Thu, 01 Jan 1970" in header:
            found[name] = header
    return found


def signed_in(client: FlaskClient) -> str | None:
    r = client.get("/me", headers={"Accept": "application/json"})
    return r.json["user"] if r.status_code == 200 and r.json else None


@pytest.fixture
def new_app(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[..., Flask]]:
    """:func:`signoff_app` for this test; the stores it opens closed after."""
    made: list[Flask] = []

    def make(backend: Backend | None = None, **config: Any) -> Flask:
        app = signoff_app(tmp_path, clock, backend, **config)
        if "store" not in config:
            made.append(app)
        return app

    yield make
    for app in made:
        get_state(app).store.close()


@pytest.fixture
def adopting(new_app: Callable[..., Flask], backend: Backend) -> Flask:
    return new_app(backend)


# -- the setting -------------------------------------------------------------------


def test_the_setting_is_off_by_default(tmp_path: Path, clock: FrozenClock) -> None:
    app = make_app(tmp_path / "s.sqlite3", clock)
    assert get_state(app).settings.adopt_flask_login_until is None
    client = browser(app, old_cookies(remember=True))
    assert signed_in(client) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-30T12:00:00+00:00", 1782820800.0),
        ("2026-06-30T12:00:00Z", 1782820800.0),
        ("2026-06-30T14:00:00+02:00", 1782820800.0),
        (dt.datetime(2026, 6, 30, 12, tzinfo=dt.timezone.utc), 1782820800.0),
        (None, None),
        ("", None),
    ],
)
def test_the_setting_takes_an_aware_time(
    tmp_path: Path, clock: FrozenClock, value: Any, expected: float | None
) -> None:
    app = make_app(tmp_path / "s.sqlite3", clock, SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL=value)
    assert get_state(app).settings.adopt_flask_login_until == expected


def test_the_setting_is_read_from_the_environment(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL", "2026-06-30T12:00:00Z")
    app = Flask(__name__)
    app.config.from_prefixed_env()
    app.config.update(
        SECRET_KEY=SECRET_KEY, SIGNOFF_STORE_URL=f"sqlite:///{tmp_path / 'e.sqlite3'}"
    )
    Signoff(app, clock=clock)
    assert get_state(app).settings.adopt_flask_login_until == 1782820800.0
    get_state(app).store.close()


@pytest.mark.parametrize(
    "value",
    [
        "2026-06-30T12:00:00",  # no offset: local time or UTC?
        dt.datetime(2026, 6, 30, 12),  # naive
        dt.date(2026, 6, 30),
        "next month",
        1782820800,
    ],
)
def test_the_setting_refuses_anything_else(
    tmp_path: Path, clock: FrozenClock, value: Any
) -> None:
    with pytest.raises(ConfigError) as e:
        make_app(tmp_path / "s.sqlite3", clock, SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL=value)
    assert e.value.key == "SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL"
    assert "UTC offset" in str(e.value)


def test_remember_cookie_settings_are_not_called_useless_while_adopting(
    tmp_path: Path,
    clock: FrozenClock,
    new_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {"REMEMBER_COOKIE_NAME": "stay", "SESSION_PROTECTION": "strong"}
    with caplog.at_level(logging.WARNING, "flask_signoff"):
        make_app(tmp_path / "a.sqlite3", clock, **config)
    assert "REMEMBER_COOKIE_NAME" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "flask_signoff"):
        new_app(**config)
    assert "REMEMBER_COOKIE_NAME" not in caplog.text
    assert "SESSION_PROTECTION" not in caplog.text


# -- adopted once ------------------------------------------------------------------


def test_a_flask_login_session_is_adopted_once(adopting: Flask) -> None:
    old = old_cookies()
    assert set(old) == {OLD_SESSION}
    client = browser(adopting, old)
    r = client.get("/public")
    assert r.json == {"user": "alice", "cart": "book"}
    # A new id of ours, and Flask's old cookie deleted in the same response.
    new = session_cookie(client, HOST_SESSION)
    assert new is not None
    assert parse_secret(new) is not None
    assert OLD_SESSION in deletions(r)
    assert client.get_cookie(OLD_SESSION) is None
    assert "Max-Age" not in r.headers["Set-Cookie"]  # a browser session
    assert r.headers["Cache-Control"] == "no-store"
    # Flask-Login's keys stay behind; the cart came along.
    assert client.get("/keys").json == ["cart"]
    assert signed_in(client) == "alice"
    assert client.get("/fresh").status_code != 200  # never fresh
    assert count_sessions(adopting) == 1

    # A copy of the old cookie is refused, creates nothing, and is deleted.
    thief = browser(adopting, old)
    r = thief.get("/public")
    assert r.json == {"user": None, "cart": None}
    assert session_cookie(thief, HOST_SESSION) is None
    assert set(deletions(r)) == {OLD_SESSION}
    assert count_sessions(adopting) == 1

    # Still refused after the adopted session signed out.
    assert client.post("/logout").status_code == 200
    assert signed_in(client) is None
    assert signed_in(browser(adopting, old)) is None
    assert count_sessions(adopting) <= 1  # the cart's anonymous session


def test_a_copy_with_the_signature_spelled_otherwise_is_refused(
    adopting: Flask,
) -> None:
    old = old_cookies()
    assert signed_in(browser(adopting, old)) == "alice"
    # The last base64 character of a 20-byte signature carries two unused
    # bits: four spellings decode to the same signature and all verify.
    value = old[OLD_SESSION]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(value[-1])
    variants = [value[:-1] + alphabet[(last & ~3) | bits] for bits in range(4)]
    serializer = SecureCookieSessionInterface().get_signing_serializer(
        flask_login_app()
    )
    assert serializer is not None
    for variant in variants:
        assert serializer.loads(variant)["_user_id"] == "alice"
        assert signed_in(browser(adopting, {OLD_SESSION: variant})) is None
    assert count_sessions(adopting) == 1


def test_the_remember_cookie_is_adopted_once(adopting: Flask) -> None:
    old = old_cookies(remember=True, cart=None)
    assert set(old) == {OLD_SESSION, OLD_REMEMBER}
    # The browser was closed: Flask's session cookie is gone, the remember
    # cookie is left.
    remembered = {OLD_REMEMBER: old[OLD_REMEMBER]}
    client = browser(adopting, remembered)
    r = client.get("/public")
    assert r.json == {"user": "alice", "cart": None}
    assert OLD_REMEMBER in deletions(r)
    new_cookie = next(
        h for h in r.headers.getlist("Set-Cookie") if h.startswith(HOST_SESSION)
    )
    assert "Max-Age=2592000" in new_cookie  # remembered: SIGNOFF_REMEMBER_DURATION
    assert client.get_cookie(OLD_REMEMBER) is None
    assert signed_in(client) == "alice"

    assert signed_in(browser(adopting, remembered)) is None
    client.post("/logout")
    assert signed_in(browser(adopting, remembered)) is None
    assert count_sessions(adopting) == 0


def test_a_cart_filled_after_a_browser_restart_comes_along(adopting: Flask) -> None:
    legacy = flask_login_app().test_client()
    legacy.post("/login/alice?remember=1")
    legacy.delete_cookie(OLD_SESSION)  # the browser restarted
    legacy.post("/cart/pen")  # a view that never looked at the user
    cookies = {name: legacy.get_cookie(name) for name in (OLD_SESSION, OLD_REMEMBER)}
    client = browser(adopting, {n: c.value for n, c in cookies.items() if c})
    r = client.get("/public")
    assert r.json == {"user": "alice", "cart": "pen"}
    assert set(deletions(r)) == {OLD_SESSION, OLD_REMEMBER}


def test_session_and_remember_cookie_are_one_remembered_session(
    adopting: Flask,
) -> None:
    old = old_cookies(remember=True)
    client = browser(adopting, old)
    r = client.get("/public")
    assert r.json == {"user": "alice", "cart": "book"}
    assert set(deletions(r)) == {OLD_SESSION, OLD_REMEMBER}
    assert "Max-Age=2592000" in r.headers.getlist("Set-Cookie")[0]
    # Each of the two is spent: neither adopts on its own afterwards.
    assert signed_in(browser(adopting, {OLD_SESSION: old[OLD_SESSION]})) is None
    assert signed_in(browser(adopting, {OLD_REMEMBER: old[OLD_REMEMBER]})) is None
    assert count_sessions(adopting) == 1


def test_cookies_deleted_with_the_attributes_they_were_set_with(
    new_app: Callable[..., Flask],
) -> None:
    config = {
        "REMEMBER_COOKIE_NAME": "stay",
        "REMEMBER_COOKIE_PATH": "/app",
        "REMEMBER_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_NAME": "old_session",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": True,
    }
    legacy = flask_login_app(**config).test_client()
    legacy.post("/login/alice?remember=1")
    remember = legacy.get_cookie("stay", path="/app")
    assert remember is not None
    app = new_app(**config)
    client = app.test_client()
    client.set_cookie("stay", remember.value, path="/app")
    r = client.get("/app/public")  # a 404 page adopts too
    assert signed_in(client) == "alice"
    gone = deletions(r)["stay"]
    assert "Path=/app" in gone
    assert "Secure" in gone
    assert "SameSite=Strict" in gone
    assert "HttpOnly" in gone


def test_a_key_in_secret_key_fallbacks_still_verifies(
    new_app: Callable[..., Flask],
) -> None:
    old = old_cookies(SECRET_KEY=OTHER_KEY)
    app = new_app(SECRET_KEY_FALLBACKS=[OTHER_KEY])
    assert signed_in(browser(app, old)) == "alice"
    other = old_cookies("bob", SECRET_KEY=OTHER_KEY, remember=True, cart=None)
    assert signed_in(browser(app, {OLD_REMEMBER: other[OLD_REMEMBER]})) == "bob"


# -- refused ---------------------------------------------------------------------


@pytest.fixture
def counted(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Flask, Any]]:
    from flask_signoff.stores import open_store

    inner = open_store(f"sqlite:///{tmp_path / 'c.sqlite3'}", {})
    store = CountingStore(inner)
    window = until(clock, days=60)
    app = signoff_app(
        tmp_path, clock, store=store, SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL=window
    )
    store.calls.clear()
    yield app, store
    inner.close()


def test_forged_cookies_are_ignored_without_a_store_call(
    counted: tuple[Flask, Any], clock: FrozenClock
) -> None:
    app, store = counted
    good = old_cookies(remember=True)
    other_key = old_cookies(SECRET_KEY=OTHER_KEY, remember=True)
    payload, _, signature = good[OLD_SESSION].rpartition(".")
    tampered = payload.replace(payload[3], "A" if payload[3] != "A" else "B", 1)
    user, _, digest = good[OLD_REMEMBER].rpartition("|")
    forged = [
        {OLD_SESSION: other_key[OLD_SESSION]},
        {OLD_SESSION: f"{tampered}.{signature}"},
        {OLD_SESSION: f"{payload}.{'A' * len(signature)}"},
        {OLD_SESSION: "eyJfdXNlcl9pZCI6ImFsaWNlIn0"},  # {"_user_id": "alice"}
        {OLD_SESSION: "not a cookie at all" * 150},
        {OLD_REMEMBER: other_key[OLD_REMEMBER]},
        {OLD_REMEMBER: f"bob|{digest}"},
        {OLD_REMEMBER: f"{user}|{digest.upper()}"},
        {OLD_REMEMBER: f"{user}|{digest[:-1]}"},
        {OLD_REMEMBER: "alice"},
        {OLD_REMEMBER: "alice|é"},
    ]
    for cookies in forged:
        client = browser(app, cookies)
        r = client.get("/public")
        assert r.status_code == 200
        assert r.json == {"user": None, "cart": None}
        assert deletions(r) == {}
    assert store.calls == []

    # Expired: older than PERMANENT_SESSION_LIFETIME (31 days), as Flask
    # itself would refuse it. The window is still open (60 days here).
    clock.advance(31 * 86400 + 1)
    assert browser(app, {OLD_SESSION: good[OLD_SESSION]}).get("/public").json == {
        "user": None,
        "cart": None,
    }
    assert store.calls == []
    # The remember cookie has no time in it; Flask-Login took it any day.
    assert signed_in(browser(app, {OLD_REMEMBER: good[OLD_REMEMBER]})) == "alice"


def test_nothing_is_adopted_after_the_end_date(
    counted: tuple[Flask, Any], clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, store = counted
    old = old_cookies(remember=True)
    clock.advance(60 * 86400)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            r = browser(app, old).get("/public")
            assert r.json == {"user": None, "cart": None}
            assert "Set-Cookie" not in r.headers
    assert store.calls == []
    assert caplog.records == []


def test_a_user_who_is_gone_or_inactive_adopts_nothing(adopting: Flask) -> None:
    users = adopting.extensions["test_users"]
    del users["bob"]
    for name in ("bob", "idle"):
        client = browser(adopting, old_cookies(name, remember=True))
        r = client.get("/public")
        assert r.json == {"user": None, "cart": None}
        assert deletions(r) == {}
    assert count_sessions(adopting) == 0


def test_signed_out_everywhere_ends_the_old_cookies_too(adopting: Flask) -> None:
    laptop = old_cookies()
    phone = old_cookies(cart="pen")
    assert laptop[OLD_SESSION] != phone[OLD_SESSION]
    client = browser(adopting, laptop)
    assert signed_in(client) == "alice"
    with adopting.test_request_context():
        get_state(adopting).manager.revoke_user("alice")
    # The phone's cookie, never adopted, is no use any more either.
    r = browser(adopting, phone).get("/public")
    assert r.json == {"user": None, "cart": None}
    assert set(deletions(r)) == {OLD_SESSION}
    assert signed_in(client) is None


def test_strong_session_protection_is_honoured(new_app: Callable[..., Flask]) -> None:
    agent = {"User-Agent": "the user's browser"}
    old = old_cookies(headers=agent, SESSION_PROTECTION="strong")
    app = new_app(SESSION_PROTECTION="strong")
    thief = browser(app, old)
    assert thief.get("/public", headers={"User-Agent": "curl"}).json["user"] is None
    assert browser(app, old).get("/public", headers=agent).json["user"] == "alice"


# -- adoption and the app ------------------------------------------------------------


def test_adoption_is_not_a_sign_in(
    adopting: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    logins: list[Any] = []
    rotations: list[dict[str, Any]] = []

    def on_login(sender: Flask, **extra: Any) -> None:
        logins.append(extra)

    def on_rotated(sender: Flask, **extra: Any) -> None:
        rotations.append(extra)

    old = old_cookies()
    with (
        user_logged_in.connected_to(on_login, adopting),
        session_rotated.connected_to(on_rotated, adopting),
        caplog.at_level(logging.INFO, "flask_signoff"),
    ):
        browser(adopting, old).get("/public")
    assert logins == []
    assert rotations == [{"user_id": "alice", "reason": "adopted"}]
    assert "Adopted the Flask-Login sign-in of user 'alice'" in caplog.text
    assert old[OLD_SESSION] not in caplog.text


def test_when_both_cookies_are_named_session(
    new_app: Callable[..., Flask], clock: FrozenClock
) -> None:
    """``SIGNOFF_COOKIE_SECURE`` off: our cookie is ``session`` too."""
    app = new_app(SIGNOFF_COOKIE_SECURE=False)
    old = old_cookies(remember=True)
    client = browser(app, old)
    r = client.get("/public")
    assert r.json == {"user": "alice", "cart": "book"}
    # Replaced, not deleted: one Set-Cookie for it, with our id.
    ours = [
        h for h in r.headers.getlist("Set-Cookie") if h.startswith(f"{PLAIN_SESSION}=")
    ]
    assert len(ours) == 1
    assert PLAIN_SESSION not in deletions(r)
    assert parse_secret(session_cookie(client, PLAIN_SESSION) or "") is not None
    assert set(deletions(r)) == {OLD_REMEMBER}
    # A copy is refused, and left alone: deleting it could delete the
    # cookie of a concurrent request that adopted it.
    late = browser(app, {OLD_SESSION: old[OLD_SESSION]})
    r = late.get("/public")
    assert r.json == {"user": None, "cart": None}
    assert "Set-Cookie" not in r.headers
    # After the window, Flask's cookie is one we cannot read: deleted.
    clock.advance(30 * 86400)
    assert PLAIN_SESSION in deletions(late.get("/public"))


# -- the store -----------------------------------------------------------------------


def test_store_down_is_503_and_deletes_nothing(
    backend: Backend, new_app: Callable[..., Flask]
) -> None:
    old = old_cookies(remember=True)
    with backend.outage() as dead:
        app = new_app(store=dead)
        r = browser(app, old).get("/public")
        assert r.status_code == 503
        assert "Set-Cookie" not in r.headers
    # Nothing was spent: once the store answers, the cookies adopt.
    assert signed_in(browser(new_app(backend), old)) == "alice"


def test_a_failed_sign_in_gives_the_cookie_back(
    backend: Backend, new_app: Callable[..., Flask]
) -> None:
    def fail() -> None:
        raise StoreUnavailable("the store went away")

    store = CountingStore(backend.store, before={"create_session": fail})
    app = new_app(store=store)
    old = old_cookies()
    r = browser(app, old).get("/public")
    assert r.status_code == 503
    assert "Set-Cookie" not in r.headers
    assert "reserve" in store.calls
    store.before.clear()
    assert signed_in(browser(app, old)) == "alice"


def test_concurrent_requests_adopt_at_most_once(adopting: Flask) -> None:
    old = old_cookies()
    clients = [browser(adopting, old) for _ in range(8)]
    start = threading.Barrier(len(clients), timeout=30)
    users: list[Any] = []

    def run(client: FlaskClient) -> None:
        start.wait()
        users.append(client.get("/public").json["user"])

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(users) == len(clients)
    assert users.count("alice") == 1
    assert users.count(None) == len(clients) - 1
    assert count_sessions(adopting) == 1


def test_the_store_holds_no_cookie_nor_a_plain_hash_of_one(
    backend: Backend, new_app: Callable[..., Flask]
) -> None:
    app = new_app(backend)
    old = old_cookies(remember=True)
    assert signed_in(browser(app, old)) == "alice"
    held = backend.dump()
    signed_part = old[OLD_SESSION].rsplit(".", 1)[0]
    for secret in (*old.values(), signed_part, "alice|"):
        assert secret.encode() not in held
        assert hashlib.sha256(secret.encode()).hexdigest().encode() not in held


def test_signed_out_everywhere_while_adopting_ends_the_new_session(
    backend: Backend, new_app: Callable[..., Flask]
) -> None:
    # Everything of "sign out everywhere" lands between the adoption's
    # check of the epoch and its new session.
    def sign_out_everywhere() -> None:
        SessionLifecycle(backend.store, SessionPolicy()).revoke_user("alice")

    store = CountingStore(backend.store, before={"create_session": sign_out_everywhere})
    app = new_app(store=store)
    client = browser(app, old_cookies())
    assert client.get("/public").json == {"user": None, "cart": None}
    store.before.clear()
    assert signed_in(client) is None
    # Counted in the backend's store: app's settings name a store it does
    # not use.
    assert count_sessions(new_app(backend)) == 0


def test_a_password_reset_while_signed_out_ends_the_old_cookies(
    adopting: Flask,
) -> None:
    # A thief holds a copy of alice's Flask-Login cookie; alice resets her
    # password from the "forgot password" page, signed in nowhere.
    stolen = old_cookies(remember=True)
    alice = adopting.extensions["test_users"]["alice"]
    alice.get_security_stamp = lambda: "password hash 1"
    with adopting.test_request_context("/reset", method="POST"):
        adopting.preprocess_request()
        alice.get_security_stamp = lambda: "password hash 2"
        password_changed(alice)
    r = browser(adopting, stolen).get("/public")
    assert r.json == {"user": None, "cart": None}
    assert set(deletions(r)) == {OLD_SESSION, OLD_REMEMBER}
    assert count_sessions(adopting) == 0


def test_a_store_failing_after_the_new_session_leaves_no_session_behind(
    backend: Backend, new_app: Callable[..., Flask]
) -> None:
    # The store goes away between the new session and the check of the
    # epoch that follows it: the 503 must not leave a session nobody holds
    # (listed among the user's devices until it expires), and the retry
    # must not make a second one.
    armed: list[bool] = []

    def fail_once_armed() -> None:
        if armed and armed.pop():
            raise StoreUnavailable("the store went away")

    store = CountingStore(
        backend.store,
        before={"get_epoch": fail_once_armed},
        after={"create_session": lambda: armed.append(True)},
    )
    app = new_app(store=store)
    # count_sessions reads the store of an app's settings: this one's.
    same_store = new_app(backend)
    old = old_cookies()
    r = browser(app, old).get("/public")
    assert r.status_code == 503
    assert "Set-Cookie" not in r.headers
    assert count_sessions(same_store) == 0
    store.before.clear()
    store.after.clear()
    assert signed_in(browser(app, old)) == "alice"
    assert count_sessions(same_store) == 1


def test_an_earlier_cookie_of_an_adopted_sign_in_is_refused(
    adopting: Flask,
) -> None:
    # Flask signs the session cookie again whenever the session changes
    # (and on every request when it is permanent): a copy a thief took
    # yesterday is not the cookie the browser brings today, though both
    # are the same Flask-Login sign-in.
    client = flask_login_app().test_client()
    assert client.post("/login/alice").status_code == 200
    stolen = client.get_cookie(OLD_SESSION)
    assert stolen is not None
    time.sleep(1.1)  # the next signature has another timestamp
    assert client.post("/cart/pen").status_code == 200
    today = client.get_cookie(OLD_SESSION)
    assert today is not None
    assert today.value != stolen.value
    assert signed_in(browser(adopting, {OLD_SESSION: today.value})) == "alice"
    thief = browser(adopting, {OLD_SESSION: stolen.value})
    r = thief.get("/public")
    assert r.json == {"user": None, "cart": None}
    assert set(deletions(r)) == {OLD_SESSION}
    assert count_sessions(adopting) == 1
