"""Server-side sessions over HTTP, tested as an attacker and a browser would."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, session

from flask_signoff import FrozenClock, login_user
from flask_signoff.core.ids import new_secret, random_tag
from flask_signoff.extension import get_state
from flask_signoff.stores.sql import SQLStore
from tests.support.apps import make_app
from tests.support.backends import count_rows
from tests.support.cookies import PLAIN_SESSION, client_with_cookie, session_cookie
from tests.support.counting import CountingStore

COOKIE = PLAIN_SESSION


def login(client: Any, name: str = "alice") -> str:
    r = client.post(f"/login/{name}")
    assert r.status_code == 200
    assert r.json == {"ok": True}
    value = session_cookie(client, COOKIE)
    assert value is not None
    return value


def replay(app: Flask, value: str, path: str = "/me") -> Any:
    """A second client that only has a copy of the cookie."""
    return client_with_cookie(app, value, COOKIE).get(path)


# -- invariant 1: after logout the copied cookie is refused ---------------


def test_copied_cookie_is_dead_after_logout(app: Flask, client: Any) -> None:
    stolen = login(client)
    assert replay(app, stolen).status_code == 200
    assert client.post("/logout").status_code == 200
    assert replay(app, stolen).status_code == 401
    assert client.get("/me").status_code == 401


def test_logout_deletes_the_record(app: Flask, client: Any, db_path: Path) -> None:
    login(client)
    assert count_rows(db_path) == 1
    client.post("/logout")
    assert count_rows(db_path) == 0


# -- invariant 2: the id changes on login, logout and privilege change -----


def test_id_changes_on_login_and_the_old_one_dies(app: Flask, client: Any) -> None:
    client.post("/cart/book")
    before = session_cookie(client, COOKIE)
    assert before is not None
    after = login(client)
    assert after != before
    assert replay(app, before, "/public").json == {"user": None, "cart": None}
    assert client.get("/public").json == {"user": "alice", "cart": "book"}


def test_id_changes_on_rotation(app: Flask, client: Any) -> None:
    first = login(client)
    assert client.post("/rotate").json == {"ok": True}
    second = session_cookie(client, COOKIE)
    assert second is not None
    assert second != first
    assert replay(app, first).status_code == 401
    assert client.get("/me").json == {"user": "alice"}


def test_planted_id_is_never_adopted(app: Flask, client: Any, db_path: Path) -> None:
    planted = new_secret(random_tag())  # well formed, never issued
    client.set_cookie(COOKIE, planted)
    assert client.get("/me").status_code == 401
    issued = login(client)
    assert issued != planted
    assert replay(app, planted).status_code == 401
    assert count_rows(db_path) == 1


def test_planted_session_of_the_attacker_does_not_survive_login(
    app: Flask, db_path: Path
) -> None:
    attacker = app.test_client()
    attacker.post("/cart/trap")  # a real anonymous session
    planted = session_cookie(attacker, COOKIE)
    assert planted is not None
    victim = app.test_client()
    victim.set_cookie(COOKIE, planted)
    login(victim)
    assert replay(app, planted).status_code == 401
    assert attacker.get("/me").status_code == 401


# -- invariant 3: logout keeps non-auth data under a new id ----------------


def test_logout_keeps_non_auth_data_under_a_new_id(app: Flask, client: Any) -> None:
    client.post("/cart/book")
    signed_in = login(client)
    r = client.post("/logout")
    assert r.status_code == 200
    kept = session_cookie(client, COOKIE)
    assert kept is not None
    assert kept != signed_in
    assert client.get("/public").json == {"user": None, "cart": "book"}
    assert replay(app, signed_in, "/public").json == {"user": None, "cart": None}


def test_logout_clear_drops_everything(app: Flask, client: Any, db_path: Path) -> None:
    client.post("/cart/book")
    login(client)
    r = client.post("/logout-clear")
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    assert session_cookie(client, COOKIE) is None
    assert client.get("/public").json == {"user": None, "cart": None}
    assert count_rows(db_path) == 0


# -- invariant 4: no save brings back a revoked session --------------------


def test_save_racing_a_logout_does_not_resurrect(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(db_path, clock)
    in_view = threading.Event()
    logged_out = threading.Event()

    @app.post("/slow")
    def slow() -> Any:
        session["written_after_logout"] = True
        in_view.set()
        assert logged_out.wait(10)
        return jsonify(ok=True)

    client = app.test_client()
    stolen = login(client)
    results: dict[str, Any] = {}

    def request_a() -> None:
        a = app.test_client()
        a.set_cookie(COOKIE, stolen)
        results["a"] = a.post("/slow")

    thread = threading.Thread(target=request_a)
    thread.start()
    assert in_view.wait(10)
    assert client.post("/logout").status_code == 200
    logged_out.set()
    thread.join(10)
    assert results["a"].status_code == 200
    # A's save found no record: nothing was re-created, the old id is dead.
    assert count_rows(db_path) == 0
    assert replay(app, stolen).status_code == 401
    assert "Max-Age=0" in results["a"].headers["Set-Cookie"]


def test_touch_racing_a_revocation_does_not_resurrect(
    app: Flask, client: Any, clock: FrozenClock, db_path: Path
) -> None:
    stolen = login(client)
    state = get_state(app)
    record = state.lifecycle.sessions_for("alice")[0]
    state.lifecycle.revoke("alice", record.public_id)
    clock.advance(120)  # a touch would be due
    assert replay(app, stolen).status_code == 401
    assert count_rows(db_path) == 0


# -- invariant 7: timeouts are enforced on the server ----------------------


def test_idle_timeout_over_http(app: Flask, client: Any, clock: FrozenClock) -> None:
    login(client)
    clock.advance(29 * 60)
    assert client.get("/me").status_code == 200
    clock.advance(30 * 60)
    r = client.get("/me")
    assert r.status_code == 401
    assert session_cookie(client, COOKIE) is None  # the dead cookie is deleted


def test_absolute_timeout_over_http(
    app: Flask, client: Any, clock: FrozenClock
) -> None:
    login(client)
    for _ in range(47):  # 47 x 15 min < 12 h
        clock.advance(15 * 60)
        assert client.get("/me").status_code == 200
    clock.advance(15 * 60)
    assert client.get("/me").status_code == 401


def test_timeouts_from_prefixed_env(
    db_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_SIGNOFF_IDLE_TIMEOUT", "2")
    app = Flask(__name__)
    app.config.from_prefixed_env()
    assert app.config["SIGNOFF_IDLE_TIMEOUT"] == 2
    app = make_app(
        db_path, clock, SIGNOFF_IDLE_TIMEOUT=app.config["SIGNOFF_IDLE_TIMEOUT"]
    )
    client = app.test_client()
    login(client)
    clock.advance(1.5)
    assert client.get("/me").status_code == 200
    clock.advance(2)
    assert client.get("/me").status_code == 401


def test_remembered_session_comes_back_rotated_and_not_fresh(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(db_path, clock, TEST_REMEMBER=True)
    client = app.test_client()
    r = client.post("/login/alice")
    assert "Max-Age=2592000" in r.headers["Set-Cookie"]
    first = session_cookie(client, COOKIE)
    assert first is not None
    assert client.get("/fresh").status_code == 200
    clock.advance(3600)  # past idle
    r = client.get("/me")
    assert r.status_code == 200
    second = session_cookie(client, COOKIE)
    assert second is not None
    assert second != first
    assert replay(app, first).status_code == 401
    assert client.get("/fresh").status_code == 401  # not fresh any more


def test_session_cookie_without_remember_is_not_persistent(client: Any) -> None:
    r = client.post("/login/alice")
    header = r.headers["Set-Cookie"]
    assert "Max-Age" not in header
    assert "Expires" not in header


# -- the hot path: one read, no writes, no cookie --------------------------


@pytest.fixture
def counting(db_path: Path, clock: FrozenClock) -> tuple[Flask, CountingStore]:
    store = CountingStore(SQLStore(f"sqlite:///{db_path}"))
    app = make_app(db_path, clock, store=store)  # type: ignore[arg-type]
    # Setting up costs the store's start-up check and nothing else; the
    # tests count what requests cost from here.
    assert store.calls == ["check_config"]
    store.calls.clear()
    return app, store


def test_unmodified_request_is_one_read_and_no_write(
    counting: tuple[Flask, CountingStore], clock: FrozenClock
) -> None:
    app, store = counting
    client = app.test_client()
    login(client)
    store.calls.clear()
    r = client.get("/me")
    assert r.status_code == 200
    assert store.calls == ["get_session"]
    assert "Set-Cookie" not in r.headers
    clock.advance(59)
    store.calls.clear()
    client.get("/me")
    assert store.calls == ["get_session"]
    clock.advance(1)  # the touch interval has passed: one touch
    store.calls.clear()
    r = client.get("/me")
    assert store.calls == ["get_session", "touch_session"]
    assert "Set-Cookie" not in r.headers


def test_modified_request_is_one_conditional_update(
    counting: tuple[Flask, CountingStore],
) -> None:
    app, store = counting
    client = app.test_client()
    login(client)
    store.calls.clear()
    r = client.post("/cart/pen")
    assert store.calls == ["get_session", "update_session"]
    assert "Set-Cookie" not in r.headers


def test_anonymous_visitors_cost_nothing(
    counting: tuple[Flask, CountingStore], db_path: Path
) -> None:
    app, store = counting
    client = app.test_client()
    for _ in range(20):
        r = client.get("/public")
        assert r.status_code == 200
        assert "Set-Cookie" not in r.headers
        assert client.get("/me").status_code == 401
    assert store.calls == []
    assert count_rows(db_path) == 0


# -- invariant 10: malformed cookies --------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "x" * 3000,
        "0123abcd." + "A" * 42 + "!",
        "0123abcd." + "é" * 43,
        "' OR 1=1 --",
        "%00%ff",
        new_secret(random_tag()),  # well formed, never issued
    ],
)
def test_malformed_cookies_are_anonymous_and_write_nothing(
    counting: tuple[Flask, CountingStore], value: str
) -> None:
    app, store = counting
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    r = client.get("/me")
    assert r.status_code == 401
    assert store.writes == 0
    assert store.reads <= 1
    assert client.get("/public").status_code == 200


def test_non_ascii_raw_cookie_header(app: Flask) -> None:
    client = app.test_client()
    r = client.get("/me", headers={"Cookie": "session=\xff\xfe; other=1"})
    assert r.status_code == 401


# -- invariant 11: secrets never stored or logged in clear -----------------


def test_the_store_keeps_no_session_id(
    app: Flask, client: Any, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = login(client)
    client.post("/cart/x")
    client.post("/rotate")
    rotated = session_cookie(client, COOKIE)
    assert rotated is not None
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob("signoff.sqlite3*"))
    for value in (secret, rotated):
        random_part = value.partition(".")[2]
        assert random_part.encode() not in raw
        assert random_part not in caplog.text


# -- invariant 13 and the cookie rules -------------------------------------


def test_secure_cookie_is_host_prefixed_and_deleted_with_its_attributes(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(db_path, clock, SIGNOFF_COOKIE_SECURE=True)
    client = app.test_client()
    set_header = client.post("/login/alice", base_url="https://localhost").headers[
        "Set-Cookie"
    ]
    assert set_header.startswith("__Host-session=")
    attrs = {a.strip() for a in set_header.split(";")[1:]}
    assert attrs == {"Secure", "HttpOnly", "Path=/", "SameSite=Lax"}
    del_header = client.post("/logout-clear", base_url="https://localhost").headers[
        "Set-Cookie"
    ]
    assert del_header.startswith("__Host-session=;")
    del_attrs = {a.strip() for a in del_header.split(";")[1:]}
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=Lax", "Max-Age=0"} <= del_attrs
    assert not any(a.startswith("Domain") for a in del_attrs)


def test_secure_cookie_with_a_domain_uses_the_secure_prefix(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(
        db_path, clock, SIGNOFF_COOKIE_SECURE=True, SESSION_COOKIE_DOMAIN="example.com"
    )
    r = app.test_client().post("/login/alice", base_url="https://www.example.com")
    header = r.headers["Set-Cookie"]
    assert header.startswith("__Secure-session=")
    assert "Domain=example.com" in header


def test_flask_cookie_settings_keep_their_meaning(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(
        db_path,
        clock,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/app",
    )
    header = app.test_client().post("/login/alice").headers["Set-Cookie"]
    assert header.startswith("sid=")
    assert "SameSite=Strict" in header
    assert "Path=/app" in header


def test_authenticated_responses_are_not_cached(client: Any) -> None:
    login(client)
    r = client.get("/me")
    assert r.headers["Cache-Control"] == "no-store"
    assert "Cookie" in r.headers["Vary"]
    anon = client.application.test_client().get("/public")
    assert "no-store" not in anon.headers.get("Cache-Control", "")


# -- accounts that go away --------------------------------------------------


def test_deleted_user_ends_the_session(app: Flask, client: Any, db_path: Path) -> None:
    stolen = login(client)
    del app.extensions["test_users"]["alice"]
    r = client.get("/me")
    assert r.status_code == 401
    assert count_rows(db_path) == 0
    app.extensions["test_users"]["alice"] = object()  # type: ignore[assignment]
    assert replay(app, stolen).status_code == 401


def test_inactive_user_cannot_log_in_unless_forced(app: Flask) -> None:
    with app.test_request_context():
        users = app.extensions["test_users"]
        assert login_user(users["idle"]) is False
        assert login_user(users["idle"], force=True) is True


# -- invariant 9: fail closed when the store is down ------------------------


@pytest.fixture
def locked_app(db_path: Path, clock: FrozenClock) -> Flask:
    return make_app(db_path, clock, SIGNOFF_STORE_TIMEOUT=0.2)


def hold_write_lock(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=0.1, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_store_down_is_503_and_keeps_the_cookie(
    locked_app: Flask, db_path: Path
) -> None:
    client = locked_app.test_client()
    secret = login(client)
    # An exclusive lock in rollback-journal mode blocks readers too.
    get_state(locked_app).store.close()
    with sqlite3.connect(db_path) as c:
        c.execute("PRAGMA journal_mode=DELETE")
    lock = hold_write_lock(db_path)
    try:
        r = client.get("/me")
        assert r.status_code == 503
        assert "Set-Cookie" not in r.headers
        assert b"Traceback" not in r.data
        assert b"unavailable" in r.data
        r = client.post("/logout")
        assert r.status_code == 503
        assert "Set-Cookie" not in r.headers
        r = client.get("/me", headers={"Accept": "application/json"})
        assert r.status_code == 503
        assert r.json is not None
        assert r.json["error"] == "store_unavailable"
    finally:
        lock.rollback()
        lock.close()
    # Nothing was lost: the same cookie works again.
    assert session_cookie(client, COOKIE) == secret
    assert client.get("/me").json == {"user": "alice"}


def test_store_down_during_login_is_503(locked_app: Flask, db_path: Path) -> None:
    client = locked_app.test_client()
    client.get("/public")  # creates the schema
    login(client)
    client.post("/logout-clear")
    get_state(locked_app).store.close()
    lock = hold_write_lock(db_path)
    try:
        r = client.post("/login/alice")
        assert r.status_code == 503
        assert "Set-Cookie" not in r.headers
    finally:
        lock.rollback()
        lock.close()
    assert client.get("/me").status_code == 401


def test_unreadable_store_file_is_503(tmp_path: Path, clock: FrozenClock) -> None:
    target = tmp_path / "not-a-db.sqlite3"
    target.write_bytes(b"this is not a database" * 100)
    app = make_app(target, clock, SIGNOFF_STORE_TIMEOUT=0.2)
    client = app.test_client()
    client.set_cookie(COOKIE, new_secret(random_tag()))
    r = client.get("/me")
    assert r.status_code == 503
    assert "Set-Cookie" not in r.headers


# -- a Secure cookie sent over plain http -------------------------------------

SECURE_OVER_HTTP = "A Secure session cookie was set in response to a plain-http"


def _secure_over_http(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_signoff" and SECURE_OVER_HTTP in r.getMessage()
    ]


def test_a_secure_cookie_set_over_http_is_logged_once_per_app(
    tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    # WebTest and requests never send a Secure cookie back to http://: the
    # next request of a scripted client has no session. Say so, once.
    app = make_app(tmp_path / "a.db", clock, SIGNOFF_COOKIE_SECURE=True)
    with caplog.at_level(logging.WARNING, logger="flask_signoff"):
        first = app.test_client()
        first.post("/login/alice")
        assert len(_secure_over_http(caplog)) == 1
        first.post("/rotate")
        app.test_client().post("/cart/tea")  # an anonymous session's cookie
        app.test_client().post("/login/bob")
    found = _secure_over_http(caplog)
    assert len(found) == 1
    for fix in ("SIGNOFF_COOKIE_SECURE = False", "https", "ProxyFix"):
        assert fix in found[0]
    secret = session_cookie(first, "__Host-session")
    assert secret is not None
    assert secret not in caplog.text
    # Each app says it once.
    other = make_app(tmp_path / "b.db", clock, SIGNOFF_COOKIE_SECURE=True)
    with caplog.at_level(logging.WARNING, logger="flask_signoff"):
        other.test_client().post("/cart/tea")
    assert len(_secure_over_http(caplog)) == 2


def test_a_secure_cookie_over_https_is_not_logged(
    tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = make_app(tmp_path / "a.db", clock, SIGNOFF_COOKIE_SECURE=True)
    with caplog.at_level(logging.WARNING, logger="flask_signoff"):
        client = app.test_client()
        assert client.post("/login/alice", base_url="https://localhost").json
        client.post("/rotate", base_url="https://localhost")
        # Behind a proxy that terminates TLS, once the app reads its header.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)  # type: ignore[method-assign]
        proxied = app.test_client()
        r = proxied.post("/login/bob", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in r.headers["Set-Cookie"]
    assert _secure_over_http(caplog) == []


def test_a_cookie_without_secure_over_http_is_not_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    assert get_state(app).settings.cookie_secure is False
    with caplog.at_level(logging.WARNING, logger="flask_signoff"):
        client = app.test_client()
        login(client)
        client.post("/cart/tea")
    assert _secure_over_http(caplog) == []
