"""Access tokens: JWTs in the RFC 9068 profile, made and checked with PyJWT.

This module only signs and verifies; it never touches a store. Revocation
(families and epochs) is checked by :class:`~flask_signoff.core.tokens.TokenLifecycle`.

A token carries, besides the registered claims, ``client_id`` (RFC 9068),
``fam`` (the refresh family it belongs to, so that revoking the family kills
it) and ``ep`` (the user's epoch when it was issued, so that "sign out
everywhere" kills it). Its header has ``typ: at+jwt``, so no other JWT signed
with the same key (an ID token, a token of another profile) passes for one.

A token of a user with a security stamp also carries ``ast``, the digest its
family is bound to (:mod:`~flask_signoff.core.stamps`); the Flask layer
refuses it once the user's stamp has changed. It is optional: a token
without it is bound to no stamp.

PyJWT is imported when the first token is made or verified, not with this
module: an app that serves only cookie sessions never loads it (nor the
``cryptography`` package it loads when installed). Telling a token of ours
from a value of another kind (:func:`declares_access_token`) needs no PyJWT.

Time checks are ours, not PyJWT's: PyJWT reads the wall clock, and the core
takes time from an injected clock. Each claim has its own ``_validate_<claim>``
with an explicit leeway, the way PyJWT's own ``api_jwt`` is written.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import math
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from ..exceptions import InvalidToken, TokenExpired
from .keys import JWTKey, KeySet

if TYPE_CHECKING:
    import jwt

#: The ``typ`` header of access tokens (RFC 9068, section 2.1).
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
#: ``typ`` values accepted, compared case-insensitively: media types are
#: case-insensitive and the ``application/`` prefix may be left out
#: (RFC 7515, section 4.1.9).
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Longest token read at all. Ours are well under 1 KiB; anything longer is
#: refused before a byte of it is decoded.
MAX_TOKEN_LENGTH = 8192
#: Claims every access token must carry.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "fam", "ep")
#: Longest ``sub`` and ``client_id`` (what a store column holds).
MAX_ID_LENGTH = 255
#: Longest family id.
MAX_FAMILY_LENGTH = 64
#: Longest ``ast`` (a stamp digest is 43 characters).
MAX_STAMP_LENGTH = 64

# A JWS in compact form: three base64url segments. Anything else (a refresh
# token ``<tag>.<random>``, a JWE, non-ASCII text) is refused before PyJWT.
_COMPACT_RE = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\Z")


@dataclasses.dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified content of an access token."""

    #: The user id (``sub``).
    subject: str
    #: The refresh family the token belongs to (``fam``).
    family_id: str
    #: The client it was issued to (``client_id``); may be empty.
    client_id: str
    #: The user's epoch when it was issued (``ep``).
    epoch: int
    #: The token's unique id (``jti``).
    jwt_id: str
    issued_at: float
    expires_at: float
    #: The ``kid`` of the key that verified it.
    key_id: str
    #: The digest of the user's security stamp at sign-in (``ast``); ``""``
    #: if the token has none (the user had no stamp).
    auth_stamp: str = ""


def _unverified_header(token: str) -> Mapping[str, Any]:
    """The JOSE header, only to choose a key by ``kid``; PyJWT verifies.

    A direct base64 + JSON read of the first segment (whose alphabet
    ``_COMPACT_RE`` has checked): PyJWT's own look at the header would parse
    the whole token once more before ``decode`` parses it again.
    """
    header = _header_of_segment(token.partition(".")[0])
    if header is None:
        _fail("The token is malformed.")
    return header


@functools.lru_cache(maxsize=16)
def _header_of_segment(segment: str) -> Mapping[str, Any] | None:
    """The JSON object a header segment encodes, or ``None``.

    Cached: every token signed with one key has the same header segment, so
    a request reads it from here rather than decoding it again (a header is
    not a secret; at most 16 are kept, each at most ``MAX_TOKEN_LENGTH``).
    Callers only read the mapping.
    """
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        # RecursionError: nested deeper than the parser's stack (3,000
        # arrays fit in a token), which json.loads does not count as a
        # ValueError.
        return None
    return header if isinstance(header, dict) else None


def _fail(description: str) -> NoReturn:
    raise InvalidToken(description)


def _number(payload: dict[str, Any], claim: str) -> float:
    """A NumericDate: a finite JSON number (``true`` is not one)."""
    value = payload[claim]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(f"The {claim!r} claim must be a number.")
    if not math.isfinite(value):
        _fail(f"The {claim!r} claim must be a finite number.")
    return float(value)


