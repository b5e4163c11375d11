"""What one request knows about its authentication, as one object.

:class:`RequestState` is made on first use and kept in ``flask.g`` under one
attribute; every module reads and writes it there rather than keeping loose
attributes of its own on ``g``. It records, once:

- the request's ``Bearer`` credential, if it has one: then it alone
  authenticates the request, never the cookie (the header is read by
  :mod:`flask_signoff.authorization`, and nothing else reads it; any other
  scheme leaves the cookie in charge, so it is not kept here);
- how the user was found (:class:`Credential`), the user, the claims of the
  access token, or why the token was refused;
- the CSRF state of the request and the password checks it reserved.

How the user is found is :func:`flask_signoff.login.get_user`; this module
only holds the answer.
"""

from __future__ import annotations

import dataclasses
import enum
import typing as t

from flask import g, has_request_context, request

from .authorization import BearerToken, MalformedBearer, request_authorization
from .core.access import AccessClaims
from .core.throttle import ReservedAttempts
from .exceptions import TokenError

#: The attribute of ``flask.g`` that holds the :class:`RequestState`.
G_ATTRIBUTE = "_signoff"


class Credential(enum.Enum):
    """What authenticated the request."""

    #: The session cookie, whose record names a user.
    COOKIE = "cookie"
    #: One of our access tokens, sent as a ``Bearer`` token.
    ACCESS_TOKEN = "access_token"  # noqa: S105 (a kind, not a secret)
    #: The app's ``request_loader`` (its own API keys, say).
    REQUEST_LOADER = "request_loader"
    #: Nothing: the request is anonymous.
    NONE = "none"


@dataclasses.dataclass(slots=True, eq=False)
class RequestState:
    """The authentication of one request."""

    #: The ``Bearer`` credential (well formed or not), or ``None``: the
    #: cookie session is in charge.
    bearer: BearerToken | MalformedBearer | None
    #: What authenticated the request; ``None`` until the user is looked up.
    credential: Credential | None = None
    #: The user, or the anonymous user; set with :attr:`credential`.
    user: t.Any = None
    #: The verified claims of the request's access token.
    claims: AccessClaims | None = None
    #: Why the request's Bearer token was refused (answered with RFC 6750).
    token_error: TokenError | None = None
    #: The CSRF check of this request passed.
    csrf_checked: bool = False
    #: A CSRF token was made for this response (which must not be cached).
    csrf_token_made: bool = False
    #: The nonce of this browser's anonymous CSRF tokens, once known.
    csrf_nonce: str | None = None
    #: :attr:`csrf_nonce` is new: its cookie goes out with the response.
    csrf_nonce_is_new: bool = False
    #: Password checks reserved in this request.
    attempts: ReservedAttempts | None = None

    @property
    def user_loaded(self) -> bool:
        """Whether the user has been looked up."""
        return self.credential is not None

    @property
    def by_bearer(self) -> bool:
        """Whether the ``Bearer`` header alone authenticates the request,
        never the cookie (well formed or not)."""
        return self.bearer is not None


def request_state() -> RequestState:
    """The :class:`RequestState` of the current request, made on first use."""
    state: RequestState | None = g.get(G_ATTRIBUTE)
    if state is None:
        header = request_authorization()
        bearer = header if isinstance(header, (BearerToken, MalformedBearer)) else None
        state = RequestState(bearer)
        setattr(g, G_ATTRIBUTE, state)
    return state


def peek_request_state() -> RequestState | None:
    """The :class:`RequestState` if this request made one; never makes one."""
    if not has_request_context():
        return None
    return t.cast("RequestState | None", g.get(G_ATTRIBUTE))


class ClientInfo(t.TypedDict):
    ip: str | None
    user_agent: str | None


def client_info() -> ClientInfo:
    """IP and user agent of the current request, for the session list."""
    if not has_request_context():
        return {"ip": None, "user_agent": None}
    return {
        "ip": request.remote_addr,
        "user_agent": request.headers.get("User-Agent"),
    }


__all__ = [
    "G_ATTRIBUTE",
    "Credential",
    "RequestState",
    "client_info",
    "peek_request_state",
    "request_state",
]
