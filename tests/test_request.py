"""The request model: what one request knows about its authentication."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, session

from flask_signoff import current_user, generate_csrf, login_user, logout_user
from flask_signoff.session_interface import SignoffSession


def test_one_object_in_g_holds_the_request_state(app: Flask) -> None:
    users = app.extensions["test_users"]
    with app.test_request_context("/", method="POST"):
        assert list(g) == []
        login_user(users["alice"])
        assert current_user.get_id() == "alice"
        generate_csrf()
        logout_user()
        assert not current_user.is_authenticated
        (name,) = list(g)
        state = g.get(name)
        assert type(state).__module__ == "flask_signoff.request"
        assert state.user is current_user._get_current_object()


def _session(app: Flask, **data: Any) -> SignoffSession:
    sess = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(sess, SignoffSession)
    sess.update(data)
    return sess


def test_end_forgets_the_record_and_the_authentication_keys(app: Flask) -> None:
    users = app.extensions["test_users"]
    with app.test_request_context("/"):
        login_user(users["alice"])
        sess = _session(app, cart="book", _csrf_token="x", csrf_token="y")
        assert sess.record is not None
        sess.end()
        assert sess.record is None
        assert sess.new_secret is None
        assert sess.drop_cookie
        assert dict(sess) == {"cart": "book"}


def test_move_to_takes_the_new_id_and_drops_the_authentication_keys(
    app: Flask,
) -> None:
    users = app.extensions["test_users"]
    with app.test_request_context("/"):
        login_user(users["alice"])
        sess = _session(app, cart="book", _csrf_token="x")
        record = sess.record
        assert record is not None
        sess.drop_cookie = True
        sess.move_to("new-secret", record)
        assert (sess.new_secret, sess.record, sess.drop_cookie) == (
            "new-secret",
            record,
            False,
        )
        assert dict(sess) == {"cart": "book"}
        sess.move_to("newer-secret", record, keep_auth_keys=True)
        sess["_csrf_token"] = "kept"
        sess.move_to("newest", record, keep_auth_keys=True)
        assert sess["_csrf_token"] == "kept"


def test_a_request_loaded_by_its_bearer_value_is_not_fresh(app: Flask) -> None:
    # The request is bob's, by his API key; the cookie riding along is
    # alice's fresh sign-in, which says nothing about this request.
    users = app.extensions["test_users"]

    @app.login_manager.request_loader  # type: ignore[attr-defined]
    def api_key(request: Any) -> Any:
        header = request.headers.get("Authorization")
        return users["bob"] if header == "Bearer apikey-1" else None

    client = app.test_client()
    client.post("/login/alice")
    assert client.get("/fresh").json == {"user": "alice"}
    r = client.get("/fresh", headers={"Authorization": "Bearer apikey-1"})
    assert r.status_code == 401
    r = client.get("/me", headers={"Authorization": "Bearer apikey-1"})
    assert r.json == {"user": "bob"}
