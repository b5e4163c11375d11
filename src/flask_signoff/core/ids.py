"""Secret ids (session ids, refresh tokens), their hashes, and public ids.

A secret has the form ``<tag>.<random>``: ``random`` is 256 bits from
:mod:`secrets`, url-safe base64; ``tag`` is a short routing tag. For a
signed-in user the tag is
:meth:`Store.user_tag(user_id) <flask_signoff.core.store.Store.user_tag>`,
HMAC-SHA256 of the user id under a random key the store keeps, so every key a
store keeps for one user can share it (a Redis Cluster hash tag) and the slot
is found from the credential alone, without a second round trip. Anonymous
sessions get a random tag.

What the tag still tells: two credentials of one user in one app share it,
for as long as the store's data lives, so someone who sees both can tell that
they belong to one account. It does not tell which account (nobody without
the store's key can compute a user's tag), and it links nothing across apps
or stores, each of which has its own key.

Stores only ever see :func:`hash_secret` of a secret, ``<tag>.<sha256 hex>``:
the tag (not secret) lets a store route the key, the digest covers the whole
secret, and the secret itself is never stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets

#: Length in characters of the random part (32 bytes, url-safe base64).
RANDOM_LENGTH = 43
#: Length in hex characters of the routing tag.
TAG_LENGTH = 8
#: Longest secret we ever accept; anything longer is refused unread.
MAX_SECRET_LENGTH = TAG_LENGTH + 1 + RANDOM_LENGTH

_SECRET_RE = re.compile(r"\A([0-9a-f]{8})\.[A-Za-z0-9_-]{43}\Z")


def random_tag() -> str:
    """Return a routing tag for a session that belongs to nobody yet."""
    return secrets.token_hex(TAG_LENGTH // 2)


def new_secret(tag: str) -> str:
    """Return a new secret id ``<tag>.<256 random bits>``."""
    return f"{tag}.{secrets.token_urlsafe(32)}"


def parse_secret(value: str) -> str | None:
    """Return the tag of a well-formed secret, or ``None`` if it is malformed.

    Cheap and total: any string (non-ASCII, huge, empty) is answered without
    touching a store.
    """
    if len(value) != MAX_SECRET_LENGTH:
        return None
    match = _SECRET_RE.match(value)
    return match.group(1) if match else None


def hash_secret(secret: str) -> str:
    """Return the store key of a well-formed secret: ``<tag>.<sha256 hex>``."""
    digest = hashlib.sha256(secret.encode("ascii")).hexdigest()
    return f"{secret[:TAG_LENGTH]}.{digest}"


def key_tag(key: str) -> str:
    """Return the routing tag of a store key made by :func:`hash_secret`."""
    return key[:TAG_LENGTH]


def new_public_id() -> str:
    """Return an opaque id that may be shown to users (not a credential)."""
    return secrets.token_urlsafe(12)
