"""API token endpoints of the demo: not implemented yet.

Every route of the contract exists and answers ``501 {"error":
"not_implemented"}``. This module is the one place to replace with the real
endpoints (``/api/token``, ``/api/token/refresh``, ``/api/token/revoke``,
``/api/logout``, ``/api/logout-all``) and the Bearer loader of ``/api/me``.

The blueprint is exempt from the app-wide CSRF check: these endpoints
authenticate by their request body or by the ``Authorization`` header, never
by the session cookie, so a cross-site form post carrying only the cookie can
do nothing through them.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint, Request, jsonify
from werkzeug.wrappers import Response

from flask_signoff import csrf_exempt

bp = csrf_exempt(Blueprint("api_tokens", __name__, url_prefix="/api"))


def load_user_from_bearer(request: Request) -> t.Any:
    """The user of an ``Authorization: Bearer`` request; none until tokens exist."""
    del request
    return None


def _not_implemented() -> Response:
    response = jsonify(
        error="not_implemented", message="API tokens are not available yet."
    )
    response.status_code = 501
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/token")
def token() -> Response:
    return _not_implemented()


@bp.post("/token/refresh")
def refresh() -> Response:
    return _not_implemented()


@bp.post("/token/revoke")
def revoke() -> Response:
    return _not_implemented()


@bp.post("/logout")
def logout() -> Response:
    return _not_implemented()


@bp.post("/logout-all")
def logout_all() -> Response:
    return _not_implemented()
