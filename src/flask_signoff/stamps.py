"""Credential binding in Flask: the user's security stamp and the app's keys.

A user object may have ``get_security_stamp()`` (see
:meth:`~flask_signoff.UserMixin.get_security_stamp`): a string that changes
when the password or any other factor changes. Sign-in binds the session or
refresh family to a digest of it (:mod:`flask_signoff.core.stamps`), made
with a labelled subkey of ``SECRET_KEY``; every request then compares the
digest with the user just loaded.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from .core.stamps import StampSigner


def security_stamp(user: t.Any) -> str | None:
    """The user's security stamp, or ``None`` if it has none.

    :raises TypeError: if ``get_security_stamp()`` returns something else
        than a string or ``None``.
    """
    if hasattr(user, "_get_current_object"):
        user = user._get_current_object()
    get = getattr(user, "get_security_stamp", None)
    if get is None:
        return None
    stamp = get()
    if stamp is None or isinstance(stamp, str):
        return stamp
    raise TypeError(
        "get_security_stamp() must return a string or None, "
        f"not {type(stamp).__name__}."
    )


class StampBinding:
    """The stamp digests of one app, keyed by its current secret keys.

    The signer is rebuilt when ``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS``
    change after ``init_app`` (tests and app factories set them late).
    """

    def __init__(self, config: Mapping[str, t.Any]) -> None:
        self._config = config
        self._cached: tuple[object, StampSigner | None] = (object(), None)

    def signer(self) -> StampSigner | None:
        """The signer of the current keys; ``None`` without ``SECRET_KEY``."""
        secret_key = self._config.get("SECRET_KEY")
        fallbacks = self._config.get("SECRET_KEY_FALLBACKS") or []
        fingerprint = (secret_key, tuple(fallbacks))
        cached_for, signer = self._cached
        if cached_for != fingerprint:
            signer = StampSigner([*fallbacks, secret_key]) if secret_key else None
            # One assignment, so another thread never sees a torn pair.
            self._cached = (fingerprint, signer)
        return signer

    def _require_signer(self) -> StampSigner:
        signer = self.signer()
        if signer is None:
            raise RuntimeError(
                "Users with a security stamp need SECRET_KEY: sessions and "
                "tokens keep an HMAC of the stamp made with a key derived from it."
            )
        return signer

    def digest(self, user_id: str, user: t.Any) -> str:
        """What a new session or family of ``user`` is bound to."""
        stamp = security_stamp(user)
        if stamp is None:
            return ""
        return self._require_signer().digest(user_id, stamp)

    def matches(self, digest: str, user_id: str, user: t.Any) -> bool:
        """Whether a session or token bound to ``digest`` still fits ``user``
        (as loaded now)."""
        stamp = security_stamp(user)
        if stamp is None:
            return not digest
        return self._require_signer().verify(digest, user_id, stamp)
