"""What Flask-Login has and Flask-Signoff keeps only so that code using it runs.

Flask-Login's constants (its ``flask_login.config`` module) and its cookie
helpers. Flask-Signoff has no remember cookie and signs nothing with them;
:func:`encode_cookie` and :func:`decode_cookie` are kept, as they were, for
apps that sign values of their own with them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import current_app

from .authorization import AUTH_HEADER_NAME as AUTH_HEADER_NAME

# Flask-Login's remember cookie, which Flask-Signoff does not have: the
# names keep Flask-Login's values so that code reading them still runs,
# but no cookie is set with them (``remember=True`` makes the session
# cookie itself persistent).
COOKIE_NAME = "remember_token"
COOKIE_DURATION = dt.timedelta(days=365)
COOKIE_SECURE = False
COOKIE_HTTPONLY = True
COOKIE_SAMESITE = None

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
#: The keys Flask-Login keeps in ``flask.session``. Flask-Signoff keeps
#: none of them there (the session's auth data is in its server-side record).
SESSION_KEYS = {
    "_user_id",
    "_remember",
    "_remember_seconds",
    "_id",
    "_fresh",
    "next",
}
#: The default of the ``USE_SESSION_FOR_NEXT`` setting: ``next`` goes in the
#: login URL's query, not in ``session["next"]``.
USE_SESSION_FOR_NEXT = False


def _secret_key(key: str | bytes | None = None) -> bytes:
    """The key :func:`encode_cookie` signs with: ``key`` or the app's
    ``SECRET_KEY``, as bytes (Flask-Login's helper)."""
    if key is None:
        key = current_app.config["SECRET_KEY"]
    if isinstance(key, str):
        # Latin-1, as Flask-Login, so a str key signs as it did there (a
        # key of code points up to U+00FF is its bytes); UTF-8 for others,
        # which Latin-1 cannot encode.
        try:
            return key.encode("latin-1")
        except UnicodeEncodeError:
            return key.encode("utf-8")
    return key


def _cookie_digest(payload: str, key: str | bytes | None = None) -> str:
    return hmac.new(
        _secret_key(key), payload.encode("utf-8"), hashlib.sha512
    ).hexdigest()


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
    "AUTH_HEADER_NAME",
    "COOKIE_DURATION",
    "COOKIE_HTTPONLY",
    "COOKIE_NAME",
    "COOKIE_SAMESITE",
    "COOKIE_SECURE",
    "EXEMPT_METHODS",
    "ID_ATTRIBUTE",
    "LOGIN_MESSAGE",
    "LOGIN_MESSAGE_CATEGORY",
    "REFRESH_MESSAGE",
    "REFRESH_MESSAGE_CATEGORY",
    "SESSION_KEYS",
    "USE_SESSION_FOR_NEXT",
    "decode_cookie",
    "encode_cookie",
]