def _text(payload: dict[str, Any], claim: str, *, limit: int, empty: bool) -> str:
    value = payload[claim]
    if not isinstance(value, str) or len(value) > limit or (not empty and not value):
        _fail(f"The {claim!r} claim is not valid.")
    return value


def _describe(error: jwt.PyJWTError) -> str:
    """A short description of a PyJWT error, without anything from the token."""
    import jwt

    if isinstance(error, jwt.MissingRequiredClaimError):
        # e.claim is one of REQUIRED_CLAIMS, not text from the token.
        return f"The token lacks the {error.claim!r} claim."
    if isinstance(error, jwt.InvalidAudienceError):
        return "The token is not meant for this audience."
    if isinstance(error, jwt.InvalidIssuerError):
        return "The token was issued by someone else."
    return "The token is malformed."


class AccessTokenCodec:
    """Sign and verify access tokens.

    :param keys: the signing and verifying keys.
    :param issuer: the ``iss`` written and required.
    :param audience: the ``aud`` written and required.
    :param access_ttl: lifetime of a token in seconds; also the longest
        lifetime a token may claim (see :meth:`_validate_lifetime`).
    :param leeway: clock-skew tolerance in seconds for ``exp``, ``nbf`` and
        ``iat``.
    """

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        access_ttl: int,
        leeway: float = 0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.leeway = float(leeway)
        import jwt

        # Our own instance, so that no global PyJWT options set elsewhere in
        # the application apply; short keys are errors, never warnings.
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})

    # -- signing -----------------------------------------------------------

    def encode(
        self,
        *,
        subject: str,
        family_id: str,
        client_id: str,
        epoch: int,
        now: float,
        auth_stamp: str = "",
    ) -> tuple[str, AccessClaims]:
        """Return a new signed token and its claims.

        ``iat`` is ``now`` rounded down and ``exp`` is ``iat + access_ttl``,
        so ``exp`` is never later than ``now + access_ttl``: revocation
        markers rely on that.
        """
        key = self.keys.signing_key
        issued_at = math.floor(now)
        claims = AccessClaims(
            subject=subject,
            family_id=family_id,
            client_id=client_id,
            epoch=epoch,
            jwt_id=secrets.token_urlsafe(16),
            issued_at=issued_at,
            expires_at=issued_at + self.access_ttl,
            key_id=key.kid,
            auth_stamp=auth_stamp,
        )
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": issued_at + self.access_ttl,
            "iat": issued_at,
            "jti": claims.jwt_id,
            "client_id": client_id,
            "fam": family_id,
            "ep": epoch,
        }
        if auth_stamp:
            payload["ast"] = auth_stamp
        token = self._jwt.encode(
            payload,
            key.signing_key,
            algorithm=key.algorithm,
            headers={"typ": TOKEN_TYPE, "kid": key.kid},
        )
        return token, claims

    # -- verifying ---------------------------------------------------------

    def decode(
        self, token: str, now: float, *, check_time: bool = True
    ) -> AccessClaims:
        """Verify a token's signature, header and claims; return its claims.

        :param token: what the client sent, unchecked.
        :param now: the current time.
        :param check_time: ``False`` skips ``exp``, ``nbf``, ``iat`` and the
            lifetime check (for revocation: an expired token is still a
            signed statement of which family it belongs to).
        :raises TokenExpired: if it is past ``exp`` (plus leeway).
        :raises InvalidToken: for anything else wrong. The description is
            short and never contains the token.
        """
        if not isinstance(token, str):
            _fail("The token must be a string.")
        if len(token) > MAX_TOKEN_LENGTH:
            _fail("The token is too long.")
        if not _COMPACT_RE.match(token):
            _fail("The token is not an access token.")
        header = _unverified_header(token)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            _fail("The token's key id is not valid.")
        decoded, key = self._verify_signature(token, kid)
        self._validate_typ(decoded["header"])
        payload: dict[str, Any] = decoded["payload"]
        claims = AccessClaims(
            subject=_text(payload, "sub", limit=MAX_ID_LENGTH, empty=False),
            family_id=_text(payload, "fam", limit=MAX_FAMILY_LENGTH, empty=False),
            client_id=_text(payload, "client_id", limit=MAX_ID_LENGTH, empty=True),
            epoch=self._validate_ep(payload),
            jwt_id=_text(payload, "jti", limit=MAX_ID_LENGTH, empty=False),
            issued_at=_number(payload, "iat"),
            expires_at=_number(payload, "exp"),
            key_id=key.kid,
            auth_stamp=self._validate_ast(payload),
        )
        if check_time:
            self._validate_exp(claims, now)
            self._validate_iat(claims, now)
            self._validate_nbf(payload, now)
            self._validate_lifetime(claims)
        return claims

    def _verify_signature(
        self, token: str, kid: str | None
    ) -> tuple[dict[str, Any], JWTKey]:
        """Find the key that signed ``token``; return the decoded token.

        Each key is tried with its own algorithm only. PyJWT also checks the
        required claims, ``iss`` and ``aud``, but not time (see the module
        docstring).
        """
        import jwt

        candidates = self.keys.candidates(kid)
        if not candidates:
            _fail("The token was signed with an unknown key.")
        for key in candidates:
            try:
                decoded = self._jwt.decode_complete(
                    token,
                    key.verifying_key,
                    algorithms=[key.algorithm],
                    options={
                        "require": list(REQUIRED_CLAIMS),
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "enforce_minimum_key_length": True,
                    },
                    audience=self.audience,
                    issuer=self.issuer,
                )
            except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
                continue  # not signed by this key
            except jwt.PyJWTError as e:
                raise InvalidToken(_describe(e)) from None
            except RecursionError:
                # Older PyJWT releases let it out of their own header
                # parse, which runs deeper in the stack than ours.
                _fail("The token is malformed.")
            return decoded, key
        _fail("The token signature is not valid.")

    @staticmethod
    def _validate_typ(header: Mapping[str, Any]) -> None:
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES:
            _fail("The token is not an access token (typ).")

    @staticmethod
    def _validate_ep(payload: dict[str, Any]) -> int:
        ep = payload["ep"]
        if isinstance(ep, bool) or not isinstance(ep, int) or not 0 <= ep < 2**63:
            _fail("The 'ep' claim is not valid.")
        return ep

    @staticmethod
    def _validate_ast(payload: dict[str, Any]) -> str:
        # Optional: a token of a user without a stamp has none, and then
        # only matches a user who still has none.
        if "ast" not in payload:
            return ""
        return _text(payload, "ast", limit=MAX_STAMP_LENGTH, empty=False)

    def _validate_exp(self, claims: AccessClaims, now: float) -> None:
        # RFC 7519: the token must not be accepted "on or after" exp.
        if claims.expires_at <= now - self.leeway:
            raise TokenExpired("The token has expired.")

    def _validate_iat(self, claims: AccessClaims, now: float) -> None:
        # A token issued in the future (beyond the leeway) was made by a
        # clock that is wrong, or with a key that should not exist: refuse.
        if claims.issued_at > now + self.leeway:
            _fail("The token is not yet valid (iat).")

    def _validate_nbf(self, payload: dict[str, Any], now: float) -> None:
        # We never write nbf, but a signed token that has one is held to it.
        if "nbf" in payload and _number(payload, "nbf") > now + self.leeway:
            _fail("The token is not yet valid (nbf).")

    def _validate_lifetime(self, claims: AccessClaims) -> None:
        # A family's revocation marker is kept for access_ttl + leeway. A
        # token that claims to live longer (signed when access_ttl was
        # larger) would outlive the marker and come back to life: refuse it.
        if claims.expires_at - claims.issued_at > self.access_ttl:
            _fail("The token lives longer than this server allows.")


# A JWS in compact form, the signature possibly empty (``alg: none``): the
# shape of anything that may claim to be an access token.
_JWS_SHAPE_RE = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\Z")


def declares_access_token(token: str) -> bool:
    """Whether ``token`` says it is an access token: three dot-separated
    base64url segments, the first a JOSE header that declares
    ``typ: at+jwt`` (see :data:`ACCEPTED_TYPES`).

    Nothing is verified: this tells an access token, good or forged (an
    unsigned ``alg: none`` one too), from a value of another kind (an API
    key, an ID token, a refresh token), which the Flask layer hands to the
    app's ``request_loader``.
    """
    if len(token) > MAX_TOKEN_LENGTH or not _JWS_SHAPE_RE.match(token):
        return False
    try:
        typ = _unverified_header(token).get("typ")
    except InvalidToken:
        return False
    return isinstance(typ, str) and typ.lower() in ACCEPTED_TYPES
