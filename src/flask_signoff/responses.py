"""Every response the extension answers with by itself, built in one place.

=====  ====================================  =====================================
code   when                                  body
=====  ====================================  =====================================
503    the store is unreachable              ``store_unavailable``; HTML for pages
429    too many password checks              ``too_many_attempts``; ``Retry-After``
401    a refused Bearer token (RFC 6750)     ``invalid_token``; ``WWW-Authenticate``
400    a bad token request (RFC 6749, 5.2)   ``invalid_grant``, ``invalid_request``
401    sign-in required, for an API client   ``unauthorized``
403    CSRF token or cross-site check        ``csrf``, ``cross_site_request``
=====  ====================================  =====================================

API clients (a JSON request, a ``Bearer`` header, or an ``Accept`` that
prefers JSON) get ``{"error": ..., "message": ...}``; browsers get a short
HTML page. Every one is ``Cache-Control: no-store``, and none touches the
session cookie.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Mapping

from flask import Response, current_app, has_request_context, request
from markupsafe import escape

from .exceptions import CrossSiteRequest, RequestRefused, TokenError, TooManyAttempts
from .request import request_state

logger = logging.getLogger("flask_signoff")

#: The message of the 503 answer.
UNAVAILABLE_MESSAGE = (
    "The sign-in service is temporarily unavailable. You have not been signed "
    "out; please try again in a moment."
)


def wants_json() -> bool:
    """Whether the current request is an API client's (JSON answers)."""
    # A Bearer client is an API client; a browser sends Basic (or
    # Negotiate ...) credentials on every request and still wants HTML.
    if request.is_json or request_state().by_bearer:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def json_response(body: t.Any, status: int) -> Response:
    """A JSON response of the current app's response class."""
    return current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype="application/json"
    )


def token_response(payload: Mapping[str, t.Any], status: int = 200) -> Response:
    """A JSON response that carries tokens: never cached (RFC 6749, 5.1)."""
    response = json_response(dict(payload), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def token_error_response(error: TokenError) -> Response:
    """The RFC 6750 / RFC 6749 answer to a token error."""
    body = {"error": error.error, "error_description": error.description}
    response = json_response(body, error.status_code)
    if error.status_code == 401:
        description = error.description.replace('"', "'")
        response.headers["WWW-Authenticate"] = (
            f'Bearer error="{error.error}", error_description="{description}"'
        )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _fill(response: Response, status: int, code: str, title: str, text: str) -> None:
    """Give ``response`` the JSON or HTML body of an error, in place."""
    if has_request_context() and wants_json():
        response.set_data(current_app.json.dumps({"error": code, "message": text}))
        response.mimetype = "application/json"
    else:
        response.set_data(
            f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}"
            f"</title><h1>{title}</h1><p>{escape(text)}</p></html>"
        )
        response.mimetype = "text/html"
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"


def replace_with_unavailable(response: Response) -> None:
    """Turn ``response`` into the 503 answer, in place.

    For a store that failed while the response was being saved: whatever the
    view answered, the request did not happen as it says.
    """
    _fill(
        response, 503, "store_unavailable", "Service unavailable", UNAVAILABLE_MESSAGE
    )
    response.headers["Retry-After"] = "5"
    # Never touch the session cookie during an outage.
    response.headers.pop("Set-Cookie", None)


def unavailable_response() -> Response:
    """503 with a clear body (JSON or HTML) and no traceback."""
    response = current_app.response_class()
    replace_with_unavailable(response)
    return response


def too_many_attempts_response(error: TooManyAttempts) -> Response:
    """429 with ``Retry-After``: the client must wait."""
    response = current_app.response_class()
    _fill(response, 429, "too_many_attempts", "Too many attempts", error.description)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def refused_response(error: RequestRefused) -> Response:
    """403 to a refused state-changing request (CSRF or cross-site)."""
    logger.info("Refused a state-changing request: %s", error.description)
    code = "cross_site_request" if isinstance(error, CrossSiteRequest) else "csrf"
    response = current_app.response_class()
    text = error.description
    if not wants_json():
        text += " Nothing was changed. Go back, reload the page and try again."
    _fill(response, error.status_code, code, "Request refused", text)
    return response


def unauthorized_response() -> Response:
    """401 to an API client that reached a protected view unauthenticated."""
    response = json_response(
        {"error": "unauthorized", "message": "Sign-in required."}, 401
    )
    if request_state().by_bearer:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


__all__ = [
    "UNAVAILABLE_MESSAGE",
    "json_response",
    "refused_response",
    "replace_with_unavailable",
    "token_error_response",
    "token_response",
    "too_many_attempts_response",
    "unauthorized_response",
    "unavailable_response",
    "wants_json",
]
