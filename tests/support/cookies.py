"""The session cookie as a test client holds it, and as a thief would copy it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

#: The session cookie's name with ``SIGNOFF_COOKIE_SECURE`` on (the default;
#: the demo and :mod:`tests.support.csrf_apps`).
HOST_SESSION = "__Host-session"
#: Its name with ``SIGNOFF_COOKIE_SECURE`` off (:mod:`tests.support.apps`).
PLAIN_SESSION = "session"


def session_cookie(client: FlaskClient, name: str = HOST_SESSION) -> str | None:
    """The value of the cookie ``name`` the client holds, if any."""
    cookie = client.get_cookie(name)
    return cookie.value if cookie is not None else None


def set_cookie_header(response: Any, name: str = HOST_SESSION) -> str:
    """The ``Set-Cookie`` header of ``response`` for the cookie ``name``."""
    return next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")
    )


def client_with_cookie(app: Flask, value: str, name: str = HOST_SESSION) -> FlaskClient:
    """A new client that holds only a copy of someone's cookie.

    A ``__Host-`` or ``__Secure-`` cookie is set Secure, as a browser keeps it.
    """
    client = app.test_client()
    secure = name.startswith(("__Host-", "__Secure-"))
    client.set_cookie(name, value, secure=secure)
    return client
