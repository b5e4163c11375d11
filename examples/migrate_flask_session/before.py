"""The app before the move: Flask-Session 0.8 on Redis, Flask-WTF for CSRF.

The session lives in Redis under ``session:<the cookie value>``; signing in
puts the username in it, signing out takes it out again. ``after.py`` is the
same app on Flask-Signoff.
"""

from __future__ import annotations

import secrets
import typing as t
from collections.abc import Mapping

import redis
from flask import Flask, redirect, render_template_string, request, session, url_for
from flask_session import Session
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from ..accounts import check_password
from .pages import HOME, LOGIN, MAX_LANG


def create_app(test_config: Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_REDIS_URL ...
    app.config.update(test_config or {})
    if not app.config["SECRET_KEY"]:  # a new key at each start: set one
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.config.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    app.config.setdefault("SESSION_TYPE", "redis")
    if app.config["SESSION_TYPE"] == "redis":
        app.config.setdefault(
            "SESSION_REDIS", redis.Redis.from_url(app.config["REDIS_URL"])
        )
    app.config.setdefault("SESSION_KEY_PREFIX", "session:")
    app.config.setdefault("SESSION_PERMANENT", False)
    Session(app)
    CSRFProtect(app)

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
        session["user"] = account.username
        return redirect(url_for("index"), 303)

    @app.get("/")
    def index() -> Response | str:
        if "user" not in session:
            return redirect(url_for("login_form"))
        return render_template_string(
            HOME, user=session["user"], lang=session.get("lang")
        )

    @app.post("/lang")
    def set_lang() -> Response:
        session["lang"] = request.form.get("lang", "")[:MAX_LANG]
        return redirect(url_for("index"), 303)

    @app.post("/logout")
    def logout() -> Response:
        session.pop("user", None)  # the language stays
        return redirect(url_for("login_form"), 303)

    @app.get("/api/me")
    def me() -> dict[str, t.Any]:
        return {"user": session.get("user"), "lang": session.get("lang")}

    return app
