"""The API before the move: Flask-JWT-Extended 4, with the Redis blocklist
of its documentation.

Clients get an access and a refresh token from ``POST /api/token``, send the
access token as ``Authorization: Bearer``, and a refresh token in the JSON
body of ``POST /api/token/refresh``. ``POST /api/logout`` puts the access
token's ``jti`` on the blocklist. ``after.py`` is the same API on
Flask-Signoff.
"""

from __future__ import annotations

import datetime as dt
import secrets
import typing as t
from collections.abc import Mapping

import redis
from flask import Flask, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    current_user,
    get_jwt,
    get_jwt_identity,
    jwt_required,
)

from ..accounts import ACCOUNTS, Account, check_password

ACCESS_EXPIRES = dt.timedelta(minutes=15)


def create_app(test_config: Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_JWT_SECRET_KEY, FLASK_REDIS_URL ...
    app.config.update(test_config or {})
    app.config.setdefault("JWT_SECRET_KEY", secrets.token_hex(32))  # set one
    app.config.setdefault("JWT_ACCESS_TOKEN_EXPIRES", ACCESS_EXPIRES)
    # The refresh token comes in the JSON body: {"refresh_token": ...}.
    app.config.setdefault("JWT_TOKEN_LOCATION", ["headers", "json"])
    app.config.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    app.config.setdefault("BLOCKLIST_PREFIX", "blocklist:")
    blocklist = redis.Redis.from_url(app.config["REDIS_URL"], decode_responses=True)
    app.extensions["jwt_blocklist"] = blocklist
    prefix = app.config["BLOCKLIST_PREFIX"]
    jwt = JWTManager(app)

    @jwt.user_lookup_loader
    def load_user(
        _header: dict[str, t.Any], payload: dict[str, t.Any]
    ) -> Account | None:
        return ACCOUNTS.get(payload["sub"])

    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict[str, t.Any], payload: dict[str, t.Any]) -> bool:
        return blocklist.get(prefix + payload["jti"]) is not None

    @app.post("/api/token")
    def token() -> tuple[dict[str, t.Any], int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            body = {}
        account = check_password(body.get("username"), body.get("password"))
        if account is None:
            return {"error": "invalid_grant"}, 401
        return {
            "access_token": create_access_token(identity=account.username, fresh=True),
            "refresh_token": create_refresh_token(identity=account.username),
        }, 200

    @app.post("/api/token/refresh")
    @jwt_required(refresh=True)
    def refresh() -> dict[str, t.Any]:
        return {"access_token": create_access_token(identity=get_jwt_identity())}

    @app.get("/api/me")
    @jwt_required()
    def me() -> dict[str, t.Any]:
        return {"user": current_user.username}

    @app.get("/api/hello")
    @jwt_required(optional=True)
    def hello() -> dict[str, t.Any]:
        return {"hello": get_jwt_identity() or "stranger"}

    @app.post("/api/logout")
    @jwt_required()
    def logout() -> tuple[str, int]:
        blocklist.set(prefix + get_jwt()["jti"], "", ex=ACCESS_EXPIRES)
        return "", 204

    return app
