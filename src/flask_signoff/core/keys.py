"""Signing keys for access tokens: an allow-list of algorithms and a key set.

Each :class:`JWTKey` is bound to exactly one algorithm when it is made, and a
token is only ever checked against a key with that key's own algorithm. The
algorithm named in a token's header is never used to choose how a key is
interpreted, so key confusion (an RSA public key used as an HMAC secret) and
``alg: none`` cannot happen (RFC 8725, section 3.1).

A :class:`KeySet` lists keys **oldest to newest**, as itsdangerous and
Flask's ``SECRET_KEY_FALLBACKS`` do: tokens are signed with the newest key
and verified with the key their ``kid`` names, so a key can be rotated in
before it signs anything and kept for verification until the last token it
signed has expired.

The default key is :func:`derive_hmac_key` of Flask's ``SECRET_KEY``: a
labelled subkey, so a JWT key is never the key that signs session cookies
and CSRF tokens, and it always has the length HMAC needs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..exceptions import ConfigError

#: The algorithms access tokens may use. ``none`` is never among them, in any
#: spelling: PyJWT compares names exactly against this list.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset(
    {"HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"}
)

#: HMAC algorithms and the hash whose digest size is their minimum key length
#: (RFC 7518, section 3.2).
HMAC_DIGESTS: dict[str, str] = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}

#: The label of the default JWT key derived from ``SECRET_KEY``.
DEFAULT_LABEL = b"flask-signoff jwt"

#: The setting an HMAC key usually comes from; named in errors.
_HMAC_SETTING = "SIGNOFF_JWT_SECRET_KEY"
_ALGORITHM_SETTING = "SIGNOFF_JWT_ALGORITHM"


def _to_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def derive_hmac_key(
    secret_key: bytes | str, label: bytes = DEFAULT_LABEL, *, digest: str = "sha256"
) -> bytes:
    """Return a labelled subkey of ``secret_key``: ``HMAC(secret_key, label)``.

    With the default ``sha256`` the key is 32 bytes, what HS256 needs; pass
    ``sha384`` or ``sha512`` for HS384 or HS512. Different labels give
    independent keys, and none of them lets anyone recover ``secret_key``
    or forge what ``secret_key`` itself signs.

    :param secret_key: the application's ``SECRET_KEY``.
    :param label: what the subkey is for.
    :param digest: the hash of the HMAC, which sets the key length.
    :raises ConfigError: if ``secret_key`` is empty.
    """
    key = _to_bytes(secret_key)
    if not key:
        raise ConfigError("SECRET_KEY", "", "a non-empty secret key")
    return hmac.new(key, label, digest).digest()


def _algorithm(name: str) -> Any:
    """Return PyJWT's implementation of an allowed algorithm.

    PyJWT is imported here, when the first key is made, rather than with
    this module (see :mod:`flask_signoff.core.access`).
    """
    import jwt

    if name not in ALLOWED_ALGORITHMS:
        allowed = ", ".join(sorted(ALLOWED_ALGORITHMS))
        raise ConfigError(_ALGORITHM_SETTING, name, f"one of {allowed}")
    try:
        return jwt.get_algorithm_by_name(name)
    except NotImplementedError:
        raise ConfigError(
            _ALGORITHM_SETTING,
            name,
            "an algorithm whose dependency is installed: "
            "run `pip install 'flask-signoff[crypto]'`",
        ) from None


class JWTKey:
    """One key, bound to one algorithm, with its key id.

    Make keys with :meth:`hmac`, :meth:`from_secret_key` or :meth:`asymmetric`.
    The key material is never shown by :func:`repr`.

    :param kid: the key id written in the header of the tokens it signs.
    :param algorithm: the only algorithm this key is used with.
    :param signing_key: what signs; ``None`` for a verify-only key (an old
        key kept for rotation, or a public key of another issuer).
    :param verifying_key: what verifies.
    """

    __slots__ = ("algorithm", "kid", "signing_key", "verifying_key")

    def __init__(
        self, kid: str, algorithm: str, signing_key: Any, verifying_key: Any
    ) -> None:
        if not kid or not isinstance(kid, str):
            raise ConfigError("kid", kid, "a non-empty string")
        self.kid = kid
        self.algorithm = algorithm
        self.signing_key = signing_key
        self.verifying_key = verifying_key

    def __repr__(self) -> str:
        return f"<JWTKey kid={self.kid!r} algorithm={self.algorithm!r}>"

    @property
    def can_sign(self) -> bool:
        return self.signing_key is not None

    @classmethod
    def hmac(
        cls, secret: bytes | str, *, algorithm: str = "HS256", kid: str | None = None
    ) -> JWTKey:
        """Return an HMAC key.

        :param secret: at least as long as the algorithm's digest (32 bytes
            for HS256); shorter keys are refused, not warned about.
        :param kid: the key id; by default one derived from the key (a
            one-way function of it, so it reveals nothing).
        :raises ConfigError: for a short key, a PEM or other asymmetric key,
            or an algorithm that is not HMAC.
        """
        if algorithm not in HMAC_DIGESTS:
            raise ConfigError(
                _ALGORITHM_SETTING, algorithm, "HS256, HS384 or HS512 for an HMAC key"
            )
        key = _to_bytes(secret)
        alg = _algorithm(algorithm)
        import jwt  # loaded by _algorithm

        try:
            prepared = alg.prepare_key(key)
        except jwt.InvalidKeyError:
            # Never show the key: only its shape.
            raise ConfigError(
                _HMAC_SETTING,
                f"<{len(key)} bytes>",
                "a random secret, not a PEM, SSH or DER key",
            ) from None
        minimum = hashlib.new(HMAC_DIGESTS[algorithm]).digest_size
        if len(prepared) < minimum:
            raise ConfigError(
                _HMAC_SETTING,
                f"<{len(key)} bytes>",
                f"at least {minimum} bytes for {algorithm} "
                f"(e.g. secrets.token_bytes({minimum}))",
            )
        if kid is None:
            kid = hmac.new(prepared, b"flask-signoff kid", "sha256").hexdigest()[:16]
        return cls(kid, algorithm, prepared, prepared)

    @classmethod
    def from_secret_key(
        cls,
        secret_key: bytes | str,
        *,
        algorithm: str = "HS256",
        label: bytes = DEFAULT_LABEL,
    ) -> JWTKey:
        """Return the HMAC key derived from ``SECRET_KEY`` (the default key).

        The key id is derived from the subkey, so every process that shares
        ``SECRET_KEY`` gives the same key the same id.
        """
        digest = HMAC_DIGESTS.get(algorithm)
        if digest is None:
            raise ConfigError(
                _ALGORITHM_SETTING,
                algorithm,
                "HS256, HS384 or HS512 when the key is derived from SECRET_KEY",
            )
        return cls.hmac(
            derive_hmac_key(secret_key, label, digest=digest), algorithm=algorithm
        )

    @classmethod
    def asymmetric(
        cls,
        algorithm: str,
        *,
        private_key: Any = None,
        public_key: Any = None,
        kid: str | None = None,
    ) -> JWTKey:
        """Return an RS256, ES256 or EdDSA key.

        :param private_key: a PEM string or bytes, or a ``cryptography``
            private key; signs. Its public half verifies unless
            ``public_key`` is given.
        :param public_key: a PEM or ``cryptography`` public key; verifies.
            Alone, it makes a verify-only key.
        :param kid: the key id; by default the first 16 hex digits of the
            SHA-256 of the public key (SubjectPublicKeyInfo, DER).
        :raises ConfigError: for a key of the wrong type, curve or size.
        """
        if algorithm in HMAC_DIGESTS:
            raise ConfigError(
                _ALGORITHM_SETTING, algorithm, "RS256, ES256 or EdDSA for a key pair"
            )
        alg = _algorithm(algorithm)
        signing = None
        if private_key is not None:
            signing = cls._prepare(alg, algorithm, private_key)
            if not hasattr(signing, "public_key"):
                raise ConfigError(
                    "private_key", "<a public key>", f"a private {algorithm} key"
                )
        if public_key is not None:
            verifying = cls._prepare(alg, algorithm, public_key)
            if hasattr(verifying, "public_key"):
                # Never keep a private key where only a public one is needed.
                verifying = verifying.public_key()
        elif signing is not None:
            verifying = signing.public_key()
        else:
            raise ConfigError("public_key", None, "a public or private key")
        if kid is None:
            from cryptography.hazmat.primitives import serialization

            der = verifying.public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            kid = hashlib.sha256(der).hexdigest()[:16]
        return cls(kid, algorithm, signing, verifying)

    @staticmethod
    def _prepare(alg: Any, algorithm: str, key: Any) -> Any:
        import jwt  # loaded by _algorithm, which made alg

        try:
            prepared = alg.prepare_key(key)
        except (jwt.InvalidKeyError, TypeError, ValueError) as e:
            raise ConfigError(
                "key", f"<{type(key).__name__}>", f"a {algorithm} key ({e})"
            ) from None
        message = alg.check_key_length(prepared)
        if message:
            raise ConfigError("key", f"<{type(key).__name__}>", message)
        return prepared


class KeySet:
    """Access-token keys, listed **oldest to newest**.

    The newest key signs; every listed key verifies. Drop a key from the list
    once ``access_ttl`` has passed since it stopped signing.

    :param keys: oldest first, newest (the signing key) last.
    :raises ConfigError: if the list is empty, the newest key cannot sign,
        or two keys share a key id.
    """

    def __init__(self, keys: Iterable[JWTKey]) -> None:
        self.keys: tuple[JWTKey, ...] = tuple(keys)
        if not self.keys:
            raise ConfigError("keys", [], "at least one key")
        if not self.keys[-1].can_sign:
            raise ConfigError(
                "keys", self.keys[-1], "a newest key that can sign (a private key)"
            )
        self._by_kid: dict[str, JWTKey] = {}
        for key in self.keys:
            if key.kid in self._by_kid:
                raise ConfigError("keys", key.kid, "key ids that are unique")
            self._by_kid[key.kid] = key

    @classmethod
    def from_secret_keys(
        cls,
        secret_keys: Sequence[bytes | str],
        *,
        algorithm: str = "HS256",
        label: bytes = DEFAULT_LABEL,
    ) -> KeySet:
        """Return the set derived from ``SECRET_KEY`` and its fallbacks.

        Pass them as Flask does, oldest to newest:
        ``[*app.config["SECRET_KEY_FALLBACKS"], app.secret_key]``.
        """
        return cls(
            JWTKey.from_secret_key(k, algorithm=algorithm, label=label)
            for k in secret_keys
        )

    def __iter__(self) -> Iterator[JWTKey]:
        return iter(self.keys)

    def __repr__(self) -> str:
        return f"<KeySet {[k.kid for k in self.keys]!r}>"

    @property
    def signing_key(self) -> JWTKey:
        """The newest key, which signs every new token."""
        return self.keys[-1]

    def candidates(self, kid: str | None) -> list[JWTKey]:
        """The keys that may have signed a token with this ``kid`` header.

        The named key only, or none if it is unknown (a removed key stays
        removed, whatever else could verify); newest first when the token
        names no key.
        """
        if kid is None:
            return list(reversed(self.keys))
        key = self._by_kid.get(kid)
        return [] if key is None else [key]
