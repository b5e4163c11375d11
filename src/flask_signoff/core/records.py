"""The records a store keeps. Times are Unix seconds (``float``)."""

from __future__ import annotations

import dataclasses
import enum


@dataclasses.dataclass(slots=True)
class SessionRecord:
    """One server-side session, keyed by the hash of its secret id.

    ``data`` is the application's session dict, already serialized by the
    framework layer; the core never looks inside it.
    """

    #: ``hash_secret(id)``, ``<tag>.<sha256>``: the only form a store sees.
    key: str
    #: The routing tag of the id (see :mod:`flask_signoff.core.ids`).
    tag: str
    #: Opaque id shown in session lists; not the id, not its hash.
    public_id: str
    #: The signed-in user, or ``None`` for an anonymous session with data.
    user_id: str | None
    data: str
    created_at: float
    last_seen_at: float
    #: Hard end: sign-in + absolute timeout, or + remember duration.
    expires_at: float
    #: When the store may drop the record: ``expires_at`` or the idle deadline.
    drop_at: float
    remember: bool = False
    #: The login counts as fresh until then (0: not fresh).
    fresh_until: float = 0.0
    ip: str | None = None
    user_agent: str | None = None
    #: HMAC of the user's security stamp when the session was signed in
    #: (:mod:`flask_signoff.core.stamps`); ``""`` if the user had none. Set
    #: at sign-in and at rotation only: a save never changes it.
    auth_stamp: str = ""
    #: The OpenID Connect provider session this session came from
    #: (:mod:`flask_signoff.oidc`): the provider's ``iss``, its ``sid`` (``""``
    #: when the ID token had none) and the user's ``sub`` there. All ``""``
    #: for a sign-in with a password. Set at sign-in; rotation keeps them.
    oidc_iss: str = ""
    oidc_sid: str = ""
    oidc_sub: str = ""
    #: The raw ID token of that sign-in, sent back to the provider as
    #: ``id_token_hint`` at sign-out. Kept on the record, never in the
    #: session data, so the application cannot change it, it never moves to
    #: the session that sign-out keeps, and it dies with the record.
    oidc_id_token: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderLink:
    """The OpenID Connect provider session a sign-in came from.

    Copied into the :class:`SessionRecord` of the sign-in (``oidc_*``) and
    into every :class:`FamilyRecord` issued from that session, so that a
    back-channel logout of ``(iss, sid)`` or ``(iss, sub)`` finds them all.
    """

    iss: str
    #: ``""`` when the ID token had no ``sid``.
    sid: str
    sub: str
    #: The raw ID token (sessions only), for ``id_token_hint``.
    id_token: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(slots=True)
class FamilyRecord:
    """A refresh-token family: one sign-in of one API client."""

    family_id: str
    user_id: str
    created_at: float
    #: Absolute end of the family, whatever the rotations.
    expires_at: float
    client_id: str = ""
    #: HMAC of the user's security stamp at sign-in, as on sessions; every
    #: access token of the family carries it (``ast``).
    auth_stamp: str = ""
    #: The provider session of the cookie session the family was issued
    #: from (see :class:`SessionRecord`): a back-channel logout of it ends
    #: the family too. ``""`` for a family of no provider session.
    oidc_iss: str = ""
    oidc_sid: str = ""
    oidc_sub: str = ""


@dataclasses.dataclass(slots=True)
class RefreshRecord:
    """One refresh token of a family, keyed by ``hash_secret(token)``.

    Refresh tokens have the form of session ids, with the user's tag.
    """

    key: str
    family_id: str
    user_id: str
    issued_at: float
    expires_at: float
    #: When it was spent by a refresh; ``None`` while it is unused.
    spent_at: float | None = None


class SpendStatus(enum.Enum):
    """What :meth:`Store.spend_refresh` found."""

    #: This call spent the token: it alone may issue the next one.
    SPENT = "spent"
    #: The token was spent before (``record.spent_at`` says when).
    ALREADY_SPENT = "already_spent"
    #: No such token (never issued, or its family is gone).
    MISSING = "missing"


@dataclasses.dataclass(slots=True, frozen=True)
class SpendResult:
    status: SpendStatus
    record: RefreshRecord | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class AccessState:
    """What an access token check needs, read in one round trip."""

    #: The user's current epoch; tokens with an older ``ep`` are dead.
    epoch: int
    #: True if the token's family was revoked.
    family_revoked: bool


@dataclasses.dataclass(slots=True, frozen=True)
class Reserved:
    """What :meth:`Store.reserve` did with one attempt."""

    #: True if this call took the attempt: fewer than the limit were counted.
    granted: bool
    #: Attempts counted in the window after this call (this one if granted).
    attempts: int
    #: When the window ends. Also names the window: :meth:`Store.release`
    #: gives an attempt back only to the window it was taken from.
    ends: float


def field_names(record_class: type) -> tuple[str, ...]:
    """The attribute names of a record class, in declaration order.

    Backends map records to rows or hashes by these names, so a field added
    here reaches every store without a second list to keep in step.
    """
    return tuple(field.name for field in dataclasses.fields(record_class))


#: Fields of each record, in declaration order.
SESSION_FIELDS = field_names(SessionRecord)
FAMILY_FIELDS = field_names(FamilyRecord)
REFRESH_FIELDS = field_names(RefreshRecord)
