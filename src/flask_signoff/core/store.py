"""The store contract: what every backend guarantees.

A backend subclasses :class:`Store`. Every method may raise
:class:`~flask_signoff.exceptions.StoreUnavailable` when the backend cannot be
reached or does not answer in time; callers then fail closed. No other
exception may escape for a backend fault.

The guarantees below are tested for every backend by one conformance suite
(``tests/stores/test_conformance.py``) against real servers.

Durability: a method that ends a credential (deletes sessions, revokes
families, spends a refresh token, bumps an epoch) returns once its change
survives a power cut, as far as the backend's configuration allows (Redis:
its ``appendfsync``). The others may return earlier: losing a sign-in, a
touch or a token issued costs one more sign-in and nothing else.

Keys are ``hash_secret(secret)`` = ``<tag>.<sha256 hex>``: a store never sees
a session id or a refresh token, only their SHA-256 and the routing tag
(:func:`~flask_signoff.core.ids.key_tag`). Methods that take a ``user_id``
instead find the tag with :meth:`Store.user_tag`, so a backend that shards by
tag (Redis Cluster) never needs a second round trip.
"""

from __future__ import annotations

import abc
import hashlib
import hmac

from .ids import TAG_LENGTH
from .records import (
    AccessState,
    FamilyRecord,
    RefreshRecord,
    Reserved,
    SessionRecord,
    SpendResult,
    StoreStats,
)


