"""Listing and revoking sessions through the extension."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, jsonify

from flask_signoff import (
    FrozenClock,
    current_user,
    login_required,
    logout_user,
    session_revoked,
    user_signed_out_everywhere,
)
from flask_signoff.exceptions import InvalidGrant, TokenError
from flask_signoff.extension import get_state
from tests.support.apps import make_app
from tests.support.backends import count_rows


def add_routes(app: Flask) -> None:
    signoff = app.login_manager  # type: ignore[attr-defined]

    @app.get("/sessions")
    @login_required
    def sessions() -> Any:
        current = signoff.current_session()
        return jsonify(
            [
                {"id": r.public_id, "current": r.key == current.key, "ip": r.ip}
                for r in signoff.sessions_for(current_user)
            ]
        )

    @app.post("/sessions/<public_id>/revoke")
    @login_required
    def revoke(public_id: str) -> Any:
        if not signoff.revoke_session(current_user, public_id):
            return jsonify(error="not_found"), 404
        return jsonify(ok=True)

    @app.post("/sessions/revoke-others")
    @login_required
    def revoke_others() -> Any:
        return jsonify(ended=signoff.revoke_other_sessions())

    @app.post("/logout-everywhere")
    @login_required
    def everywhere() -> Any:
        logout_user(everywhere=True)
        return jsonify(ok=True)


def devices(app: Flask, n: int, name: str = "alice") -> list[Any]:
    clients = []
    for _ in range(n):
        c = app.test_client()
        assert c.post(f"/login/{name}").status_code == 200
        clients.append(c)
    return clients


def test_list_shows_only_own_sessions_and_marks_current(app: Flask) -> None:
    add_routes(app)
    _, laptop = devices(app, 2)
    devices(app, 1, "bob")
    listed = laptop.get("/sessions").json
    assert len(listed) == 2
    assert [s["current"] for s in listed].count(True) == 1
    secret = laptop.get_cookie("session").value
    assert all(s["id"] not in secret for s in listed)


def test_revoke_one_kills_that_device_only(app: Flask) -> None:
    add_routes(app)
    phone, laptop = devices(app, 2)
    phone_id = next(s["id"] for s in phone.get("/sessions").json if s["current"])
    seen: list[Any] = []
    with session_revoked.connected_to(lambda s, **kw: seen.append(kw)):
        assert laptop.post(f"/sessions/{phone_id}/revoke").status_code == 200
    assert seen == [{"user_id": "alice", "public_id": phone_id}]
    assert phone.get("/me").status_code == 401
    assert laptop.get("/me").status_code == 200


def test_another_users_session_id_is_like_an_unknown_one(
    app: Flask, db_path: Any
) -> None:
    add_routes(app)
    (bob,) = devices(app, 1, "bob")
    bob_id = bob.get("/sessions").json[0]["id"]
    (alice,) = devices(app, 1)
    foreign = alice.post(f"/sessions/{bob_id}/revoke")
    unknown = alice.post("/sessions/no-such-id/revoke")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json == unknown.json
    assert bob.get("/me").status_code == 200
    assert count_rows(db_path) == 2


def test_revoking_the_current_session_signs_out_here(app: Flask) -> None:
    add_routes(app)
    (laptop,) = devices(app, 1)
    own = laptop.get("/sessions").json[0]["id"]
    r = laptop.post(f"/sessions/{own}/revoke")
    assert r.status_code == 200
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    assert laptop.get("/me").status_code == 401


def test_revoke_others_keeps_this_one(app: Flask) -> None:
    add_routes(app)
    others = devices(app, 3)
    (bob,) = devices(app, 1, "bob")
    (here,) = devices(app, 1)
    assert here.post("/sessions/revoke-others").json == {"ended": 3}
    assert all(c.get("/me").status_code == 401 for c in others)
    assert here.get("/me").status_code == 200
    assert bob.get("/me").status_code == 200


def test_revoke_others_ends_every_other_client_and_says_so(app: Flask) -> None:
    add_routes(app)
    signoff = app.login_manager  # type: ignore[attr-defined]
    with app.app_context():
        pair = signoff.issue_tokens("alice")
        bob_pair = signoff.issue_tokens("bob")
    (here,) = devices(app, 1)
    copied = here.get_cookie("session").value
    seen: list[Any] = []
    with user_signed_out_everywhere.connected_to(lambda s, **kw: seen.append(kw)):
        assert here.post("/sessions/revoke-others").json == {"ended": 0}
    assert seen == [{"user_id": "alice"}]
    with app.app_context():
        lifecycle = get_state(app).tokens.lifecycle
        with pytest.raises(TokenError):
            lifecycle.verify(pair.access_token)
        with pytest.raises(InvalidGrant):
            signoff.refresh_tokens(pair.refresh_token)
        assert lifecycle.verify(bob_pair.access_token).subject == "bob"
    assert here.get("/me").json == {"user": "alice"}
    # This session moved to a new id: a copy of its cookie is another client.
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/me").status_code == 401


def test_logout_everywhere(app: Flask, db_path: Any) -> None:
    add_routes(app)
    others = devices(app, 2)
    (bob,) = devices(app, 1, "bob")
    (here,) = devices(app, 1)
    seen: list[Any] = []
    with user_signed_out_everywhere.connected_to(lambda s, **kw: seen.append(kw)):
        assert here.post("/logout-everywhere").status_code == 200
    assert seen == [{"user_id": "alice"}]
    assert all(c.get("/me").status_code == 401 for c in [*others, here])
    assert bob.get("/me").status_code == 200
    assert count_rows(db_path) == 1
    assert count_rows(db_path, "signoff_epochs") == 1


def test_remembered_sessions_die_with_logout_everywhere(
    app: Flask, clock: FrozenClock
) -> None:
    add_routes(app)
    app.config["TEST_REMEMBER"] = True
    (remembered,) = devices(app, 1)
    app.config["TEST_REMEMBER"] = False
    (here,) = devices(app, 1)
    here.post("/logout-everywhere")
    clock.advance(3600)
    assert remembered.get("/me").status_code == 401


def test_session_cap_evicts_oldest(db_path: Any, clock: FrozenClock) -> None:
    capped = make_app(db_path, clock, SIGNOFF_MAX_SESSIONS_PER_USER=3)
    clients = []
    for _ in range(5):
        clock.advance(1)
        clients.append(devices(capped, 1)[0])
    status = [c.get("/me").status_code for c in clients]
    assert status == [401, 401, 200, 200, 200]
