"""API tokens: short-lived access JWTs and rotating refresh-token families.

Framework-free: the Flask layer turns requests into calls on
:class:`TokenLifecycle`, and its answers (or the
:class:`~flask_signoff.exceptions.TokenError` it raises, which carries the
OAuth error code) into responses.

How a sign-in of an API client ends:

- **Family.** :meth:`TokenLifecycle.issue` starts a refresh family; every
  access token names it (``fam``). Revoking the family deletes its refresh
  tokens and leaves a marker, read on every access-token check, that lives
  as long as the family's last access token could (``access_ttl + leeway``).
- **Rotation.** A refresh token works once. Presenting a spent one again
  after the grace window revokes the whole family (RFC 9700, section 4.14.2):
  either the client or a thief is replaying, and we cannot tell which.
- **Epoch.** Every access token carries the user's epoch (``ep``);
  :meth:`~flask_signoff.core.sessions.SessionLifecycle.revoke_user` bumps it
  and so kills every older token of the user at once.
- **Credentials.** A family is bound to the digest of the user's security
  stamp at sign-in (:mod:`~flask_signoff.core.stamps`), and so is every
  access token of it (``ast``). Every refresh asks the application whether
  the user still exists with that stamp (the ``check_user`` callback); if
  not, the family is revoked. The Flask layer checks ``ast`` against the
  user it loads for a Bearer request.

An access-token check costs exactly one store round trip
(:meth:`~flask_signoff.core.store.Store.access_state`); a malformed or forged
token costs none, and nothing here writes because of a token that we did not
issue.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
from collections.abc import Callable

from ..exceptions import (
    ConfigError,
    InvalidGrant,
    InvalidToken,
    RefreshTokenReused,
    TokenRevoked,
)
from .access import AccessClaims, AccessTokenCodec
from .clock import Clock, system_clock
from .ids import hash_secret, new_secret, parse_secret
from .keys import KeySet
from .records import FamilyRecord, ProviderLink, RefreshRecord, SpendStatus
from .store import Store

#: Longest user id and client id accepted (what a store column holds).
MAX_ID_LENGTH = 255

#: ``check_user(user_id, auth_stamp)``: whether the user still exists and
#: ``auth_stamp`` (a family's digest) still matches their security stamp.
UserCheck = Callable[[str, str], bool]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TokenPolicy:
    """Lifetimes and checks of API tokens, in seconds.

    :param issuer: ``iss`` of access tokens (``SIGNOFF_JWT_ISSUER``).
    :param audience: ``aud`` of access tokens (``SIGNOFF_JWT_AUDIENCE``).
    :param access_ttl: lifetime of an access token; a whole number of seconds.
    :param refresh_ttl: absolute lifetime of a refresh family, whatever the
        rotations: the client must sign in again after it.
    :param refresh_grace: how long after a refresh token is spent a retry
        with it is answered ``invalid_grant`` without revoking the family.
        It covers a client that sent the same refresh twice at once (two
        tabs, a retry after a timeout); keep it to a few seconds, since a
        thief who replays inside it goes unnoticed.
    :param leeway: clock-skew tolerance for ``exp``, ``nbf`` and ``iat``.
    """

    issuer: str
    audience: str
    access_ttl: int = 15 * 60
    refresh_ttl: float = 30 * 86400
    refresh_grace: float = 5.0
    leeway: float = 0.0

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ConfigError("SIGNOFF_JWT_ISSUER", self.issuer, "a non-empty string")
        if not self.audience:
            raise ConfigError(
                "SIGNOFF_JWT_AUDIENCE", self.audience, "a non-empty string"
            )
        if not isinstance(self.access_ttl, int) or self.access_ttl < 1:
            raise ConfigError(
                "SIGNOFF_ACCESS_TOKEN_TTL", self.access_ttl, "whole seconds, at least 1"
            )
        if not self.refresh_ttl > 0:
            raise ConfigError(
                "SIGNOFF_REFRESH_TOKEN_TTL", self.refresh_ttl, "a positive duration"
            )
        if not 0 <= self.refresh_grace < self.refresh_ttl:
            raise ConfigError(
                "SIGNOFF_REFRESH_GRACE",
                self.refresh_grace,
                "a small duration, 0 or more (a few seconds)",
            )
        if not 0 <= self.leeway <= 300:
            raise ConfigError("SIGNOFF_TOKEN_LEEWAY", self.leeway, "0 to 300 seconds")


@dataclasses.dataclass(frozen=True, slots=True)
class TokenPair:
    """What a token endpoint returns. The tokens are kept out of ``repr``."""

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    #: Seconds until the access token expires.
    expires_in: int
    family_id: str
    token_type: str = "Bearer"  # noqa: S105 (RFC 6750 scheme name)

    def as_dict(self) -> dict[str, str | int]:
        """The JSON body of a token response (RFC 6749, section 5.1)."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


