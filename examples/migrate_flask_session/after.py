"""The app after the move: Flask-Signoff, on the same Redis server.

Only the set-up and the three lines that sign in, sign out and tell who is
signed in changed (compare with ``before.py``): ``flask.session`` still
holds the app's own data (the language), which sign-out keeps.
"""

from __future__ import annotations

import os
import secrets
import typing as t
from collections.abc import Mapping

from flask import Flask, redirect, render_template_string, request, session, url_for
from werkzeug.wrappers import Response

from flask_signoff import (
    Signoff,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

from ..accounts import ACCOUNTS, Account, check_password
from .pages import HOME, LOGIN, MAX_LANG


class User(UserMixin):
    """The signed-in user, as the ``user_loader`` returns it."""

    def __init__(self, account: Account) -> None:
        self.id = account.username
        self.password_hash = account.password_hash

    def get_security_stamp(self) -> str:
        # A password change ends every session signed in with the old one.
        return self.password_hash


def load_user(user_id: str) -> User | None:
    account = ACCOUNTS.get(user_id)
    return User(account) if account is not None else None


def create_app(test_config: Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_REDIS_URL ...
    app.config.update(test_config or {})
    if not app.config["SECRET_KEY"]:  # a new key at each start: set one
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.config.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    app.config.setdefault("SIGNOFF_STORE_URL", app.config["REDIS_URL"])
    app.config.setdefault("SIGNOFF_CSRF_PROTECT", True)
    # A Secure cookie (__Host-session) in production; plain http under
    # `flask run`, where browsers would not keep it.
    app.config.setdefault(
        "SIGNOFF_COOKIE_SECURE", os.environ.get("FLASK_RUN_FROM_CLI") != "true"
    )
    signoff = Signoff(app)
    signoff.login_view = "login_form"
    signoff.login_message = None  # a flash would give every visitor a record
    signoff.user_loader(load_user)

    @app.get("/login")
    def login_form() -> str:
        return render_template_string(LOGIN, lang=session.get("lang"))

    @app.post("/login")
    def login() -> Response | tuple[str, int]:
        account = check_password(
            request.form.get("username"), request.form.get("password")
        )
        if account is None:
            page = render_template_string(LOGIN, error="Wrong username or password.")
            return page, 401
        login_user(User(account))
        return redirect(url_for("index"), 303)

    @app.get("/")
    @login_required
    def index() -> str:
        return render_template_string(
            HOME, user=current_user.id, lang=session.get("lang")
        )

    @app.post("/lang")
    def set_lang() -> Response:
        session["lang"] = request.form.get("lang", "")[:MAX_LANG]
        return redirect(url_for("index"), 303)

    @app.post("/logout")
    def logout() -> Response:
        logout_user()  # the language stays, under a new session id
        return redirect(url_for("login_form"), 303)

    @app.get("/api/me")
    def me() -> dict[str, t.Any]:
        user = current_user.id if current_user.is_authenticated else None
        return {"user": user, "lang": session.get("lang")}

    return app
