"""Test apps and helpers shared by the Flask-layer tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, jsonify, session

from flask_signoff import (
    FrozenClock,
    Signoff,
    UserMixin,
    current_user,
    fresh_login_required,
    login_required,
    login_user,
    logout_user,
)
from flask_signoff.core.store import Store
from tests.support import SECRET_KEY


class User(UserMixin):
    def __init__(self, id: str, active: bool = True) -> None:
        self.id = id
        self.active = active

    @property
    def is_active(self) -> bool:
        return self.active


class Users(dict[str, User]):
    """The test app's user table: delete a user to see their session end."""


def make_app(
    db_path: Path, clock: FrozenClock, *, store: Store | None = None, **config: Any
) -> Flask:
    """A small app with the Flask-Login API on Flask-Signoff.

    Its store is SQLite at ``db_path``, or ``store`` (e.g. a
    :class:`~tests.support.counting.CountingStore`) when given.
    """
    app = Flask(__name__)
    app.config.update(
        {
            "SECRET_KEY": SECRET_KEY,
            "TESTING": True,
            "SIGNOFF_STORE_URL": f"sqlite:///{db_path}",
            "SIGNOFF_COOKIE_SECURE": False,
            **config,
        }
    )
    signoff = Signoff(app, clock=clock, store=store)
    users = Users(alice=User("alice"), bob=User("bob"), idle=User("idle", False))
    app.extensions["test_users"] = users

    @signoff.user_loader
    def load_user(user_id: str) -> User | None:
        return users.get(user_id)

    @app.post("/login/<name>")
    def login(name: str) -> Any:
        remember = "remember" in session or bool(app.config.get("TEST_REMEMBER"))
        ok = login_user(users[name], remember=remember)
        return jsonify(ok=ok)

    @app.post("/logout")
    def logout() -> Any:
        logout_user()
        return jsonify(ok=True)

    @app.post("/logout-clear")
    def logout_clear() -> Any:
        logout_user(clear=True)
        return jsonify(ok=True)

    @app.get("/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.get_id())

    @app.get("/fresh")
    @fresh_login_required
    def fresh() -> Any:
        return jsonify(user=current_user.get_id())

    @app.get("/public")
    def public() -> Any:
        return jsonify(user=current_user.get_id(), cart=session.get("cart"))

    @app.post("/cart/<item>")
    def cart(item: str) -> Any:
        session["cart"] = item
        return jsonify(ok=True)

    @app.post("/rotate")
    @login_required
    def rotate() -> Any:
        return jsonify(ok=signoff.rotate())

    return app
