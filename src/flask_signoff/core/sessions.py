"""The session lifecycle: sign-in, timeouts, rotation, revocation.

Framework-free: the Flask layer turns cookies into calls on
:class:`SessionLifecycle` and its answers into cookies and status codes.
"""

from __future__ import annotations

import dataclasses
import enum

from .clock import Clock, system_clock
from .ids import (
    hash_secret,
    new_public_id,
    new_secret,
    parse_secret,
    random_tag,
)
from .records import ProviderLink, SessionRecord
from .store import Store

#: Longest user agent kept with a session; the rest is cut off.
MAX_USER_AGENT = 512


@dataclasses.dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Timeouts and limits, in seconds.

    ``touch_interval`` is capped at half the idle timeout, so a user who keeps
    making requests is never taken for idle because a touch was skipped.
    """

    idle_timeout: float = 30 * 60
    absolute_timeout: float = 12 * 3600
    remember_duration: float = 30 * 86400
    fresh_for: float = 10 * 60
    touch_interval: float = 60
    #: Oldest sessions beyond this many per user are evicted at sign-in.
    max_sessions_per_user: int | None = 100

    @property
    def effective_touch_interval(self) -> float:
        return min(self.touch_interval, self.idle_timeout / 2)


class LoadStatus(enum.Enum):
    """What :meth:`SessionLifecycle.load` made of a cookie value."""

    #: Not of our form: refused without a store read.
    MALFORMED = "malformed"
    #: Well formed but unknown (never issued, signed out, revoked, purged).
    MISSING = "missing"
    #: Known but past its idle or absolute timeout.
    EXPIRED = "expired"
    #: Alive.
    VALID = "valid"
    #: A remembered session back after the idle timeout: alive, but no longer
    #: fresh, and its id must rotate before the response.
    REVIVED = "revived"


@dataclasses.dataclass(frozen=True, slots=True)
class Loaded:
    status: LoadStatus
    record: SessionRecord | None = None

    @property
    def alive(self) -> bool:
        return self.status in (LoadStatus.VALID, LoadStatus.REVIVED)


class SessionLifecycle:
    """Session rules on top of a :class:`~flask_signoff.core.store.Store`.

    :param store: where records live.
    :param policy: timeouts and limits.
    :param clock: the time source; tests pass a
        :class:`~flask_signoff.core.clock.FrozenClock`.
    """

    def __init__(
        self, store: Store, policy: SessionPolicy, clock: Clock = system_clock
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock

    # -- reading -----------------------------------------------------------

    def load(self, secret: str) -> Loaded:
        """Look up a cookie value: at most one store read, never a write."""
        if parse_secret(secret) is None:
            return Loaded(LoadStatus.MALFORMED)
        record = self.store.get_session(hash_secret(secret))
        if record is None:
            return Loaded(LoadStatus.MISSING)
        return Loaded(self.check(record, self.clock()), record)

    def check(self, record: SessionRecord, now: float) -> LoadStatus:
        """Apply the idle and absolute timeouts to a record."""
        if now >= record.expires_at:
            return LoadStatus.EXPIRED
        if now - record.last_seen_at >= self.policy.idle_timeout:
            if record.remember and record.user_id is not None:
                return LoadStatus.REVIVED
            return LoadStatus.EXPIRED
        return LoadStatus.VALID

    def is_fresh(self, record: SessionRecord) -> bool:
        return record.fresh_until > self.clock()

    def drop_at(self, record: SessionRecord) -> float:
        """When a store may forget the record if nothing touches it again."""
        if record.remember:
            return record.expires_at
        return min(record.expires_at, record.last_seen_at + self.policy.idle_timeout)

    def touch_due(self, record: SessionRecord) -> bool:
        interval = self.policy.effective_touch_interval
        return self.clock() - record.last_seen_at >= interval

    # -- writing -----------------------------------------------------------

    def _new_record(
        self,
        *,
        user_id: str | None,
        data: str,
        remember: bool,
        duration: float | None,
        fresh: bool,
        ip: str | None,
        user_agent: str | None,
        auth_stamp: str = "",
        link: ProviderLink | None = None,
    ) -> tuple[str, SessionRecord]:
        now = self.clock()
        tag = self.store.user_tag(user_id) if user_id is not None else random_tag()
        secret = new_secret(tag)
        if remember:
            lifetime = self.policy.remember_duration if duration is None else duration
        else:
            lifetime = self.policy.absolute_timeout
        record = SessionRecord(
            key=hash_secret(secret),
            tag=secret.partition(".")[0],
            public_id=new_public_id(),
            user_id=user_id,
            data=data,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            drop_at=0.0,
            remember=remember,
            fresh_until=now + self.policy.fresh_for if fresh else 0.0,
            ip=ip,
            user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
            auth_stamp=auth_stamp,
        )
        if link is not None:
            record.oidc_iss, record.oidc_sid = link.iss, link.sid
            record.oidc_sub, record.oidc_id_token = link.sub, link.id_token
        record.drop_at = self.drop_at(record)
        return secret, record

    def sign_in(
        self,
        user_id: str,
        *,
        data: str = "",
        replace_key: str | None = None,
        remember: bool = False,
        duration: float | None = None,
        fresh: bool = True,
        ip: str | None = None,
        user_agent: str | None = None,
        auth_stamp: str = "",
        link: ProviderLink | None = None,
    ) -> tuple[str, SessionRecord]:
        """Start a signed-in session under a new id; the old one dies with it.

        ``replace_key`` is the key of the session the browser had before
        (anonymous or someone else's): it is deleted before the new one is
        created, so the two are never both alive and a planted id is never
        carried across sign-in.

        ``auth_stamp`` is the digest of the stamp of the user whose
        credentials were checked (:meth:`StampSigner.digest
        <flask_signoff.core.stamps.StampSigner.digest>`); the session is
        bound to it for its whole life, rotations included.

        ``link`` is the OpenID Connect provider session the sign-in came
        from, if any: a back-channel logout of it ends this session.
        """
        secret, record = self._new_record(
            user_id=user_id,
            data=data,
            remember=remember,
            duration=duration,
            fresh=fresh,
            ip=ip,
            user_agent=user_agent,
            auth_stamp=auth_stamp,
            link=link,
        )
        if replace_key is not None:
            self.store.delete_session(replace_key)
        self.store.create_session(
            record, max_per_user=self.policy.max_sessions_per_user
        )
        return secret, record

    def start_anonymous(
        self, data: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> tuple[str, SessionRecord]:
        """Store session data for a visitor who is not signed in."""
        secret, record = self._new_record(
            user_id=None,
            data=data,
            remember=False,
            duration=None,
            fresh=False,
            ip=ip,
            user_agent=user_agent,
        )
        self.store.create_session(record)
        return secret, record

    def rotate(
        self,
        record: SessionRecord,
        *,
        fresh: bool | None = None,
        auth_stamp: str | None = None,
    ) -> tuple[str, SessionRecord] | None:
        """Move a live session to a new id, keeping everything else.

        Returns ``None`` if the session was revoked meanwhile: rotation never
        brings a revoked session back. ``fresh`` forces freshness on or off.
        ``auth_stamp`` binds the session to new credentials (after the
        password change made in this session); by default it keeps its own.
        """
        now = self.clock()
        user_id = record.user_id
        tag = self.store.user_tag(user_id) if user_id is not None else random_tag()
        secret = new_secret(tag)
        new = dataclasses.replace(
            record, key=hash_secret(secret), tag=tag, last_seen_at=now
        )
        if fresh is True:
            new.fresh_until = now + self.policy.fresh_for
        elif fresh is False:
            new.fresh_until = 0.0
        if auth_stamp is not None:
            new.auth_stamp = auth_stamp
        new.drop_at = self.drop_at(new)
        if not self.store.rotate_session(record.key, new, require_old=True):
            return None
        return secret, new

    def save(self, record: SessionRecord) -> bool:
        """Write a modified session; conditional, so never a resurrection."""
        record.last_seen_at = self.clock()
        record.drop_at = self.drop_at(record)
        return self.store.update_session(record)

    def touch(self, record: SessionRecord) -> bool:
        """Record activity on an unmodified session (conditional)."""
        record.last_seen_at = self.clock()
        record.drop_at = self.drop_at(record)
        return self.store.touch_session(record.key, record.last_seen_at, record.drop_at)

    def end(self, key: str) -> bool:
        """Delete one session (sign-out). Tolerates absence."""
        return self.store.delete_session(key)

    # -- a user's sessions -------------------------------------------------

    def sessions_for(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, newest first."""
        now = self.clock()
        return [
            r
            for r in self.store.list_sessions(user_id, now)
            if self.check(r, now) is not LoadStatus.EXPIRED
        ]

    def revoke(self, user_id: str, public_id: str) -> SessionRecord | None:
        """End one of the user's sessions by its public id.

        Returns ``None`` for an unknown id, and also for a session that had
        already expired: whether the store still held it (SQL before a purge,
        Redis before its own clock reached the deadline) must not change the
        answer. The expired record is deleted all the same.
        """
        record = self.store.delete_session_by_public_id(user_id, public_id)
        if record is None or self.check(record, self.clock()) is LoadStatus.EXPIRED:
            return None
        return record

    def revoke_others(self, user_id: str, keep_key: str | None) -> int:
        """End every session of the user but ``keep_key``."""
        return self.store.delete_user_sessions(user_id, keep_key=keep_key)

    def revoke_everyone(self, access_token_ttl: float) -> int:
        """Sign every user out of everything (an administrator's reset).

        Access tokens die through revocation markers on every family, kept
        for ``access_token_ttl`` (the longest an access token lives).
        """
        self.store.revoke_all_families(self.clock() + access_token_ttl)
        return self.store.delete_all_sessions()

    def revoke_user(self, user_id: str, *, keep_key: str | None = None) -> int:
        """Sign a user out everywhere: sessions, refresh families, access tokens.

        Bumps the epoch first, so an access token checked while the rest is
        being deleted is already refused, and again once the families are
        gone: a refresh racing this call may have read the first new epoch
        and still found its family alive; the second bump kills what it
        issued. (The token code reads the epoch before it adds to a family.)
        """
        self.store.bump_epoch(user_id)
        self.store.revoke_user_families(user_id)
        self.store.bump_epoch(user_id)
        return self.store.delete_user_sessions(user_id, keep_key=keep_key)
