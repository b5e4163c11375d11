"""The API after the move: Flask-Signoff, on the same Redis server.

The same routes and the same client; what changed: no blocklist to write
(``logout_user()`` revokes the token's whole family, refresh token
included), and the refresh token is rotated on every use (``POST
/api/token/refresh`` answers a new pair, and a spent one replayed revokes
the family).
"""

from __future__ import annotations

import secrets
import typing as t
from collections.abc import Mapping

from flask import Flask, request
from werkzeug.wrappers import Response

from flask_signoff import (
    InvalidRequest,
    Signoff,
    UserMixin,
    current_user,
    login_required,
    logout_user,
)
from flask_signoff.bearer import token_required, token_response

from ..accounts import ACCOUNTS, Account, check_password

ACCESS_EXPIRES = 15 * 60


class User(UserMixin):
    """The user of a request, as the ``user_loader`` returns it."""

    def __init__(self, account: Account) -> None:
        self.id = account.username
        self.password_hash = account.password_hash

    def get_security_stamp(self) -> str:
        # A password change revokes every token issued before it.
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
    app.config.setdefault("SIGNOFF_ACCESS_TOKEN_TTL", ACCESS_EXPIRES)
    app.config.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    app.config.setdefault("SIGNOFF_STORE_URL", app.config["REDIS_URL"])
    signoff = Signoff(app)
    signoff.user_loader(load_user)

    @app.post("/api/token")
    def token() -> Response | tuple[dict[str, t.Any], int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            body = {}
        account = check_password(body.get("username"), body.get("password"))
        if account is None:
            return {"error": "invalid_grant"}, 401
        return token_response(signoff.issue_tokens(User(account)).as_dict())

    @app.post("/api/token/refresh")
    def refresh() -> Response:
        body = request.get_json(silent=True)
        value = body.get("refresh_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise InvalidRequest("refresh_token is required.")
        return token_response(signoff.refresh_tokens(value).as_dict())

    @app.get("/api/me")
    @login_required
    def me() -> dict[str, t.Any]:
        return {"user": current_user.id}

    @app.get("/api/hello")
    def hello() -> dict[str, t.Any]:
        user = current_user.id if current_user.is_authenticated else "stranger"
        return {"hello": user}

    @app.post("/api/logout")
    @token_required
    def logout() -> tuple[str, int]:
        logout_user()  # the token's family: this access token and its refresh token
        return "", 204

    return app
