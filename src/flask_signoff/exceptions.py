"""The exceptions Flask-Signoff raises, all rooted at :class:`SignoffError`.

This module never imports Flask, so the framework-free core can raise them too.

.. code-block:: text

    SignoffError
    ├── ConfigError                 a SIGNOFF_* setting (or the store
    │                               server's) is missing or wrong
    ├── StoreError                  the store could not do what was asked
    │   └── StoreUnavailable        the store is unreachable: fail closed (503)
    ├── TokenError                  a token was refused (RFC 6750 / RFC 6749)
    │   ├── InvalidToken            bad access token: 401 invalid_token
    │   │   ├── TokenExpired
    │   │   └── TokenRevoked
    │   ├── InvalidRequest          a token request is malformed: 400
    │   │   └── InvalidLogoutToken  a back-channel logout token is refused
    │   └── InvalidGrant            bad refresh token: 400 invalid_grant
    │       └── RefreshTokenReused  a spent refresh token came back
    ├── RequestRefused              a state-changing request was refused (403)
    │   ├── CSRFError               missing or wrong CSRF token
    │   └── CrossSiteRequest        Sec-Fetch-Site / Origin say cross-site
    ├── TooManyAttempts             too many password checks: wait (429)
    └── ProviderUnavailable         an identity provider's documents or keys
                                    cannot be fetched (503)
"""

from __future__ import annotations


class SignoffError(Exception):
    """Base class of every error Flask-Signoff raises."""


class ConfigError(SignoffError, ValueError):
    """Raised when a ``SIGNOFF_*`` setting has a value that cannot be used,
    or the store's server has a setting that breaks a guarantee (a Redis
    ``maxmemory-policy`` that evicts keys).

    :param key: the config key (or the server's setting).
    :param value: the value found.
    :param expected: what the key accepts, in words.
    :param message: the whole message, when the value is fine but cannot be
        used as things are (a driver is missing, say).
    """

    def __init__(
        self, key: str, value: object, expected: str, *, message: str | None = None
    ) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(
            message or f"{key} = {value!r} is not valid: expected {expected}."
        )


class StoreError(SignoffError):
    """Raised when the store could not carry out an operation."""


class StoreUnavailable(StoreError):
    """Raised when the store cannot be reached or did not answer in time.

    Callers fail closed: nobody is served as authenticated, nothing reports
    success, and no cookie is deleted because of it.

    :param message: what happened, without secrets (no URL password, no key).
    :param backend: the kind of store (``"sqlite"``, ``"postgresql"``,
        ``"redis"``, ``"redis-cluster"``), when known.
    :param operation: the store operation that failed (``"get_session"``),
        when known.
    """

    def __init__(
        self,
        message: str = "The session store is unavailable.",
        *,
        backend: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.backend = backend
        self.operation = operation
        where = " ".join(
            part
            for part in (
                backend,
                f"{operation}()" if operation else None,
            )
            if part
        )
        super().__init__(f"{message} ({where})" if where else message)


class TokenError(SignoffError):
    """Raised when a token is refused.

    :attr:`error` is the OAuth error code sent to the client, and
    :attr:`description` a short human message that never contains the token.
    """

    error = "invalid_token"
    status_code = 401

    def __init__(self, description: str = "The token is not valid.") -> None:
        self.description = description
        super().__init__(description)


class InvalidToken(TokenError):
    """Raised when an access token is malformed, forged or of the wrong type."""


class TokenExpired(InvalidToken):
    """Raised when an access token is past its ``exp``."""


class TokenRevoked(InvalidToken):
    """Raised when an access token's family or epoch was revoked."""


class InvalidRequest(TokenError):
    """Raised when a token request lacks a required parameter."""

    error = "invalid_request"
    status_code = 400


class InvalidLogoutToken(InvalidRequest):
    """Raised when a back-channel logout token is refused (OpenID Connect
    Back-Channel Logout 1.0, 2.6): malformed, forged, expired, replayed or
    missing a claim. :attr:`description` says which rule, never the token.
    """


class InvalidGrant(TokenError):
    """Raised when a refresh token is unknown, expired, spent or revoked."""

    error = "invalid_grant"
    status_code = 400


class RefreshTokenReused(InvalidGrant):
    """Raised when a spent refresh token is presented again (its family dies)."""


class RequestRefused(SignoffError):
    """Raised when a state-changing request must be refused with 403."""

    status_code = 403

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(description)


class CSRFError(RequestRefused):
    """Raised when the CSRF token is missing, malformed or not this session's."""


class CrossSiteRequest(RequestRefused):
    """Raised when ``Sec-Fetch-Site`` or ``Origin`` show a cross-site request."""


class TooManyAttempts(SignoffError):
    """Raised when password checks for an account or an address hit the limit.

    Not a :class:`RequestRefused`: nothing is wrong with the request, the
    client must wait. :attr:`retry_after` is the number of seconds until the
    window ends (the ``Retry-After`` of the 429).

    .. versionchanged:: 0.1
       No longer a subclass of :class:`RequestRefused`.
    """

    status_code = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        self.description = (
            f"Too many failed attempts. Try again in {self.retry_after} seconds."
        )
        super().__init__(self.description)


class ProviderUnavailable(SignoffError):
    """Raised when an OpenID Connect provider's discovery document or signing
    keys cannot be fetched (no answer in time, an error, a document of the
    wrong shape).

    A back-channel logout then answers 503, so that the provider retries; an
    RP-initiated sign-out still ends the local session.
    """
