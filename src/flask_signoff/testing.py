"""Test helpers: ``FlaskLoginClient`` and :func:`sign_in_client`.

``FlaskLoginClient`` works as in Flask-Login (``app.test_client(user=user)``),
but signs the user in for real: a server-side session is created and its id
set as the client's cookie, so the test exercises the same path as a browser.
The pytest fixtures are in :mod:`flask_signoff.pytest_plugin`.
"""

from __future__ import annotations

import typing as t

from flask import Flask
from flask.testing import FlaskClient

from .state import get_state


def sign_in_client(
    client: FlaskClient,
    user: t.Any,
    *,
    fresh: bool = True,
    remember: bool = False,
) -> str:
    """Create a real session for ``user`` and give ``client`` its cookie.

    Returns the session id (the cookie value), for tests that replay it.
    """
    app: Flask = client.application
    state = get_state(app)
    user_id = getattr(user, state.manager.id_attribute)()
    secret, _record = state.lifecycle.sign_in(
        str(user_id),
        fresh=fresh,
        remember=remember,
        auth_stamp=state.stamps.digest(str(user_id), user),
    )
    name = state.interface.get_cookie_name(app)
    client.set_cookie(
        name,
        secret,
        domain=state.interface.get_cookie_domain(app) or "localhost",
        path=state.interface.get_cookie_path(app),
        secure=state.interface.get_cookie_secure(app),
        httponly=True,
    )
    return secret


class FlaskLoginClient(FlaskClient):
    """A test client that starts signed in: ``app.test_client(user=user)``.

    ``fresh_login=False`` makes the login stale, as in Flask-Login.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        user = kwargs.pop("user", None)
        fresh = kwargs.pop("fresh_login", True)
        super().__init__(*args, **kwargs)
        if user is not None:
            sign_in_client(self, user, fresh=fresh)
