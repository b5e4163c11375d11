"""API token endpoints of the demo (RFC 6749 token responses, RFC 7009).

- ``POST /api/token`` JSON ``{"username", "password"}``: a new pair.
- ``POST /api/token/refresh`` JSON ``{"refresh_token"}``: the next pair; a
  replayed refresh token revokes its whole family.
- ``POST /api/token/revoke`` form ``token`` (``token_type_hint`` ignored but
  allowed): 200 whether or not the token was valid.
- ``POST /api/logout`` (Bearer): this token's family ends, access and refresh.
- ``POST /api/logout-all`` (Bearer): every session and token of the user ends.

The blueprint is exempt from the app-wide CSRF check: these endpoints
authenticate by their request body or by the ``Authorization`` header, never
by the session cookie, so a cross-site form post carrying only the cookie can
do nothing through them (``token_required`` refuses the cookie).
"""

from __future__ import annotations

import typing as t

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

from flask_signoff import InvalidRequest, csrf_exempt, logout_user
from flask_signoff.bearer import json_response, token_required, token_response

if t.TYPE_CHECKING:
    from flask_signoff import Signoff

    from .users import UserStore

bp = csrf_exempt(Blueprint("api_tokens", __name__, url_prefix="/api"))


def _signoff() -> Signoff:
    return t.cast("Signoff", current_app.login_manager)  # type: ignore[attr-defined]


def _json_field(name: str) -> str:
    """A string field of the JSON body; 400 invalid_request if it is missing
    or not text."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        # Nested deeper than the parser's stack: as malformed as any body
        # that get_json(silent=True) turns into None, but not a ValueError.
        body = None
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} is required.")
    try:
        # A JSON escape can make a lone surrogate ("\ud800"), which no
        # UTF-8 text can hold: not a name, password or token of anyone.
        value.encode()
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} is not valid text.") from None
    return value


@bp.post("/token")
def token() -> Response:
    users: UserStore = current_app.extensions["demo_users"]
    username = _json_field("username")
    password = _json_field("password")
    signoff = _signoff()
    attempt = signoff.reserve_attempt(username)  # 429 when none is left
    user = users.authenticate(username, password) if len(password) <= 1024 else None
    if user is None:
        return json_response(
            {
                "error": "invalid_grant",
                "error_description": "Wrong username or password.",
            },
            401,
        )
    attempt.succeeded()
    return token_response(signoff.issue_tokens(user, client_id="demo").as_dict())


@bp.post("/token/refresh")
def refresh() -> Response:
    return token_response(
        _signoff().refresh_tokens(_json_field("refresh_token")).as_dict()
    )


@bp.post("/token/revoke")
def revoke() -> Response:
    value = request.form.get("token", "")
    if not value:
        raise InvalidRequest("token is required.")
    _signoff().revoke_token(value, request.form.get("token_type_hint"))
    return token_response({})


@bp.post("/logout")
@token_required
def logout() -> Response:
    logout_user()
    return Response(status=204, headers={"Cache-Control": "no-store"})


@bp.post("/logout-all")
@token_required
def logout_all() -> Response:
    logout_user(everywhere=True)
    return Response(status=204, headers={"Cache-Control": "no-store"})
