"""Credential binding: a sign-in remembers which credentials it checked.

An application may give each user a *security stamp*: a string that changes
whenever the password or any other factor changes (the password hash itself
will do, as Django's ``get_session_auth_hash`` uses it). Every session and
refresh family keeps an HMAC of the stamp of the user it was created for,
and every use compares it with the stamp of the user as loaded now. A
sign-in that checked the old password therefore dies with it, even one that
committed its session after the password changed: nothing ties a record to
the moment of the change, only to the credentials it saw.

The store keeps the digest, never the stamp: a stamp may be a password hash.
The key is a labelled subkey of ``SECRET_KEY``; the newest key signs, and
older ones (``SECRET_KEY_FALLBACKS``) still verify, so rotating the key signs
nobody out. A digest made with a key that is then dropped from the list no
longer verifies: the sessions and families bound under it end.

``None`` (a user without a stamp) is digested as ``""``: such records are not
bound, as before stamps existed, and a record bound to a stamp never matches
a user without one (or the other way round).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence

from ..exceptions import ConfigError
from .keys import derive_hmac_key

#: The label of the subkey of ``SECRET_KEY`` that digests stamps.
STAMP_LABEL = b"flask-signoff security stamp"
#: Length of a digest (SHA-256, base64url without padding); what a store
#: column or an access-token claim must hold.
DIGEST_LENGTH = 43


class StampSigner:
    """Digest security stamps, and check digests against a user's stamp.

    :param secret_keys: the application's secret keys, **oldest to newest**,
        as Flask passes them: ``[*SECRET_KEY_FALLBACKS, SECRET_KEY]``.
    :raises ConfigError: if the list or a key is empty.
    """

    __slots__ = ("_keys",)

    def __init__(self, secret_keys: Sequence[bytes | str]) -> None:
        if not secret_keys:
            raise ConfigError("SECRET_KEY", None, "a non-empty secret key")
        # Newest first: it is the one that signs, and the one that verifies
        # nearly every digest.
        self._keys = tuple(
            derive_hmac_key(key, STAMP_LABEL) for key in reversed(secret_keys)
        )

    def __repr__(self) -> str:
        return f"<StampSigner keys={len(self._keys)}>"

    @staticmethod
    def _mac(key: bytes, user_id: str, stamp: str) -> str:
        # The user id goes in too, length-prefixed so that no (id, stamp)
        # pair reads as another: a digest is never valid for another user,
        # even one whose stamp happens to be the same.
        uid = user_id.encode("utf-8")
        message = b"%d:%s%s" % (len(uid), uid, stamp.encode("utf-8"))
        digest = hmac.new(key, message, "sha256").digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def digest(self, user_id: str, stamp: str | None) -> str:
        """Return what a store keeps for ``stamp``: ``""`` for ``None``."""
        if stamp is None:
            return ""
        return self._mac(self._keys[0], user_id, stamp)

    def verify(self, digest: str, user_id: str, stamp: str | None) -> bool:
        """Whether ``digest`` was made from ``stamp`` with one of the keys.

        ``""`` matches only ``None`` and ``None`` only ``""``.
        """
        if stamp is None or not digest:
            return stamp is None and not digest
        given = digest.encode("utf-8")
        return any(
            hmac.compare_digest(given, self._mac(key, user_id, stamp).encode("ascii"))
            for key in self._keys
        )
