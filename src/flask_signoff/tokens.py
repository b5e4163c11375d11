"""API tokens in Flask: Bearer authentication, token responses, errors.

A request with a ``Bearer`` token is authenticated by that token alone,
never by falling back to the cookie; other schemes leave the cookie in
charge (what a header means is decided in one place,
:mod:`flask_signoff.authorization`). Our access tokens are checked by
:class:`~flask_signoff.core.tokens.TokenLifecycle` (signature, claims, then
one store read for revocation); other Bearer values go to the app's
``request_loader``.

Errors become RFC 6750 / RFC 6749 answers: ``401`` with
``WWW-Authenticate: Bearer error="invalid_token"`` for a bad access token,
``400 {"error": "invalid_grant"}`` for a bad refresh token, always with a
JSON body and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import functools
import threading
import typing as t
from collections.abc import Callable, Mapping

from flask import Flask, Response, current_app, g

from .authorization import MAX_AUTHORIZATION_LENGTH as MAX_AUTHORIZATION_LENGTH
from .authorization import BearerToken, MalformedBearer, request_authorization
from .config import Settings
from .core.access import AccessClaims
from .core.keys import JWTKey, KeySet
from .core.tokens import TokenLifecycle
from .exceptions import ConfigError, InvalidToken, TokenError

F = t.TypeVar("F", bound=Callable[..., t.Any])


def build_keys(
    settings: Settings, secret_key: t.Any, secret_key_fallbacks: t.Any
) -> KeySet | None:
    """The key set for access tokens, or ``None`` if ``SECRET_KEY`` is not set yet.

    In order of precedence: ``SIGNOFF_JWT_PRIVATE_KEY`` (asymmetric; older
    public keys in ``SIGNOFF_JWT_PUBLIC_KEYS``, oldest first), an explicit
    ``SIGNOFF_JWT_SECRET_KEY`` (older ones in
    ``SIGNOFF_JWT_SECRET_KEY_FALLBACKS``), else a labelled subkey of
    ``SECRET_KEY`` and of each of Flask's ``SECRET_KEY_FALLBACKS``.
    """
    algorithm = settings.jwt_algorithm
    if settings.jwt_private_key is not None:
        older = [
            JWTKey.asymmetric(algorithm, public_key=pem)
            for pem in settings.jwt_public_keys
        ]
        newest = JWTKey.asymmetric(algorithm, private_key=settings.jwt_private_key)
        return KeySet([*older, newest])
    explicit = settings.jwt_secret_key
    if explicit is not None:
        if explicit == secret_key:
            raise ConfigError(
                "SIGNOFF_JWT_SECRET_KEY",
                "<the SECRET_KEY>",
                "a key of its own, or unset to derive one from SECRET_KEY",
            )
        keys = [*settings.jwt_secret_key_fallbacks, explicit]
        return KeySet(JWTKey.hmac(k, algorithm=algorithm) for k in keys)
    if not secret_key:
        return None
    fallbacks = secret_key_fallbacks or []
    return KeySet.from_secret_keys([*fallbacks, secret_key], algorithm=algorithm)


class TokenService:
    """The token lifecycle of one app; its keys are read once.

    At ``init_app`` if they are known then; else (``SECRET_KEY`` set later,
    by an app factory or a test) at the first token operation that finds
    them. Changing ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS`` or a
    ``SIGNOFF_JWT_*`` key afterwards changes nothing until the app restarts,
    which is how keys are rotated anyway; so no request pays for comparing
    the config with what was read.
    """

    def __init__(self, app: Flask) -> None:
        from .extension import get_state

        state = get_state(app)
        self._state = state
        self.policy = state.settings.token_policy
        self._config = app.config
        self._lifecycle: TokenLifecycle | None = None
        self._lock = threading.Lock()
        # Validate what can be validated now; SECRET_KEY may come later.
        self.lifecycle_or_none()

    def lifecycle_or_none(self) -> TokenLifecycle | None:
        """The lifecycle, or ``None`` while no key is known."""
        lifecycle = self._lifecycle
        if lifecycle is not None:
            return lifecycle
        with self._lock:
            if self._lifecycle is None:
                keys = build_keys(
                    self._state.settings,
                    self._config.get("SECRET_KEY"),
                    self._config.get("SECRET_KEY_FALLBACKS"),
                )
                if keys is None:
                    return None
                self._lifecycle = TokenLifecycle(
                    self._state.store, keys, self.policy, self._state.clock
                )
            return self._lifecycle

    @property
    def lifecycle(self) -> TokenLifecycle:
        lifecycle = self.lifecycle_or_none()
        if lifecycle is None:
            raise RuntimeError(
                "API tokens need a key: set SECRET_KEY (a subkey is derived from "
                "it) or SIGNOFF_JWT_SECRET_KEY."
            )
        return lifecycle


def bearer_token() -> str | None:
    """The Bearer token of this request, or ``None`` if it has none.

    Whether it is one of ours is not checked here (see
    :attr:`~flask_signoff.authorization.BearerToken.ours`).

    :raises InvalidToken: for a ``Bearer`` header that is empty, oversized
        or not a single token.
    """
    auth = request_authorization()
    if isinstance(auth, MalformedBearer):
        raise InvalidToken(auth.description)
    return auth.token if isinstance(auth, BearerToken) else None


def json_response(body: t.Any, status: int) -> Response:
    """A JSON response of the current app's response class."""
    return current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype="application/json"
    )


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


def token_response(payload: Mapping[str, t.Any], status: int = 200) -> Response:
    """A JSON response that carries tokens: never cached (RFC 6749, 5.1)."""
    response = json_response(dict(payload), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def current_token() -> AccessClaims | None:
    """The verified claims of this request's access token, if it has one."""
    from .utils import _get_user

    _get_user()
    return t.cast("AccessClaims | None", g.get("_signoff_claims"))


def token_required(func: F) -> F:
    """Refuse requests that are not authenticated by a Bearer access token.

    For API endpoints that a cross-site form carrying only the cookie must
    never reach (``/api/logout``): a cookie alone gets 401.
    """

    @functools.wraps(func)
    def decorated_view(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if current_token() is None:
            error = g.get("_signoff_token_error") or InvalidToken(
                "A Bearer access token is required."
            )
            return token_error_response(error)
        return current_app.ensure_sync(func)(*args, **kwargs)

    return t.cast(F, decorated_view)
