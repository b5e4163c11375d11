"""What Flask-Login has and Flask-Signoff keeps only so that code using it runs.

Flask-Login's constants (its ``flask_login.config`` module) and its cookie
helpers. Flask-Signoff has no remember cookie and signs nothing with them;
:func:`encode_cookie` and :func:`decode_cookie` are kept, as they were, for
apps that sign values of their own with them.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

#: Flashed when an anonymous visitor is sent to the login view.
LOGIN_MESSAGE = "Please log in to access this page."
LOGIN_MESSAGE_CATEGORY = "message"
#: Flashed when a stale login is sent to re-authenticate.
REFRESH_MESSAGE = "Please reauthenticate to access this page."
REFRESH_MESSAGE_CATEGORY = "message"
#: The method of user objects that returns their id.
ID_ATTRIBUTE = "get_id"
#: Methods that login_required lets through, as in Flask-Login.
EXEMPT_METHODS = frozenset({"OPTIONS"})


def _cookie_digest(payload: str, key: str | bytes | None = None) -> str:
    if key is None:
        key = current_app.config["SECRET_KEY"]
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha512).hexdigest()


def encode_cookie(payload: str, key: str | bytes | None = None) -> str:
    """Sign ``payload`` (Flask-Login's helper, kept for code that uses it)."""
    return f"{payload}|{_cookie_digest(payload, key=key)}"


def decode_cookie(cookie: str, key: str | bytes | None = None) -> str | None:
    """Return the payload of :func:`encode_cookie` output if the digest matches."""
    try:
        payload, digest = cookie.rsplit("|", 1)
    except ValueError:
        return None
    if hmac.compare_digest(_cookie_digest(payload, key=key), digest):
        return payload
    return None


__all__ = [
    "EXEMPT_METHODS",
    "ID_ATTRIBUTE",
    "LOGIN_MESSAGE",
    "LOGIN_MESSAGE_CATEGORY",
    "REFRESH_MESSAGE",
    "REFRESH_MESSAGE_CATEGORY",
    "decode_cookie",
    "encode_cookie",
]
