"""Back-channel logout tokens: validation (OpenID Connect Back-Channel
Logout 1.0, section 2.6; ASVS 5.0 10.5.5).

A provider that ends a user's session POSTs a *logout token*, a JWT it
signed, to the relying party. :class:`LogoutTokenValidator` checks it, one
``_check_<rule>`` per rule, in this order, and raises
:class:`~flask_signoff.exceptions.InvalidLogoutToken` naming the first rule
broken (never the token):

1. a compact JWS of reasonable size, whose header names an algorithm of the
   allow-list (asymmetric only: never ``none``, never ``HS*``, whose "key"
   would be the provider's public key) and, if it has a ``typ``, the type
   ``logout+jwt``; no ``crit`` extension, since we understand none;
2. a signature that verifies with the provider's key for that ``kid``
   (:class:`~flask_signoff.core.discovery.ProviderDocuments`: fetched,
   kept, fetched once more for an unknown ``kid``);
3. ``iss`` exactly the provider's issuer, ``aud`` our client id (or a list
   holding it), ``iat`` present, ``exp`` not passed when present, and
   ``iat`` no older than ``max_age`` whatever ``exp`` says, all with
   ``leeway``;
4. ``events`` holding ``http://schemas.openid.net/event/backchannel-logout``
   with a JSON object;
5. ``sid`` or ``sub`` (strings), or both; no ``nonce`` (which would make it
   an ID token); a ``jti``.

Replay (a ``jti`` seen before) is refused by the caller through the store,
under :func:`replay_key`, until :attr:`LogoutClaims.usable_until`.

Framework-free: the Flask binding is :mod:`flask_signoff.oidc`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import typing as t

import jwt

from ..exceptions import ConfigError, InvalidLogoutToken
from .discovery import ProviderDocuments

#: The event a logout token must carry.
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

#: Algorithms accepted by default: asymmetric, as providers sign with.
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")

#: Algorithms that may be allowed at all: a logout token is verified with the
#: provider's public key, so no MAC (``HS*``) and never ``none``.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    | {"ES256", "ES384", "ES512", "EdDSA"}
)

#: Largest logout token read, in characters.
MAX_TOKEN = 8192

#: Longest ``sid``, ``sub`` or ``jti`` accepted (what a store column holds).
MAX_CLAIM = 255


@dataclasses.dataclass(frozen=True, slots=True)
class LogoutClaims:
    """The claims of a valid logout token that say what to end."""

    issuer: str
    #: The provider session to end; ``""`` if the token has none.
    sid: str
    #: The user at the provider; ``""`` if the token has none.
    sub: str
    jti: str = dataclasses.field(repr=False)
    #: Until when the token would be accepted: the earlier of its ``exp``
    #: and ``iat + max_age``, plus leeway. Its ``jti`` is kept that long.
    usable_until: float


class LogoutTokenValidator:
    """Checks logout tokens of one provider for one client.

    :param documents: the provider's discovery document and keys.
    :param client_id: our client id at the provider (the ``aud``).
    :param algorithms: the allow-list; a subset of :data:`ASYMMETRIC`.
    :param leeway: clock-skew tolerance for ``iat`` and ``exp``, seconds.
    :param max_age: how old a token may be (by its ``iat``), with or
        without ``exp``, seconds.
    :raises ConfigError: for an algorithm outside :data:`ASYMMETRIC`.
    """

    def __init__(
        self,
        documents: ProviderDocuments,
        client_id: str,
        *,
        algorithms: t.Sequence[str] = DEFAULT_ALGORITHMS,
        leeway: float = 60.0,
        max_age: float = 600.0,
    ) -> None:
        refused = [a for a in algorithms if a not in ASYMMETRIC]
        if refused or not algorithms:
            raise ConfigError(
                "algorithms",
                list(algorithms),
                f"asymmetric JWS algorithms among {sorted(ASYMMETRIC)}",
            )
        if not client_id:
            raise ConfigError("client_id", client_id, "a non-empty string")
        self.documents = documents
        self.issuer = documents.issuer
        self.client_id = client_id
        self.algorithms = tuple(algorithms)
        self.leeway = float(leeway)
        self.max_age = float(max_age)

    def validate(self, token: object, now: float) -> LogoutClaims:
        """Check ``token``; return what it asks to end.

        :raises InvalidLogoutToken: the token breaks a rule (400).
        :raises ProviderUnavailable: the provider's keys cannot be fetched
            (503: the provider should send it again).
        """
        header = self._check_form(token)
        assert isinstance(token, str)
        payload = self._check_signature(token, header)
        usable_until = self._check_times(payload, now)
        self._check_issuer_and_audience(payload)
        self._check_events(payload)
        sid, sub, jti = self._check_subject(payload)
        return LogoutClaims(self.issuer, sid, sub, jti, usable_until)

    # -- the rules, in order ---------------------------------------------------

    def _check_form(self, token: object) -> dict[str, t.Any]:
        if not isinstance(token, str) or not token:
            raise InvalidLogoutToken("The logout_token is missing.")
        if len(token) > MAX_TOKEN or token.count(".") != 2:
            raise InvalidLogoutToken("The logout_token is not a signed JWT.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidLogoutToken("The logout_token is not a signed JWT.") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidLogoutToken(
                f"The logout_token's algorithm {alg!r} is not accepted."
            )
        typ = header.get("typ")
        if typ is not None and (
            not isinstance(typ, str)
            or typ.lower().removeprefix("application/") != "logout+jwt"
        ):
            raise InvalidLogoutToken("The logout_token's typ is not logout+jwt.")
        if "crit" in header:
            raise InvalidLogoutToken("The logout_token has critical extensions.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidLogoutToken("The logout_token's kid is not a string.")
        return header

    def _check_signature(
        self, token: str, header: dict[str, t.Any]
    ) -> dict[str, t.Any]:
        alg = header["alg"]
        key = self.documents.signing_key(header.get("kid"), alg)
        if key is None:
            raise InvalidLogoutToken(
                "The logout_token is signed with a key the provider does not publish."
            )
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                # Claims are checked below, each with its own message.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidLogoutToken(
                "The logout_token's signature is not valid."
            ) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            # A key that does not fit the algorithm (curve, size) included.
            raise InvalidLogoutToken("The logout_token cannot be verified.") from None
        if not isinstance(payload, dict):
            raise InvalidLogoutToken("The logout_token's claims are not an object.")
        return payload

    def _check_times(self, payload: dict[str, t.Any], now: float) -> float:
        iat = _number(payload, "iat")
        if iat is None:
            raise InvalidLogoutToken("The logout_token has no iat.")
        if iat > now + self.leeway:
            raise InvalidLogoutToken("The logout_token was issued in the future.")
        exp = _number(payload, "exp")
        if "exp" in payload and exp is None:
            raise InvalidLogoutToken("The logout_token's exp is not a number.")
        # An exp further away than max_age does not stretch the window: the
        # jti is kept as long as the token is accepted, and a long-lived
        # token would both fill the store and, once a store forgot its jti,
        # end the user's sessions again for as long as a copy is replayed.
        # Back-Channel Logout 1.0 2.6 lets iat bound a token's age, as for
        # ID tokens; ASVS 10.5.5 asks for a short expiry.
        oldest = iat + self.max_age
        until = (oldest if exp is None else min(exp, oldest)) + self.leeway
        if now >= until:
            raise InvalidLogoutToken("The logout_token has expired.")
        return until

    def _check_issuer_and_audience(self, payload: dict[str, t.Any]) -> None:
        if payload.get("iss") != self.issuer:
            raise InvalidLogoutToken("The logout_token's iss is not the provider.")
        aud = payload.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.client_id not in audiences:
            raise InvalidLogoutToken("The logout_token is not meant for this client.")

    def _check_events(self, payload: dict[str, t.Any]) -> None:
        events = payload.get("events")
        if not isinstance(events, dict) or not isinstance(
            events.get(LOGOUT_EVENT), dict
        ):
            raise InvalidLogoutToken(
                "The logout_token's events claim has no back-channel logout event."
            )

    def _check_subject(self, payload: dict[str, t.Any]) -> tuple[str, str, str]:
        if "nonce" in payload:
            raise InvalidLogoutToken("A logout_token must not have a nonce.")
        sid, sub = _string(payload, "sid"), _string(payload, "sub")
        if not sid and not sub:
            raise InvalidLogoutToken("The logout_token has neither sid nor sub.")
        jti = _string(payload, "jti")
        if not jti:
            raise InvalidLogoutToken("The logout_token has no jti.")
        return sid, sub, jti


def _number(payload: dict[str, t.Any], name: str) -> float | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    # JSON as Python reads it allows NaN and Infinity: no time is either.
    return number if math.isfinite(number) else None


def _string(payload: dict[str, t.Any], name: str) -> str:
    """The claim ``name``: ``""`` if absent; refused if not a usable string."""
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM:
        raise InvalidLogoutToken(f"The logout_token's {name} is not valid.")
    return value


def replay_key(key: bytes, issuer: str, jti: str) -> str:
    """The store key under which a token's ``jti`` is reserved.

    HMAC-SHA256 of the issuer and the ``jti`` under ``key`` (a labelled
    subkey of ``SECRET_KEY``): the store learns neither, and two providers'
    ``jti`` values never collide.
    """
    material = f"{len(issuer)}:{issuer}{jti}".encode("utf-8", "surrogatepass")
    return "bcl:" + hmac.new(key, material, hashlib.sha256).hexdigest()[:40]