class RevokeOutcome(enum.Enum):
    """What :meth:`TokenLifecycle.revoke` did. The endpoint answers 200 for all."""

    #: A live refresh token of ours: its family is revoked.
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (RFC 7009 type name)
    #: An access token with a valid signature: its family is revoked.
    ACCESS_TOKEN = "access_token"  # noqa: S105 (RFC 7009 type name)
    #: Nothing we know (malformed, forged, unknown, already revoked or
    #: expired): nothing was written.
    UNKNOWN = "unknown"


class TokenLifecycle:
    """Token rules on top of a :class:`~flask_signoff.core.store.Store`.

    :param store: where families, refresh tokens and epochs live.
    :param keys: the keys that sign and verify access tokens.
    :param policy: lifetimes, issuer and audience.
    :param clock: the time source; tests pass a
        :class:`~flask_signoff.core.clock.FrozenClock`.
    """

    def __init__(
        self,
        store: Store,
        keys: KeySet,
        policy: TokenPolicy,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.keys = keys
        self.policy = policy
        self.clock = clock
        self.codec = AccessTokenCodec(
            keys,
            issuer=policy.issuer,
            audience=policy.audience,
            access_ttl=policy.access_ttl,
            leeway=policy.leeway,
        )

    # -- issuing -----------------------------------------------------------

    def issue(
        self,
        user_id: str,
        client_id: str = "",
        *,
        auth_stamp: str = "",
        link: ProviderLink | None = None,
    ) -> TokenPair:
        """Start a refresh family for a user who just signed in.

        :param user_id: the user, as the app's ``user_loader`` knows them.
        :param client_id: the API client, written in ``client_id``.
        :param auth_stamp: the digest of the stamp of the user whose
            credentials were checked; the family and its access tokens are
            bound to it for their whole life.
        :param link: the OpenID Connect provider session of the sign-in the
            family is issued from, if any: a back-channel logout of it
            revokes the family.
        """
        _check_id("user_id", user_id, empty=False)
        _check_id("client_id", client_id, empty=True)
        now = self.clock()
        # Read the epoch before the family exists; see _new_pair.
        epoch = self.store.get_epoch(user_id)
        family = FamilyRecord(
            family_id=secrets.token_urlsafe(16),
            user_id=user_id,
            created_at=now,
            expires_at=now + self.policy.refresh_ttl,
            client_id=client_id,
            auth_stamp=auth_stamp,
        )
        if link is not None:
            family.oidc_iss, family.oidc_sid = link.iss, link.sid
            family.oidc_sub = link.sub
        refresh_token = new_secret(self.store.user_tag(user_id))
        first = RefreshRecord(
            key=hash_secret(refresh_token),
            family_id=family.family_id,
            user_id=user_id,
            issued_at=now,
            expires_at=family.expires_at,
        )
        self.store.create_family(family, first)
        return self._pair(family, refresh_token, epoch, now)

    def refresh(
        self, refresh_token: str, check_user: UserCheck | None = None
    ) -> TokenPair:
        """Spend a refresh token; return the family's next pair.

        :param check_user: asked, with the family's user id and stamp
            digest, whether that user still exists with those credentials
            (the Flask layer loads the user through the app's
            ``user_loader``). If not, the family is revoked: a deleted
            user's tokens never pass to an account that gets their id, and
            a sign-in that checked a password changed since dies here.
            ``None`` checks nothing.
        :raises InvalidGrant: if the token is malformed, unknown, expired,
            revoked, or was spent within the grace window (a concurrent
            retry: the family lives on, and the request that spent it got
            the new pair); also if ``check_user`` refuses the family, which
            is then revoked.
        :raises RefreshTokenReused: if it was spent before the grace window;
            the family is revoked, access tokens included.
        """
        if not isinstance(refresh_token, str) or parse_secret(refresh_token) is None:
            raise InvalidGrant("The refresh token is not valid.")
        now = self.clock()
        result = self.store.spend_refresh(hash_secret(refresh_token), now)
        record = result.record
        if result.status is SpendStatus.MISSING or record is None:
            raise InvalidGrant("The refresh token is not valid.")
        if result.status is SpendStatus.ALREADY_SPENT:
            # A spent_at in the future (clocks of two servers) counts as
            # "just now": refusing without revoking is the safe mistake.
            if record.spent_at is not None and now - record.spent_at <= (
                self.policy.refresh_grace
            ):
                raise InvalidGrant(
                    "The refresh token was just used by another request; "
                    "retry with the refresh token that request received."
                )
            self.store.revoke_family(
                record.family_id, record.user_id, self._marker_until(now)
            )
            raise RefreshTokenReused(
                "The refresh token was already used; the sign-in it belongs to "
                "is revoked."
            )
        if record.expires_at <= now:
            raise InvalidGrant("The refresh token has expired.")
        # The epoch is read before the next token is added. Sign-out
        # everywhere deletes the families and then bumps the epoch again, so
        # if add_refresh found the family alive, this epoch predates that
        # second bump and the access token issued now dies with the rest.
        epoch = self.store.get_epoch(record.user_id)
        family = self.store.get_family(record.family_id, record.user_id)
        if family is None:
            raise InvalidGrant("The refresh token is not valid.")
        if check_user is not None and not check_user(family.user_id, family.auth_stamp):
            # The user is gone, or their credentials changed since this
            # sign-in: nothing of the family may be used again.
            self.store.revoke_family(
                family.family_id, family.user_id, self._marker_until(now)
            )
            raise InvalidGrant("The refresh token is not valid.")
        next_token = new_secret(self.store.user_tag(record.user_id))
        following = RefreshRecord(
            key=hash_secret(next_token),
            family_id=family.family_id,
            user_id=record.user_id,
            issued_at=now,
            expires_at=family.expires_at,
        )
        if not self.store.add_refresh(following, now):
            # Revoked or expired between the spend and now.
            raise InvalidGrant("The refresh token is not valid.")
        return self._pair(family, next_token, epoch, now)

    def _pair(
        self, family: FamilyRecord, refresh_token: str, epoch: int, now: float
    ) -> TokenPair:
        access_token, _ = self.codec.encode(
            subject=family.user_id,
            family_id=family.family_id,
            client_id=family.client_id,
            epoch=epoch,
            now=now,
            auth_stamp=family.auth_stamp,
        )
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=self.policy.access_ttl,
            family_id=family.family_id,
        )

    # -- verifying ---------------------------------------------------------

    def verify(self, access_token: str) -> AccessClaims:
        """Check a Bearer token; return its claims.

        Signature, header and claims first (no store call for a bad token),
        then exactly one store call for the family and the epoch.

        :raises TokenExpired: if it has expired.
        :raises TokenRevoked: if its family or the user's older tokens were
            revoked.
        :raises InvalidToken: for anything else.
        :raises StoreUnavailable: if the store cannot answer; the request is
            then not authenticated (fail closed).
        """
        now = self.clock()
        claims = self.codec.decode(access_token, now)
        state = self.store.access_state(claims.subject, claims.family_id, now)
        if state.family_revoked:
            raise TokenRevoked("The token was revoked.")
        if claims.epoch < state.epoch:
            raise TokenRevoked("The token was revoked (signed out everywhere).")
        return claims

    # -- revoking ----------------------------------------------------------

    def revoke(self, token: str, token_type_hint: str | None = None) -> RevokeOutcome:
        """Revoke the family of a refresh or access token (RFC 7009).

        Both kinds are looked for whatever ``token_type_hint`` says (it is
        accepted and ignored: the two forms cannot be confused). An access
        token counts only if its signature, header and issuer/audience
        verify; a forged JWT naming someone's family revokes nothing. Its
        expiry is *not* checked: a token we signed still says which family it
        belongs to, and a client signing out with an expired access token
        must still be able to end its refresh family.

        Never raises for a bad token; it may raise
        :class:`~flask_signoff.exceptions.StoreUnavailable`, so that an
        outage is never reported as a successful sign-out.
        """
        del token_type_hint
        if not isinstance(token, str):
            return RevokeOutcome.UNKNOWN
        now = self.clock()
        if parse_secret(token) is not None:
            record = self.store.get_refresh(hash_secret(token))
            if record is None or record.expires_at <= now:
                return RevokeOutcome.UNKNOWN
            self.store.revoke_family(
                record.family_id, record.user_id, self._marker_until(now)
            )
            return RevokeOutcome.REFRESH_TOKEN
        try:
            claims = self.codec.decode(token, now, check_time=False)
        except InvalidToken:
            return RevokeOutcome.UNKNOWN
        self.revoke_family_of_access(claims)
        return RevokeOutcome.ACCESS_TOKEN

    def revoke_family_of_access(self, claims: AccessClaims) -> None:
        """Sign one API client out: revoke the family of a verified token.

        Its refresh tokens are deleted and every access token of the family
        (this one included) is refused from now on. Pass claims returned by
        :meth:`verify` (or decoded by :meth:`revoke`), never unverified ones.
        """
        until = max(
            self._marker_until(self.clock()), claims.expires_at + self.policy.leeway
        )
        self.store.revoke_family(claims.family_id, claims.subject, until)

    def _marker_until(self, now: float) -> float:
        # Every access token of a family was issued at or before now, so it
        # expires by now + access_ttl and is refused after that + leeway.
        return now + self.policy.access_ttl + self.policy.leeway


def _check_id(name: str, value: str, *, empty: bool) -> None:
    if (
        not isinstance(value, str)
        or len(value) > MAX_ID_LENGTH
        or (not empty and not value)
    ):
        raise ValueError(
            f"{name} must be a string of at most {MAX_ID_LENGTH} characters"
            + ("" if empty else ", not empty")
            + "."
        )
