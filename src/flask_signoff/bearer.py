"""Bearer access tokens in a Flask app: the request's token, the API views.

A request with a ``Bearer`` token is authenticated by that token alone,
never by falling back to the cookie; other schemes leave the cookie in
charge (what the header means is decided in one place,
:mod:`flask_signoff.authorization`, and kept in the request's
:class:`~flask_signoff.request.RequestState`). Our access tokens are checked
by :class:`~flask_signoff.core.tokens.TokenLifecycle` (signature, claims,
then one store read for revocation) when the user is looked up
(:func:`flask_signoff.login.get_user`); other Bearer values go to the app's
``request_loader``.

For token endpoints: :func:`token_response` (``Cache-Control: no-store``)
and :func:`json_response`. Errors become RFC 6750 / RFC 6749 answers
(:func:`~flask_signoff.responses.token_error_response`): ``401`` with
``WWW-Authenticate: Bearer error="invalid_token"`` for a bad access token,
``400 {"error": "invalid_grant"}`` for a bad refresh token.

.. versionchanged:: 0.1
   Was ``flask_signoff.tokens``, a name it shared with
   :mod:`flask_signoff.core.tokens`.
"""

from __future__ import annotations

import functools
import typing as t
from collections.abc import Callable

from flask import current_app

from .authorization import BearerToken, MalformedBearer
from .core.access import AccessClaims
from .exceptions import InvalidToken
from .login import get_user
from .request import request_state
from .responses import json_response as json_response
from .responses import token_error_response
from .responses import token_response as token_response

F = t.TypeVar("F", bound=Callable[..., t.Any])


def bearer_token() -> str | None:
    """The Bearer token of this request, or ``None`` if it has none.

    Whether it is one of ours is not checked here (see
    :attr:`~flask_signoff.authorization.BearerToken.ours`).

    :raises InvalidToken: for a ``Bearer`` header that is empty, oversized
        or not a single token.
    """
    bearer = request_state().bearer
    if isinstance(bearer, MalformedBearer):
        raise InvalidToken(bearer.description)
    return bearer.token if isinstance(bearer, BearerToken) else None


def current_token() -> AccessClaims | None:
    """The verified claims of this request's access token, if it has one."""
    get_user()
    return request_state().claims


def token_required(func: F) -> F:
    """Refuse requests that are not authenticated by a Bearer access token.

    For API endpoints that a cross-site form carrying only the cookie must
    never reach (``/api/logout``): a cookie alone gets 401.
    """

    @functools.wraps(func)
    def decorated_view(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if current_token() is None:
            error = request_state().token_error or InvalidToken(
                "A Bearer access token is required."
            )
            return token_error_response(error)
        return current_app.ensure_sync(func)(*args, **kwargs)

    return t.cast(F, decorated_view)


__all__ = [
    "bearer_token",
    "current_token",
    "json_response",
    "token_required",
    "token_response",
]
