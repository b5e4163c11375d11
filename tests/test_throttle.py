"""Failed sign-ins are throttled per account and per address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request

from apps import make_app
from flask_signoff import FrozenClock, TooManyAttempts, login_user

PASSWORD = "correct horse"


def add_login(app: Flask) -> None:
    signoff = app.login_manager  # type: ignore[attr-defined]
    users = app.extensions["test_users"]

    @app.post("/password-login")
    def password_login() -> Any:
        name = request.form["username"]
        signoff.check_throttle(name)
        if request.form["password"] != PASSWORD or name not in users:
            signoff.record_failure(name)
            return jsonify(error="bad credentials"), 401
        login_user(users[name])
        return jsonify(ok=True)


@pytest.fixture
def throttled(db_path: Path, clock: FrozenClock) -> Flask:
    app = make_app(
        db_path,
        clock,
        SIGNOFF_THROTTLE_ACCOUNT_LIMIT=3,
        SIGNOFF_THROTTLE_IP_LIMIT=5,
        SIGNOFF_THROTTLE_WINDOW=60,
    )
    add_login(app)
    return app


def attempt(client: Any, name: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post(
        "/password-login",
        data={"username": name, "password": password},
        environ_base={"REMOTE_ADDR": ip},
        headers={"Accept": "application/json"},
    )


def test_account_limit_then_429_with_retry_after(
    throttled: Flask, clock: FrozenClock
) -> None:
    client = throttled.test_client()
    for _ in range(3):
        assert attempt(client, "alice", "guess").status_code == 401
    clock.advance(10)
    r = attempt(client, "alice", PASSWORD)  # even the right password waits
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "50"
    assert r.json["error"] == "too_many_attempts"
    assert client.get("/me").status_code == 401
    # Another account from another address is not affected.
    assert attempt(client, "bob", PASSWORD, ip="10.0.0.2").status_code == 200
    clock.advance(50)
    assert attempt(client, "alice", PASSWORD).status_code == 200


def test_account_names_are_case_insensitive(throttled: Flask) -> None:
    client = throttled.test_client()
    for name in ("alice", "ALICE", " Alice "):
        attempt(client, name, "guess", ip="10.0.0.9")
    assert attempt(client, "alice", PASSWORD, ip="10.0.0.8").status_code == 429


@pytest.mark.parametrize(
    "names",
    [
        # Compatibility forms: fullwidth letters, a ligature, a
        # mathematical alphabet; what NFKC-normalising apps (Django's
        # usernames, for one) treat as the same account.
        ("\uff41\uff4c\uff49\uff43\uff45", "ALICE", "\U0001d44e\U0001d459ice"),
        ("o\ufb03ce", "OFFICE", "Office"),
        # Case folding beyond lower(): ß folds to ss, as in casefold().
        ("stra\u00dfe", "STRASSE", "strasse"),
        # Whitespace of any kind around the name.
        ("\u3000alice\u00a0", "alice\t", "\u2003ALICE"),
    ],
)
def test_account_names_are_normalised_before_counting(
    throttled: Flask, names: tuple[str, str, str]
) -> None:
    client = throttled.test_client()
    for i, name in enumerate(names):
        assert attempt(client, name, "guess", ip=f"10.0.1.{i}").status_code == 401
    for name in names:
        assert attempt(client, name, "guess", ip="10.0.2.1").status_code == 429


def test_a_name_that_utf8_cannot_encode_is_counted(throttled: Flask) -> None:
    # A JSON body can carry a lone surrogate ("\ud800"), which no UTF-8
    # encoder accepts; the name is still a name to count failures under.
    signoff = throttled.login_manager  # type: ignore[attr-defined]
    with throttled.test_request_context(environ_base={"REMOTE_ADDR": "10.0.3.1"}):
        for _ in range(3):
            signoff.check_throttle("\ud800")
            signoff.record_failure("\ud800")
        with pytest.raises(TooManyAttempts):
            signoff.check_throttle("\ud800")
        signoff.check_throttle("\udfff")  # another name, its own counter


def test_address_limit_across_accounts(throttled: Flask) -> None:
    client = throttled.test_client()
    for i in range(5):
        assert attempt(client, f"user{i}", "guess").status_code == 401
    assert attempt(client, "bob", PASSWORD).status_code == 429
    assert attempt(client, "bob", PASSWORD, ip="10.0.0.3").status_code == 200


def test_successes_are_not_counted(throttled: Flask) -> None:
    client = throttled.test_client()
    for _ in range(10):
        assert attempt(client, "alice", PASSWORD).status_code == 200


def test_the_store_keeps_no_name_or_address(throttled: Flask, db_path: Path) -> None:
    attempt(throttled.test_client(), "alice-secret-name", "guess", ip="192.0.2.77")
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob("signoff.sqlite3*"))
    assert b"alice-secret-name" not in raw
    assert b"192.0.2.77" not in raw


def test_html_clients_get_a_page(throttled: Flask) -> None:
    client = throttled.test_client()
    for _ in range(3):
        attempt(client, "alice", "guess")
    r = client.post(
        "/password-login",
        data={"username": "alice", "password": "x"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert r.status_code == 429
    assert r.mimetype == "text/html"
    assert b"Too many attempts" in r.data
