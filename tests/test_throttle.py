"""Failed sign-ins are throttled per account and per address."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask, jsonify, request

from flask_signoff import FrozenClock, TooManyAttempts, login_user
from tests.support.apps import make_app

PASSWORD = "correct horse"


class Checks:
    """The password checks of the test app: counted, and as slow as asked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.seconds = 0.0

    def __call__(self, name: str, password: str) -> bool:
        with self.lock:
            self.count += 1
        time.sleep(self.seconds)
        return password == PASSWORD


def add_login(app: Flask) -> None:
    signoff = app.login_manager  # type: ignore[attr-defined]
    users = app.extensions["test_users"]
    checks = app.extensions["password_checks"] = Checks()

    @app.post("/password-login")
    def password_login() -> Any:
        """Written as apps did before reserve_attempt() existed."""
        name = request.form["username"]
        signoff.check_throttle(name)
        if not checks(name, request.form["password"]) or name not in users:
            signoff.record_failure(name)
            return jsonify(error="bad credentials"), 401
        login_user(users[name])
        return jsonify(ok=True)

    @app.post("/reserved-login")
    def reserved_login() -> Any:
        name = request.form["username"]
        attempt = signoff.reserve_attempt(name)
        if not checks(name, request.form["password"]) or name not in users:
            return jsonify(error="bad credentials"), 401
        attempt.succeeded()
        login_user(users[name])
        return jsonify(ok=True)

    @app.post("/crashing-login")
    def crashing_login() -> Any:
        signoff.check_throttle(request.form["username"])
        checks(request.form["username"], request.form["password"])
        raise RuntimeError("the user database went away")

    @app.post("/record-only")
    def record_only() -> Any:
        signoff.record_failure(request.form["username"])
        return jsonify(error="bad credentials"), 401


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


def attempt(
    client: Any,
    name: str,
    password: str,
    ip: str = "10.0.0.1",
    path: str = "/password-login",
) -> Any:
    return client.post(
        path,
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


def checks_of(app: Flask) -> Checks:
    return cast(Checks, app.extensions["password_checks"])


def burst(app: Flask, path: str, passwords: list[str]) -> list[int]:
    """Sign-ins as alice, one thread each, released together."""
    barrier = threading.Barrier(len(passwords))
    statuses = [0] * len(passwords)

    def run(i: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        statuses[i] = attempt(client, "alice", passwords[i], path=path).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return statuses


@pytest.mark.parametrize("path", ["/password-login", "/reserved-login"])
def test_a_burst_checks_no_more_than_the_limit(throttled: Flask, path: str) -> None:
    """Parallel guesses, with either API: each is reserved before its check,
    so no more than the limit (3) are checked, and once the account is
    locked not even the right password is."""
    checks = checks_of(throttled)
    checks.seconds = 0.05  # a real password hash takes about as long
    statuses = burst(throttled, path, ["guess"] * 12)
    assert checks.count == 3
    assert sorted(statuses) == [401] * 3 + [429] * 9
    statuses = burst(throttled, path, ["guess"] * 7 + [PASSWORD])
    assert statuses == [429] * 8
    assert checks.count == 3


def test_reserve_attempt_success_is_not_counted(throttled: Flask) -> None:
    client = throttled.test_client()
    for _ in range(10):
        r = attempt(client, "alice", PASSWORD, path="/reserved-login")
        assert r.status_code == 200
    assert attempt(client, "alice", "guess", path="/reserved-login").status_code == 401
    assert client.get("/me").status_code == 200


def test_a_success_does_not_wipe_earlier_failures(
    throttled: Flask, clock: FrozenClock
) -> None:
    client = throttled.test_client()
    for path in ("/password-login", "/reserved-login"):
        for _ in range(2):
            assert attempt(client, "bob", "guess", path=path).status_code == 401
        assert attempt(client, "bob", PASSWORD, path=path).status_code == 200
        assert attempt(client, "bob", "guess", path=path).status_code == 401
        assert attempt(client, "bob", PASSWORD, path=path).status_code == 429
        clock.advance(60)  # the window ends; the next one is empty
        assert attempt(client, "bob", PASSWORD, path=path).status_code == 200


def test_check_throttle_then_record_failure_counts_once(throttled: Flask) -> None:
    client = throttled.test_client()
    for _ in range(3):
        assert attempt(client, "alice", "guess").status_code == 401
    assert checks_of(throttled).count == 3
    assert attempt(client, "alice", PASSWORD).status_code == 429


def test_check_throttle_keeps_the_attempt_of_a_failed_request(
    throttled: Flask,
) -> None:
    """A request that ends in an error after check_throttle did not sign
    anyone in: its attempt stays counted, whether or not record_failure was
    called."""
    throttled.testing = False  # the crash is a 500, as in production
    client = throttled.test_client()
    for _ in range(3):
        r = attempt(client, "alice", PASSWORD, path="/crashing-login")
        assert r.status_code == 500
    assert attempt(client, "alice", PASSWORD).status_code == 429


def test_record_failure_alone_still_counts(throttled: Flask) -> None:
    client = throttled.test_client()
    for _ in range(3):
        assert attempt(client, "alice", "guess", path="/record-only").status_code == 401
    assert attempt(client, "alice", PASSWORD).status_code == 429


def test_check_throttle_needs_a_request(throttled: Flask) -> None:
    signoff = throttled.login_manager  # type: ignore[attr-defined]
    with throttled.app_context():
        with pytest.raises(RuntimeError, match="reserve_attempt"):
            signoff.check_throttle("alice", "10.0.0.1")
        # Outside a request the other two work as anywhere else.
        reserved = signoff.reserve_attempt("alice", "10.0.0.1")
        reserved.succeeded()
        for _ in range(3):
            signoff.record_failure("alice", "10.0.0.1")
    client = throttled.test_client()
    r = attempt(client, "alice", PASSWORD, path="/reserved-login")
    assert r.status_code == 429


def test_counters_do_not_tell_a_store_reader_who_or_where(
    throttled: Flask, db_path: Path
) -> None:
    # Someone who reads the store (a backup, a shared database) but not the
    # app's SECRET_KEY must not learn which accounts are being guessed or
    # from which addresses: an unkeyed SHA-256 of "alice" or of an IPv4
    # address is found by trying every candidate.
    client = throttled.test_client()
    for _ in range(3):
        assert attempt(client, "alice", "guess", ip="192.0.2.7").status_code == 401
    assert attempt(client, "alice", PASSWORD, ip="192.0.2.7").status_code == 429
    stored = b"".join(
        p.read_bytes()
        for p in db_path.parent.iterdir()
        if p.name.startswith(db_path.name)
    )
    for value in ("alice", "192.0.2.7"):
        unkeyed = hashlib.sha256(value.encode()).hexdigest()[:40]
        assert unkeyed.encode() not in stored, value


def test_counters_follow_the_secret_key(db_path: Path, clock: FrozenClock) -> None:
    # Two apps with different keys on one store count apart; the same key
    # counts together, whichever process asks.
    def app(secret: str) -> Flask:
        built = make_app(
            db_path, clock, SECRET_KEY=secret, SIGNOFF_THROTTLE_ACCOUNT_LIMIT=2
        )
        add_login(built)
        return built

    first, same, other = app("k" * 40), app("k" * 40), app("o" * 40)
    for client in (first.test_client(), same.test_client()):
        assert attempt(client, "alice", "guess").status_code == 401
    assert attempt(first.test_client(), "alice", "guess").status_code == 429
    assert attempt(other.test_client(), "alice", "guess").status_code == 401
