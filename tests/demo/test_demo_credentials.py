"""Credentials that change or vanish, tried against the demo as an attacker.

- A sign-in that checked the old password must not outlive the password
  change, even when it commits its session or refresh family after the
  change: real threads race the owner's ``POST /password``, and a hook holds
  one sign-in between its password check and its commit to force the worst
  interleaving.
- A deleted user's credentials must die with the account, and a new account
  must never inherit them through a reused id.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from examples.demo.users import User, UserStore, users_table
from flask_signoff import FrozenClock
from flask_signoff.core.ids import hash_secret
from flask_signoff.extension import get_state
from tests.support.backends import Backend
from tests.support.demo import PASSWORD, close_demo, open_demo
from tests.support.forms import csrf_token, post_form

NEW_PASSWORD = "a brand new password"
COOKIE = "__Host-session"

#: Trials of the race per backend, and the most any one trial may take.
TRIALS = 20
TRIAL_SECONDS = 20.0
#: Requests each attacker thread makes at most in one trial.
MAX_ATTEMPTS = 60


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh(app: Flask, token: str) -> Any:
    return app.test_client().post("/api/token/refresh", json={"refresh_token": token})


def change_password(owner: FlaskClient, old: str = PASSWORD) -> int:
    token = csrf_token(owner, "/password")
    response = owner.post(
        "/password", data={"current": old, "new": NEW_PASSWORD, "csrf_token": token}
    )
    return response.status_code


def sign_in(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = post_form(client, "/login", username=username, password=password)
    assert response.status_code == 303
    return client


# -- the race, as it happens -------------------------------------------------------


@pytest.fixture
def race_app(instance: Path, clock: FrozenClock, backend: Backend) -> Iterator[Flask]:
    """The demo as the ``app`` fixture makes it, for hundreds of sign-ins.

    Throttling is off (the attackers' failed attempts after the change would
    add up across trials and lock everyone out, the owner included) and the
    per-user cap is high (so the attackers' sessions never evict the owner's).
    """
    app = open_demo(
        instance,
        clock,
        SIGNOFF_THROTTLE_ACCOUNT_LIMIT=None,
        SIGNOFF_THROTTLE_IP_LIMIT=None,
        SIGNOFF_MAX_SESSIONS_PER_USER=100_000,
        **backend.config,
    )
    yield app
    close_demo(app)


@dataclasses.dataclass
class Loot:
    """What one attacker thread got with the old password."""

    #: A client per successful form sign-in, holding that session's cookie.
    sessions: list[FlaskClient] = dataclasses.field(default_factory=list)
    #: Every access token received (from /api/token and from refreshes).
    access_tokens: list[str] = dataclasses.field(default_factory=list)
    #: The latest (unspent) refresh token of each family.
    refresh_tokens: list[str] = dataclasses.field(default_factory=list)
    successes: int = 0
    error: BaseException | None = None


def attack(app: Flask, username: str, loot: Loot, stop: threading.Event) -> None:
    """Sign in with the old password again and again: the form, the token
    endpoint (remembered or not), and refreshes of what that gave."""
    try:
        for attempt in range(MAX_ATTEMPTS):
            if stop.is_set():
                return
            kind = attempt % 3
            if kind == 0:
                client = app.test_client()
                data = {
                    "username": username,
                    "password": PASSWORD,
                    "csrf_token": csrf_token(client),
                }
                if attempt % 2:
                    data["remember"] = "1"
                if client.post("/login", data=data).status_code == 303:
                    loot.sessions.append(client)
                    loot.successes += 1
            elif kind == 1:
                r = app.test_client().post(
                    "/api/token", json={"username": username, "password": PASSWORD}
                )
                if r.status_code == 200:
                    loot.access_tokens.append(r.json["access_token"])
                    loot.refresh_tokens.append(r.json["refresh_token"])
                    loot.successes += 1
            elif loot.refresh_tokens:
                r = refresh(app, loot.refresh_tokens[-1])
                if r.status_code == 200:
                    loot.access_tokens.append(r.json["access_token"])
                    loot.refresh_tokens[-1] = r.json["refresh_token"]
    except BaseException as e:  # reported by the main thread
        loot.error = e


def survivors(app: Flask, loot: list[Loot]) -> dict[str, int]:
    """Count what still works after the change. Access tokens are tried
    before refresh tokens, whose failure may revoke a family."""
    alive = {"sessions": 0, "access_tokens": 0, "refresh_tokens": 0}
    for got in loot:
        for client in got.sessions:
            if client.get("/api/me").status_code != 401:
                alive["sessions"] += 1
        for token in got.access_tokens:
            me = app.test_client().get("/api/me", headers=bearer(token))
            alive["access_tokens"] += me.status_code != 401
        for token in got.refresh_tokens:
            r = refresh(app, token)
            if r.status_code != 400:
                alive["refresh_tokens"] += 1
                if r.status_code == 200:
                    access = r.json["access_token"]
                    me = app.test_client().get("/api/me", headers=bearer(access))
                    alive["access_tokens"] += me.status_code != 401
    return alive


@pytest.mark.slow  # trials of a race: seconds
def test_sign_ins_racing_a_password_change_do_not_outlive_it(
    race_app: Flask,
) -> None:
    app = race_app
    results = []
    started = time.monotonic()
    for trial in range(TRIALS):
        username = f"owner{trial}"
        post_form(app.test_client(), "/register", username=username, password=PASSWORD)
        owner = sign_in(app, username)
        stop = threading.Event()
        loot = [Loot() for _ in range(4)]
        threads = [
            threading.Thread(target=attack, args=(app, username, got, stop))
            for got in loot
        ]
        for thread in threads:
            thread.start()
        # Let every attacker be mid-stride before the owner acts.
        deadline = time.monotonic() + TRIAL_SECONDS / 2
        while time.monotonic() < deadline and not all(g.successes for g in loot):
            time.sleep(0.001)
        try:
            assert change_password(owner) == 303
        finally:
            stop.set()
            for thread in threads:
                thread.join(TRIAL_SECONDS)
        assert not any(t.is_alive() for t in threads), "an attacker is stuck"
        for got in loot:
            if got.error is not None:
                raise got.error
        assert owner.get("/api/me").status_code == 200
        gained = sum(len(g.sessions) + len(g.refresh_tokens) for g in loot)
        results.append((gained, survivors(app, loot)))
    elapsed = time.monotonic() - started
    alive = [a for _, a in results if any(a.values())]
    assert not alive, (
        f"{len(alive)} of {TRIALS} trials left credentials of the old password "
        f"alive ({elapsed:.1f} s): {alive}"
    )
    # The attackers did get in before the change, every time.
    assert all(gained for gained, _ in results)


# -- the worst interleaving, forced ----------------------------------------------


class Held:
    """Hold one thread's sign-in between its password check and its commit."""

    def __init__(self, users: UserStore) -> None:
        self.checked = threading.Event()
        self.resume = threading.Event()
        self.thread: threading.Thread | None = None
        self._authenticate = users.authenticate
        users.authenticate = self  # type: ignore[method-assign]

    def __call__(self, username: str, password: str) -> User | None:
        user = self._authenticate(username, password)
        if threading.current_thread() is self.thread:
            self.checked.set()
            assert self.resume.wait(10)
        return user

    def run(self, fn: Callable[[], Any], meanwhile: Callable[[], None]) -> Any:
        """Run ``fn`` in a thread; ``meanwhile()`` once its password is checked."""
        result: list[Any] = []
        self.thread = threading.Thread(target=lambda: result.append(fn()))
        self.thread.start()
        try:
            assert self.checked.wait(10)
            meanwhile()
        finally:
            self.resume.set()
            self.thread.join(10)
        assert result, "the held sign-in failed"
        return result[0]


