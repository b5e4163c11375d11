"""The names of the store's Redis keys.

Every key of one user shares the hash tag ``{<tag>}``, where ``tag`` is
:func:`~flask_signoff.core.ids.key_tag` of a store key or
:meth:`~flask_signoff.core.store.Store.user_tag` of a user id (the two agree:
a signed-in user's session ids and refresh tokens carry the user's tag). So on
a cluster all of a user's keys live in one slot, every script touches one
slot, and a lookup from a cookie or a token goes to the right node at once,
without a second round trip: that is why the tag is in the credential at all.

The tag is HMAC-SHA256 of the user id under the routing key
``Prouting-key``: 32 random bytes (hex), made by the first store that needs
them (``GET``, then a set-if-absent script if there is none) and never
changed. It has no TTL, so no ``volatile-*`` eviction policy can drop it (an
``allkeys-*`` one can drop any key, this one too). It is no secret from
whoever can read the other keys, which name their user ids anyway; to anyone
else, a credential's tag does not tell whose it is. Deleted alone, it would
move every user to another slot, and a sign-out everywhere would miss the
sessions made before: delete it only with everything else under the prefix,
every worker stopped.

With ``P`` the key prefix and ``P{T}:`` a user's *base*:

==============================  ======  ========================================
key                             type    holds
==============================  ======  ========================================
``P{T}:s:<key>``                hash    a session (fields of SessionRecord)
``P{T}:si:<user_id>``           zset    the user's session keys by created_at
``P{T}:sp:<public_id>:<user>``  string  public id -> session key
``P{T}:e:<user_id>``            string  the user's epoch (INCR)
``P{T}:f:<family_id>``          hash    a refresh family
``P{T}:ft:<family_id>``         set     the family's refresh-token keys
``P{T}:uf:<user_id>``           zset    the user's family ids, by expiry (ms)
``P{T}:r:<key>``                hash    a refresh token
``P{T}:rv:<family_id>``         string  revocation marker (value: ``until``)
``Prouting-key``                string  the routing key (hex), for every user
``Ptw:<key>``                   hash    a throttle window: count ``n``, end ``e``
``P{p<H>}:px:<h>``              zset    a provider session's records by expiry
``P{p<H>}:pn:<h>``              string  its logout counter
==============================  ======  ========================================

The last two index what came from one OpenID Connect provider session, for
a back-channel logout (:mod:`.provider`): ``h`` is SHA-256 (hex) of the
issuer and the ``sid``, or of the issuer and the ``sub``, and ``H`` its
first 16 characters. A provider session may span users (nothing tells the
store which local user a ``sub`` is), so these keys have a hash tag of
their own, longer than a user's, which no user-key pattern matches.

The scripts (``scripts/*.lua``) receive a base and build the names of the
keys they reach from a member the same way (``base .. 's:' .. member``): a
kind renamed here must be renamed there too.

Throttle windows belong to an account or an address, not to a user's slot:
they carry no hash tag, and each script on them touches that one key.

Expiry is native: each record gets ``PEXPIREAT`` at its ``drop_at``
(session), ``expires_at`` (family, refresh token) or ``until`` (marker), so
no purge job is needed. The session index and the public-id links expire
with the sessions they point to, and the index drops members whose session
is gone whenever a session is created or listed, so it never grows past the
per-user cap. Only the hashes of secrets are stored.
"""

from __future__ import annotations

import hashlib

from ...core.ids import TAG_LENGTH, key_tag
from ...exceptions import StoreError


class KeyLayout:
    """The key names of one store, under its prefix.

    :param prefix: the prefix of every key, so several apps can share a
        server. It may not contain ``{`` or ``}``: the hash tag must be ours.
    :raises ~flask_signoff.exceptions.StoreError: the prefix holds a brace.
    """

    __slots__ = ("prefix", "routing_key")

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise StoreError(
                f"The Redis key prefix {prefix!r} may not contain '{{' or '}}': "
                "they would change which cluster slot a key lands in."
            )
        #: The prefix ``P`` of every key.
        self.prefix = prefix
        #: ``Prouting-key``, the one key of no user.
        self.routing_key = f"{prefix}routing-key"

    def base(self, tag: str) -> str:
        """``P{T}:``, the start of every key of the user whose tag is ``tag``."""
        return f"{self.prefix}{{{tag}}}:"

    # Keys found from a store key alone (a cookie, a refresh token).

    def session(self, key: str) -> str:
        """The session hash of the session key ``key``."""
        return f"{self.base(key_tag(key))}s:{key}"

    def refresh(self, key: str) -> str:
        """The refresh-token hash of the refresh-token key ``key``."""
        return f"{self.base(key_tag(key))}r:{key}"

    # Keys of a user, from the user's base.

    @staticmethod
    def session_index(base: str, user_id: str) -> str:
        return f"{base}si:{user_id}"

    @staticmethod
    def public_link(base: str, public_id: str, user_id: str) -> str:
        return f"{base}sp:{public_id}:{user_id}"

    @staticmethod
    def epoch(base: str, user_id: str) -> str:
        return f"{base}e:{user_id}"

    @staticmethod
    def family(base: str, family_id: str) -> str:
        return f"{base}f:{family_id}"

    @staticmethod
    def family_tokens(base: str, family_id: str) -> str:
        return f"{base}ft:{family_id}"

    @staticmethod
    def user_families(base: str, user_id: str) -> str:
        return f"{base}uf:{user_id}"

    @staticmethod
    def revoked(base: str, family_id: str) -> str:
        return f"{base}rv:{family_id}"

    # Keys of no user.

    def provider_index(self, kind: str, iss: str, value: str) -> tuple[str, str]:
        """The index of a provider session and its logout counter.

        :param kind: ``"sid"`` or ``"sub"``, what ``value`` is.
        """
        material = "\0".join((kind, iss, value)).encode("utf-8")
        digest = hashlib.sha256(material).hexdigest()
        base = f"{self.prefix}{{p{digest[:16]}}}:"
        return f"{base}px:{digest}", f"{base}pn:{digest}"

    def throttle(self, key: str) -> str:
        """The throttle window of ``key`` (already a hash of the account)."""
        return f"{self.prefix}tw:{key}"

    # Scanning, for the operations on every user.

    def pattern(self, kind: str) -> str:
        """A ``SCAN`` glob for every key of one kind (``"s"``, ``"f"``)."""
        tag = "?" * TAG_LENGTH
        return f"{_glob_escape(self.prefix)}{{{tag}}}:{kind}:*"

    def member(self, name: str, kind: str) -> str:
        """What follows ``P{T}:<kind>:`` in the key ``name``: a session key,
        a family id."""
        return name[len(self.prefix) + TAG_LENGTH + 2 + len(kind) + 2 :]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
