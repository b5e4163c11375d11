"""Throttling of password checks: reserve an attempt, then check.

Framework-free: the Flask layer passes the username and the client's address
and turns :class:`~flask_signoff.exceptions.TooManyAttempts` into a 429.

The rule: a password is checked only after an attempt was *reserved* for
the account and for the address, each in one atomic store step
(:meth:`~flask_signoff.core.store.Store.reserve`) that counts the attempt
if fewer than the limit are counted in the current window and refuses it
otherwise. Counting after the check instead (look at the count, check the
password, then add a failure) lets a burst of parallel guesses all pass the
look before any of them is added: every guess of the burst gets checked.

A successful check gives its own attempt back
(:meth:`~flask_signoff.core.store.Store.release`), so successes are not
counted; it does not wipe the failures before it, or each sign-in of the
real user would buy an attacker a new round of guesses. A failed check, or
one whose outcome is never reported, stays counted. Windows are fixed: one
opens at the first attempt and ends ``window`` seconds later, whatever
happens in it.

Keys: ``a:`` and the first 40 hex digits of an HMAC-SHA256 of the account
name (:func:`account_name`), ``i:`` and the same of the address, under a key
the app gives (a labelled subkey of its ``SECRET_KEY``). The store never
sees either in clear, and someone who reads the store without that key
cannot find them by hashing every likely name or IPv4 address. A new key
starts new counters: rotating the app's key forgets the open windows, which
last minutes.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import unicodedata
from collections.abc import Callable

from ..exceptions import StoreError, TooManyAttempts
from .clock import Clock, system_clock
from .store import Store


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Limits per window; ``None`` turns a limit off."""

    #: Password checks for one account per window.
    account_limit: int | None = 10
    #: Password checks from one address per window.
    ip_limit: int | None = 100
    #: Length of a window, in seconds.
    window: float = 300


def account_name(username: str) -> str:
    """The form of a username that throttling counts under.

    NFKC and case folding, without surrounding whitespace: every spelling an
    app may take for one account (``ALICE``, ``alice`` in fullwidth letters,
    ``straße``/``STRASSE``) shares one counter, so changing the spelling
    does not buy another round of guesses.
    """
    folded = unicodedata.normalize("NFKC", username).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def _digest(value: str, key: bytes | None) -> str:
    # surrogatepass: a name decoded from JSON may hold a lone surrogate
    # ("\udc80"), which strict UTF-8 refuses; it must be counted, not crash.
    data = value.encode("utf-8", "surrogatepass")
    if key is None:
        return hashlib.sha256(data).hexdigest()[:40]
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:40]


class Outcome(enum.Enum):
    """What became of a reserved attempt."""

    #: Not reported yet: counted, as a failure would be.
    PENDING = "pending"
    #: The password was right: the attempt was given back.
    SUCCEEDED = "succeeded"
    #: The password was wrong: the attempt stays counted.
    FAILED = "failed"


class Attempt:
    """One password check, reserved: report how it went, once.

    Until :meth:`succeeded` is called the attempt counts as a failure, so
    forgetting to report one can only make the throttle stricter, never let
    a guess through uncounted.
    """

    def __init__(self, store: Store, held: tuple[tuple[str, float], ...]) -> None:
        self._store = store
        #: ``(key, window end)`` of every counter this attempt holds.
        self.held = held
        self.outcome = Outcome.PENDING

    @property
    def keys(self) -> tuple[str, ...]:
        """The counters this attempt is counted in."""
        return tuple(key for key, _ in self.held)

    def succeeded(self) -> None:
        """The password was right: give this attempt back.

        Only this attempt, and only to the window it was taken from. Calling
        it again does nothing.

        :raises RuntimeError: if the attempt was already reported failed.
        """
        if self.outcome is Outcome.SUCCEEDED:
            return
        if self.outcome is Outcome.FAILED:
            raise RuntimeError("This attempt was already reported as failed.")
        # Marked first: if the store fails half way, the attempt is not
        # given back twice by a retry; what was not given back stays counted.
        self.outcome = Outcome.SUCCEEDED
        for key, ends in self.held:
            self._store.release(key, ends)

    def failed(self) -> None:
        """The password was wrong: the attempt stays counted.

        Optional (an attempt never reported counts the same); it makes the
        outcome final, so a later :meth:`succeeded` raises.

        :raises RuntimeError: if the attempt was already reported successful.
        """
        if self.outcome is Outcome.SUCCEEDED:
            raise RuntimeError("This attempt was already reported as successful.")
        self.outcome = Outcome.FAILED


