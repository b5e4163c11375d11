"""The one reading of the ``Authorization`` header.

Every part of the extension that cares about the header (loading the user,
the CSRF check, sign-out, the choice between a JSON and an HTML answer,
:func:`~flask_signoff.bearer.bearer_token`) asks :func:`request_authorization`,
so no two of them can disagree about what a header means. The answer is one
of four:

:class:`NoAuthorization`
    No header: the session cookie is in charge.
:class:`OtherScheme`
    Any scheme but ``Bearer`` (``Basic`` from a staging site's gate,
    ``Digest``, ``Negotiate``, ``NTLM``), or text that is no scheme at all.
    Not ours: browsers keep such credentials and send them by themselves, so
    the cookie session stays in charge, with its CSRF and cross-site checks,
    and signing out ends it. The app's ``request_loader`` still sees requests
    that have no signed-in session, as in Flask-Login.
:class:`BearerToken`
    ``Bearer <token>``: the request is authenticated by the token alone,
    never by the cookie, and needs no CSRF token (a page of another site
    cannot add the header without a CORS preflight). If the token is one of
    ours (:attr:`BearerToken.ours`) it is verified here, and a token of ours
    that fails verification is a 401, with no fallback; any other value goes
    to the app's ``request_loader`` (its own API keys), else it is a 401.
:class:`MalformedBearer`
    ``Bearer`` with no token, several, non-ASCII text or an oversized header:
    a 401. Never the cookie either, and no exemption from the CSRF check.
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import request

from .core.access import declares_access_token

#: The header read.
AUTH_HEADER_NAME = "Authorization"
#: Longest ``Bearer`` header read; a longer one is refused unread. Other
#: schemes are not read at all, whatever their size (Kerberos tickets run to
#: tens of kilobytes).
MAX_AUTHORIZATION_LENGTH = 8192


@dataclasses.dataclass(frozen=True, slots=True)
class NoAuthorization:
    """The request has no ``Authorization`` header."""

    #: Whether the request is authenticated by this header, never the cookie.
    by_bearer: t.ClassVar[bool] = False


@dataclasses.dataclass(frozen=True, slots=True)
class OtherScheme:
    """A scheme that is not ``Bearer``: the cookie session stays in charge."""

    #: The scheme, lower-cased (its first 64 characters at most); empty for
    #: a blank header.
    scheme: str
    by_bearer: t.ClassVar[bool] = False


@dataclasses.dataclass(frozen=True, slots=True)
class BearerToken:
    """``Authorization: Bearer <token>``, well formed."""

    token: str
    by_bearer: t.ClassVar[bool] = True

    @property
    def ours(self) -> bool:
        """Whether the token says it is one of our access tokens.

        That is: a compact JWS whose header declares ``typ: at+jwt``
        (:func:`~flask_signoff.core.access.declares_access_token`), signed by
        anyone. Nothing is verified here; a token that says so and fails
        verification is refused, never handed to the app's
        ``request_loader``. API keys, an app's own JWTs and ID tokens say
        nothing of the kind and go to the ``request_loader``.
        """
        return declares_access_token(self.token)


@dataclasses.dataclass(frozen=True, slots=True)
class MalformedBearer:
    """``Authorization: Bearer`` whose token cannot be read: a 401."""

    #: What is wrong, for the ``error_description``; never the header itself.
    description: str
    by_bearer: t.ClassVar[bool] = True


#: What an ``Authorization`` header says.
Authorization = NoAuthorization | OtherScheme | BearerToken | MalformedBearer


def parse_authorization(header: str | None) -> Authorization:
    """Read an ``Authorization`` header value (``None``: no header).

    The scheme is compared case-insensitively (RFC 9110, section 11.1). A
    Bearer token is one run of printable ASCII without whitespace; its exact
    grammar (RFC 6750's ``b64token``) is left to whoever verifies it.
    """
    if header is None:
        return NoAuthorization()
    # Only the scheme is looked at before we know the header is ours.
    words = header[:64].split(maxsplit=1)
    scheme = words[0].lower() if words else ""
    if scheme != "bearer":
        return OtherScheme(scheme)
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        return MalformedBearer("The Authorization header is too long.")
    parts = header.split()
    if len(parts) < 2:
        return MalformedBearer("The Bearer token is missing.")
    token = parts[1]
    if len(parts) > 2 or not token.isascii() or not token.isprintable():
        return MalformedBearer("The Bearer token is malformed.")
    return BearerToken(token)


#: Where the WSGI environ keeps the header (PEP 3333). Read there directly:
#: ``request.headers.get`` builds and catches a ``KeyError`` for every
#: request without one.
_ENVIRON_KEY = "HTTP_" + AUTH_HEADER_NAME.upper()


def request_authorization() -> Authorization:
    """What the current request's ``Authorization`` header says."""
    return parse_authorization(request.environ.get(_ENVIRON_KEY))


__all__ = [
    "AUTH_HEADER_NAME",
    "MAX_AUTHORIZATION_LENGTH",
    "Authorization",
    "BearerToken",
    "MalformedBearer",
    "NoAuthorization",
    "OtherScheme",
    "parse_authorization",
    "request_authorization",
]