def test_a_web_sign_in_that_checked_the_old_password_dies_with_it(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    owner = login("alice")
    held = Held(app.extensions["demo_users"])

    def attacker_signs_in() -> FlaskClient:
        client = app.test_client()
        data = {
            "username": "alice",
            "password": PASSWORD,
            "remember": "1",
            "csrf_token": csrf_token(client),
        }
        # The old password was right when it was checked: the sign-in goes on.
        assert client.post("/login", data=data).status_code == 303
        return client

    attacker = held.run(
        attacker_signs_in, lambda: assert_equal(change_password(owner), 303)
    )
    assert attacker.get("/api/me").status_code == 401
    assert attacker.get_cookie(COOKIE) is None
    # The owner is still signed in, and sees no session but their own.
    sessions = owner.get("/api/sessions")
    assert sessions.status_code == 200
    assert [row["current"] for row in sessions.json] == [True]


def test_an_api_sign_in_that_checked_the_old_password_dies_with_it(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    owner = login("alice")
    held = Held(app.extensions["demo_users"])

    def attacker_gets_tokens() -> dict[str, str]:
        r = app.test_client().post(
            "/api/token", json={"username": "alice", "password": PASSWORD}
        )
        assert r.status_code == 200
        return dict(r.json)

    pair = held.run(
        attacker_gets_tokens, lambda: assert_equal(change_password(owner), 303)
    )
    me = app.test_client().get("/api/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 401
    assert me.json["error"] == "invalid_token"
    r = refresh(app, pair["refresh_token"])
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"
    assert owner.get("/api/me").status_code == 200


def assert_equal(got: object, expected: object) -> None:
    assert got == expected


# -- deleted users ---------------------------------------------------------------


def delete_user(app: Flask, user_id: int) -> None:
    """Delete a row as an app that forgot ``signoff.revoke_user`` would."""
    users: UserStore = app.extensions["demo_users"]
    with users.engine.begin() as conn:
        conn.execute(users_table.delete().where(users_table.c.id == user_id))


def user_id_of(app: Flask, username: str) -> int:
    users: UserStore = app.extensions["demo_users"]
    with users.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(users_table.c.id).where(users_table.c.username == username)
            ).scalar_one()
        )


def test_a_deleted_users_id_is_never_given_again(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("first")
    register("second")
    second = user_id_of(app, "second")
    delete_user(app, second)
    register("third")
    assert user_id_of(app, "third") > second


def test_nothing_of_a_deleted_user_is_inherited_by_the_next_account(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("first")
    register("mallory")
    browser = app.test_client()
    data = {
        "username": "mallory",
        "password": PASSWORD,
        "remember": "1",
        "csrf_token": csrf_token(browser),
    }
    assert browser.post("/login", data=data).status_code == 303
    r = app.test_client().post(
        "/api/token", json={"username": "mallory", "password": PASSWORD}
    )
    pair = dict(r.json)

    delete_user(app, user_id_of(app, "mallory"))
    # Someone else signs up, with the same password even: whatever id they
    # get, nothing of the deleted account becomes theirs.
    register("victim")

    assert browser.get("/api/me").status_code == 401
    me = app.test_client().get("/api/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 401
    r = refresh(app, pair["refresh_token"])
    assert r.status_code == 400
    assert r.json["error"] == "invalid_grant"


def test_a_deleted_users_refresh_revokes_the_family(
    app: Flask, register: Callable[[str], None]
) -> None:
    register("mallory")
    r = app.test_client().post(
        "/api/token", json={"username": "mallory", "password": PASSWORD}
    )
    pair = dict(r.json)
    user_id = user_id_of(app, "mallory")
    delete_user(app, user_id)
    assert refresh(app, pair["refresh_token"]).status_code == 400
    # Revoked, not just refused: the family is gone from the store.
    store = get_state(app).store
    assert store.get_refresh(hash_secret(pair["refresh_token"])) is None