class Throttle:
    """Per-account and per-address limits on password checks.

    :param store: where the counters live.
    :param policy: limits and window.
    :param clock: the time source; tests pass a
        :class:`~flask_signoff.core.clock.FrozenClock`.
    :param key: returns the key of the counters' HMAC, asked at each use
        (so an app whose secret is set after start-up is keyed too);
        ``None``, or a source that returns ``None``, means a plain SHA-256.
    """

    def __init__(
        self,
        store: Store,
        policy: ThrottlePolicy,
        clock: Clock = system_clock,
        key: Callable[[], bytes | None] | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self._key = key

    def keys(self, username: str, ip: str | None) -> list[tuple[str, int]]:
        """The counters of this account and address, with their limits.

        The address comes first: a locked address is refused before its
        attempt takes (and has to give back) one of the account's.
        """
        key = self._key() if self._key is not None else None
        keys: list[tuple[str, int]] = []
        if self.policy.ip_limit is not None and ip:
            keys.append((f"i:{_digest(ip, key)}", self.policy.ip_limit))
        if self.policy.account_limit is not None:
            name = _digest(account_name(username), key)
            keys.append((f"a:{name}", self.policy.account_limit))
        return keys

    def reserve(self, username: str, ip: str | None = None) -> Attempt:
        """Reserve one password check for ``username`` from ``ip``.

        Check the password only once this returns, then call
        :meth:`Attempt.succeeded` if it was right.

        :raises TooManyAttempts: if the account or the address has no
            attempt left in its window; nothing stays reserved then.
        """
        now = self.clock()
        held: list[tuple[str, float]] = []
        for key, limit in self.keys(username, ip):
            result = self.store.reserve(key, limit, self.policy.window, now)
            if not result.granted:
                # Give back what the other counter took: a refused attempt
                # counts nowhere.
                for taken, ends in held:
                    self.store.release(taken, ends)
                raise TooManyAttempts(result.ends - now)
            held.append((key, result.ends))
        return Attempt(self.store, tuple(held))

    def count_failure(self, username: str, ip: str | None = None) -> None:
        """Count one failed check that was not reserved first.

        Every counter not yet full takes it; a full one stays as it is.
        """
        now = self.clock()
        for key, limit in self.keys(username, ip):
            self.store.reserve(key, limit, self.policy.window, now)

    def record_failure(
        self,
        username: str,
        ip: str | None = None,
        reserved: ReservedAttempts | None = None,
    ) -> None:
        """Report one failed check of ``username`` from ``ip``.

        An attempt in ``reserved`` for the same account and address that is
        still pending is marked failed: it is already counted. Without one,
        the failure is counted now (:meth:`count_failure`).
        """
        keys = tuple(key for key, _ in self.keys(username, ip))
        if reserved is None or not reserved.fail_pending(keys):
            self.count_failure(username, ip)


class ReservedAttempts:
    """The attempts reserved while one request runs.

    An attempt is added with whether the end of the request settles it:
    code that reports outcomes itself (:meth:`Attempt.succeeded`) adds it
    with ``settle=False``; the older "check, then record a failure" style
    adds it with ``settle=True``, and :meth:`settle` then guesses the
    outcome from how the request ended.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[tuple[Attempt, bool]] = []

    def add(self, attempt: Attempt, *, settle: bool) -> Attempt:
        """Remember ``attempt``; return it."""
        self._held.append((attempt, settle))
        return attempt

    def fail_pending(self, keys: tuple[str, ...]) -> bool:
        """Mark failed the first pending attempt counted in ``keys``;
        whether there was one."""
        for attempt, _ in self._held:
            if attempt.outcome is Outcome.PENDING and attempt.keys == keys:
                attempt.failed()
                return True
        return False

    def settle(self, *, succeeded: bool) -> list[StoreError]:
        """Settle the pending attempts added with ``settle=True``.

        ``succeeded``: the request ended well (the sign-in happened), so
        they are given back; else they stay counted, as failures. Returns
        the store errors met while giving back: the sign-in happened, its
        attempt merely stays counted.
        """
        errors: list[StoreError] = []
        for attempt, settle in self._held:
            if not settle or attempt.outcome is not Outcome.PENDING:
                continue
            if not succeeded:
                attempt.failed()
                continue
            try:
                attempt.succeeded()
            except StoreError as e:
                errors.append(e)
        self._held.clear()
        return errors