class Store(abc.ABC):
    """Abstract base of the session and token stores."""

    #: The routing key once read; see :meth:`user_tag`.
    _routing_key: bytes | None = None

    # -- routing -------------------------------------------------------------

    def user_tag(self, user_id: str) -> str:
        """Return the routing tag of a user: stable, short, keyed.

        The first :data:`~flask_signoff.core.ids.TAG_LENGTH` hex characters
        of HMAC-SHA256 of the user id under :meth:`load_routing_key`. The
        session ids and refresh tokens of a signed-in user start with it, so
        a backend that shards by tag finds the slot of a credential from the
        credential alone, and all of a user's records share one slot. It
        does not tell whose a credential is: the key is random and kept by
        this store, so nobody who cannot read the store can compute a user's
        tag, and two stores give one user unrelated tags.

        Every call, on every process that uses the same store data, returns
        the same tag for the same user, whatever the app's ``SECRET_KEY``.
        The key is read on first use and kept for the life of this object.

        :raises ~flask_signoff.exceptions.StoreUnavailable: if the key has
            not been read yet and the store cannot be reached. Nothing is
            kept then: the next call reads it again.
        """
        key = self._routing_key
        if key is None:
            # Threads racing here each read the one key the store keeps.
            key = self._routing_key = self.load_routing_key()
        digest = hmac.new(key, user_id.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:TAG_LENGTH]

    @abc.abstractmethod
    def load_routing_key(self) -> bytes:
        """Return the store's routing key, creating it on first use.

        32 random bytes from :mod:`secrets`, created once by whichever call
        comes first and kept in the store with its data; a concurrent call,
        on any process, either creates it or reads the one another created
        (an atomic set-if-absent): every call returns the same key for as
        long as the store's data lives. It is not derived from anything the
        app is configured with, so rotating ``SECRET_KEY`` leaves every
        user's tag where it was. Called through :meth:`user_tag`, which
        reads it once per store object.
        """

    # -- sessions ----------------------------------------------------------

    @abc.abstractmethod
    def get_session(self, key: str) -> SessionRecord | None:
        """Return the session stored under ``key``, or ``None``.

        One read. Never writes. A record past its ``drop_at`` may or may not
        be returned; the lifecycle checks timeouts itself.
        """

    @abc.abstractmethod
    def create_session(
        self, record: SessionRecord, *, max_per_user: int | None = None
    ) -> None:
        """Insert a new session.

        The key is new (256 random bits), so this never overwrites. When
        ``max_per_user`` is given and ``record.user_id`` is set, the user's
        oldest sessions (by ``created_at``) are deleted in the same atomic step
        so that at most ``max_per_user`` remain.
        """

    @abc.abstractmethod
    def update_session(self, record: SessionRecord) -> bool:
        """Write the mutable fields of an existing session; a conditional write.

        Writes ``data``, ``last_seen_at``, ``drop_at``, ``expires_at``,
        ``fresh_until`` and ``remember`` only if a record with ``record.key``
        still exists; returns whether it did. Never creates a record, so a
        save racing a logout or revocation cannot bring the session back.
        """

    @abc.abstractmethod
    def touch_session(self, key: str, last_seen_at: float, drop_at: float) -> bool:
        """Move ``last_seen_at`` and ``drop_at`` of an existing session.

        Conditional like :meth:`update_session`; returns whether it existed.
        """

    @abc.abstractmethod
    def rotate_session(
        self, old_key: str | None, new: SessionRecord, *, require_old: bool
    ) -> bool:
        """Atomically replace the session ``old_key`` by ``new``.

        Deletes ``old_key`` and inserts ``new`` in one atomic step: no reader
        ever sees both alive. With ``require_old``, nothing is written and
        ``False`` is returned if ``old_key`` no longer exists (it was revoked:
        rotation must not revive it). Without it, ``new`` is inserted whatever
        became of ``old_key`` (a sign-in replaces whatever was there).
        ``new.user_id`` sessions count against no cap here; the caller passes
        the cap to :meth:`create_session` on sign-in instead.
        """

    @abc.abstractmethod
    def delete_session(self, key: str) -> bool:
        """Delete a session; tolerates absence. Returns whether it existed."""

    @abc.abstractmethod
    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        """Return the user's sessions whose ``drop_at`` is after ``now``.

        Sorted by ``created_at``, newest first. Served by an index on the
        user: the cost does not grow with other users' sessions.
        """

    @abc.abstractmethod
    def delete_session_by_public_id(
        self, user_id: str, public_id: str
    ) -> SessionRecord | None:
        """Delete the session with this public id only if ``user_id`` owns it.

        Returns the deleted record, or ``None`` if there was none for this
        user (another user's public id is exactly like an unknown one).
        """

    @abc.abstractmethod
    def delete_user_sessions(self, user_id: str, *, keep_key: str | None = None) -> int:
        """Delete every session of the user except ``keep_key``; return count."""

    @abc.abstractmethod
    def delete_all_sessions(self) -> int:
        """Delete every session of every user (an administrator's reset)."""

    @abc.abstractmethod
    def purge_expired(self, now: float, *, batch_size: int = 500) -> int:
        """Delete up to ``batch_size`` records whose ``drop_at`` has passed.

        Covers sessions, refresh tokens, families and revocation markers.
        Returns how many were deleted; callers loop until it returns 0. Each
        batch is its own short transaction, so no long write lock is held.
        Backends with native expiry (Redis TTLs) may return 0 at once.
        """

    # -- users -------------------------------------------------------------

    @abc.abstractmethod
    def get_epoch(self, user_id: str) -> int:
        """Return the user's epoch (0 for a user never bumped)."""

    @abc.abstractmethod
    def bump_epoch(self, user_id: str) -> int:
        """Atomically increment the user's epoch and return the new value.

        Every access token carrying an older epoch is dead from then on.
        """

    # -- refresh-token families ------------------------------------------

    @abc.abstractmethod
    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        """Insert a family and its first refresh token in one atomic step."""

    @abc.abstractmethod
    def get_refresh(self, key: str) -> RefreshRecord | None:
        """Return the refresh token stored under ``key`` (spent or not)."""

    @abc.abstractmethod
    def spend_refresh(self, key: str, now: float) -> SpendResult:
        """Mark an unspent refresh token spent at ``now``: compare-and-set.

        Of any number of concurrent calls with one key, exactly one gets
        ``SPENT``; the others get ``ALREADY_SPENT`` with the record (and its
        ``spent_at``). A token whose family is gone is ``MISSING``.
        """

    @abc.abstractmethod
    def add_refresh(self, record: RefreshRecord, now: float) -> bool:
        """Insert the next refresh token of a family, only if the family lives.

        Returns ``False`` (and writes nothing) if the family was revoked or
        has expired by ``now``.
        """

    @abc.abstractmethod
    def get_family(self, family_id: str, user_id: str) -> FamilyRecord | None:
        """Return the family, or ``None`` if it is gone or revoked."""

    @abc.abstractmethod
    def revoke_family(self, family_id: str, user_id: str, until: float) -> None:
        """Delete a family and all its refresh tokens; mark it revoked.

        The revocation marker, read by :meth:`access_state`, is kept until
        ``until`` (when the last access token it covers has expired) and then
        dropped, so the revocation list stays small. Tolerates absence.
        """

    @abc.abstractmethod
    def revoke_user_families(self, user_id: str) -> int:
        """Delete every family of the user with its refresh tokens.

        Writes no markers: callers bump the user's epoch at the same time,
        which kills the access tokens. Returns the number of families.
        """

    @abc.abstractmethod
    def revoke_all_families(self, until: float) -> int:
        """Revoke every family of every user, as :meth:`revoke_family` does.

        For an administrator's "sign everyone out": markers are written so
        that access tokens die too. Returns the number of families.
        """

    @abc.abstractmethod
    def access_state(self, user_id: str, family_id: str, now: float) -> AccessState:
        """Return the user's epoch and whether the family is revoked.

        One round trip: this runs on every Bearer request.
        """

    # -- identity-provider sessions ------------------------------------------

    @abc.abstractmethod
    def end_provider_sessions(
        self, iss: str, *, sid: str = "", sub: str = "", until: float
    ) -> int:
        """End everything that came from one OpenID Connect provider session.

        Deletes every session whose ``(oidc_iss, oidc_sid)`` is ``(iss,
        sid)``, and revokes every refresh family with those values as
        :meth:`revoke_family` does (markers kept until ``until``, so their
        access tokens die too); or, when ``sid`` is empty, every one whose
        ``(oidc_iss, oidc_sub)`` is ``(iss, sub)``, whatever its ``sid``.
        Records of other provider sessions, of other users and of password
        sign-ins are left alone. Served by an index on each pair: the cost
        does not grow with other users' records.

        Idempotent: a second call finds nothing and returns 0. A session
        created from the same provider session while this runs is either
        ended or created after it (then it lives: the provider signed in
        again). Returns how many sessions and families were ended.

        :raises ValueError: if neither ``sid`` nor ``sub`` is given, or
            ``iss`` is empty: that would match every password sign-in.
        """

    # -- throttling ----------------------------------------------------------

    @abc.abstractmethod
    def reserve(self, key: str, limit: int, window: float, now: float) -> Reserved:
        """Take one attempt of ``key``'s window if fewer than ``limit`` are taken.

        One atomic step: of any number of concurrent calls, at most
        ``limit`` per window are granted, and each granted call sees its own
        count (1, 2, ... ``limit``). A window opens at the first attempt
        after the previous one ended and lasts ``window`` seconds from
        ``now``; its end never moves, and a refused call changes nothing, so
        a key hammered while locked is free again when its window ends.
        ``key`` is not a secret but names an account or an address: callers
        pass a hash of it.
        """

    @abc.abstractmethod
    def release(self, key: str, ends: float) -> bool:
        """Give back one attempt taken by :meth:`reserve`; atomic.

        Only to the window named by ``ends`` (the :attr:`Reserved.ends` of
        the reservation) and never below zero: after that window ended, or
        once its count is 0, nothing changes. Returns whether one was given
        back.
        """

    # -- administration ------------------------------------------------------

    @abc.abstractmethod
    def stats(self, now: float) -> StoreStats:
        """Count the records alive at ``now``; read-only.

        Live sessions are those whose ``drop_at`` is after ``now`` (with how
        many are remembered and how many anonymous); live refresh families
        those not revoked whose ``expires_at`` is after ``now``. For
        administration and monitoring (``flask signoff stats``), never on a
        request: the cost grows with the whole store, not with one user (a
        count over the expiry index on SQL; a ``SCAN`` of every key, on
        every master of a cluster, on Redis: O(n) in the keys). Records
        written or dropped while it counts may or may not be counted.
        """

    # -- lifecycle ---------------------------------------------------------

    def check_config(self) -> list[str]:
        """Check that the backend's server keeps what this contract promises.

        Called before the first request is served (at ``init_app``, or on the
        first request once the backend answers). A server whose settings
        break a guarantee, such as a Redis that may evict revocation
        records, is refused. The default checks nothing.

        :returns: warnings about guarantees the app chose to give up.
        :raises ~flask_signoff.exceptions.ConfigError: the server's settings
            break a guarantee; the message says what to change.
        :raises ~flask_signoff.exceptions.StoreUnavailable: the server cannot
            be reached; the caller tries again later.
        """
        return []

    @staticmethod
    def check_provider_session(iss: str, sid: str, sub: str) -> None:
        """Refuse the arguments of :meth:`end_provider_sessions` that would
        match records of no provider session (every backend calls it)."""
        if not iss or not (sid or sub):
            raise ValueError("A provider session needs an issuer and a sid or a sub.")

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections. Optional; the default does nothing."""
