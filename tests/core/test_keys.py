"""Keys: derivation from SECRET_KEY, refusal of weak keys, rotation."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt
import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.keys import (
    ALLOWED_ALGORITHMS,
    DEFAULT_LABEL,
    JWTKey,
    KeySet,
    derive_hmac_key,
)
from flask_signoff.core.tokens import TokenLifecycle, TokenPolicy
from flask_signoff.exceptions import ConfigError, InvalidToken
from flask_signoff.stores.sql import SQLStore
from tests.support import AUDIENCE, ISSUER, SECRET_KEY


def test_derived_key_is_a_labelled_hmac_subkey() -> None:
    secret = SECRET_KEY.encode()
    key = derive_hmac_key(SECRET_KEY)
    assert key == hmac.new(secret, b"flask-signoff jwt", hashlib.sha256).digest()
    assert len(key) == 32
    assert key != secret
    assert derive_hmac_key(secret) == key
    assert derive_hmac_key(SECRET_KEY, b"other") != key
    assert len(derive_hmac_key(SECRET_KEY, digest="sha512")) == 64


def test_derived_key_needs_a_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        derive_hmac_key(b"")


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_keys_derived_for_each_hmac_algorithm_are_long_enough(
    algorithm: str,
) -> None:
    key = JWTKey.from_secret_key("dev", algorithm=algorithm)
    token = jwt.encode({"a": 1}, key.signing_key, algorithm=algorithm)
    assert jwt.decode(token, key.verifying_key, algorithms=[algorithm]) == {"a": 1}


@pytest.mark.parametrize(("algorithm", "minimum"), [("HS256", 32), ("HS512", 64)])
def test_short_hmac_keys_are_refused_without_showing_them(
    algorithm: str, minimum: int
) -> None:
    secret = "s3cr3t-" + "x" * (minimum - 8)
    with pytest.raises(ConfigError) as info:
        JWTKey.hmac(secret, algorithm=algorithm)
    assert f"at least {minimum} bytes" in str(info.value)
    assert secret not in str(info.value)
    JWTKey.hmac(secret + "xy", algorithm=algorithm)


def test_a_pem_key_is_refused_as_hmac_secret(rsa_private_key: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigError, match="not a PEM"):
        JWTKey.hmac(pem)


@pytest.mark.parametrize("algorithm", ["none", "None", "HS1", "RS512", "PS256", ""])
def test_algorithms_outside_the_allow_list_are_refused(algorithm: str) -> None:
    with pytest.raises(ConfigError, match="SIGNOFF_JWT_ALGORITHM"):
        JWTKey.hmac(b"k" * 64, algorithm=algorithm)
    with pytest.raises(ConfigError, match="SIGNOFF_JWT_ALGORITHM"):
        JWTKey.asymmetric(algorithm, private_key=b"x")
    assert algorithm not in ALLOWED_ALGORITHMS


def test_key_material_is_never_in_repr(rsa_private_key: Any) -> None:
    key = JWTKey.from_secret_key(SECRET_KEY)
    assert repr(key.signing_key) not in repr(key)
    assert repr(key.signing_key) not in repr(KeySet([key]))
    assert "kid=" in repr(key)


def test_default_kid_is_stable_and_reveals_nothing() -> None:
    a = JWTKey.from_secret_key(SECRET_KEY)
    b = JWTKey.from_secret_key(SECRET_KEY)
    assert a.kid == b.kid
    assert a.kid != JWTKey.from_secret_key(b"another key").kid
    assert a.kid not in derive_hmac_key(SECRET_KEY).hex()


def test_key_set_rules(rsa_private_key: Any) -> None:
    with pytest.raises(ConfigError):
        KeySet([])
    key = JWTKey.hmac(b"k" * 32, kid="same")
    with pytest.raises(ConfigError, match="unique"):
        KeySet([key, JWTKey.hmac(b"j" * 32, kid="same")])
    verify_only = JWTKey.asymmetric(
        "RS256", public_key=rsa_private_key.public_key(), kid="public"
    )
    assert not verify_only.can_sign
    with pytest.raises(ConfigError, match="can sign"):
        KeySet([key, verify_only])
    assert KeySet([verify_only, key]).signing_key is key


def test_asymmetric_keys_are_checked() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 (must be refused)
    with pytest.raises(ConfigError, match="1024"):
        JWTKey.asymmetric("RS256", private_key=small)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ConfigError, match="curve"):
        JWTKey.asymmetric("ES256", private_key=p384)
    with pytest.raises(ConfigError):
        JWTKey.asymmetric("RS256", private_key=b"not a pem")
    with pytest.raises(ConfigError):
        JWTKey.asymmetric("RS256")
    with pytest.raises(ConfigError, match="private"):
        JWTKey.asymmetric(
            "ES256", private_key=ec.generate_private_key(ec.SECP256R1()).public_key()
        )


@pytest.mark.parametrize(
    ("algorithm", "fixture"),
    [
        ("RS256", "rsa_private_key"),
        ("ES256", "ec_private_key"),
        ("EdDSA", "ed25519_private_key"),
    ],
)
def test_asymmetric_algorithms_sign_and_verify(
    store: SQLStore,
    clock: FrozenClock,
    policy: TokenPolicy,
    request: pytest.FixtureRequest,
    algorithm: str,
    fixture: str,
) -> None:
    from cryptography.hazmat.primitives import serialization

    private = request.getfixturevalue(fixture)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = JWTKey.asymmetric(algorithm, private_key=pem)
    tokens = TokenLifecycle(store, KeySet([signer]), policy, clock)
    pair = tokens.issue("alice")
    assert jwt.get_unverified_header(pair.access_token)["alg"] == algorithm
    assert tokens.verify(pair.access_token).subject == "alice"
    # A service that only holds the public key verifies the same token.
    verifier = JWTKey.asymmetric(
        algorithm, public_key=private.public_key(), kid=signer.kid
    )
    assert verifier.kid == signer.kid
    other_signer = JWTKey.hmac(b"z" * 32)
    readonly = TokenLifecycle(store, KeySet([verifier, other_signer]), policy, clock)
    assert readonly.verify(pair.access_token).family_id == pair.family_id


def test_rotation_old_key_verifies_while_listed(
    store: SQLStore, clock: FrozenClock, policy: TokenPolicy
) -> None:
    old = JWTKey.from_secret_key(b"old secret key")
    new = JWTKey.from_secret_key(b"new secret key")
    before = TokenLifecycle(store, KeySet([old]), policy, clock)
    old_pair = before.issue("alice")

    # SECRET_KEY rotated; the old one moved to SECRET_KEY_FALLBACKS.
    rotated = TokenLifecycle(
        store,
        KeySet.from_secret_keys([b"old secret key", b"new secret key"]),
        policy,
        clock,
    )
    assert rotated.verify(old_pair.access_token).key_id == old.kid
    new_pair = rotated.issue("alice")
    assert jwt.get_unverified_header(new_pair.access_token)["kid"] == new.kid
    assert rotated.verify(new_pair.access_token).key_id == new.kid
    # Refresh tokens are opaque: rotation does not touch them.
    assert rotated.verify(rotated.refresh(old_pair.refresh_token).access_token)

    # The fallback is dropped: its tokens are refused, even fresh ones.
    after = TokenLifecycle(store, KeySet([new]), policy, clock)
    with pytest.raises(InvalidToken, match="unknown key"):
        after.verify(old_pair.access_token)
    assert after.verify(new_pair.access_token).subject == "alice"


def test_rotation_without_kid_tries_newest_first(
    store: SQLStore, clock: FrozenClock, policy: TokenPolicy
) -> None:
    old = JWTKey.hmac(b"o" * 32, kid="old")
    new = JWTKey.hmac(b"n" * 32, kid="new")
    tokens = TokenLifecycle(store, KeySet([old, new]), policy, clock)
    pair = tokens.issue("alice")
    payload = jwt.decode(pair.access_token, options={"verify_signature": False})
    no_kid = jwt.encode(payload, old.signing_key, headers={"typ": "at+jwt"})
    assert tokens.verify(no_kid).key_id == "old"
    assert KeySet([old, new]).candidates(None) == [new, old]
    assert KeySet([old, new]).candidates("gone") == []


def test_label_is_part_of_the_key() -> None:
    a = KeySet.from_secret_keys([SECRET_KEY])
    b = KeySet.from_secret_keys([SECRET_KEY], label=b"another app")
    assert a.signing_key.kid != b.signing_key.kid
    assert DEFAULT_LABEL == b"flask-signoff jwt"


def test_policy_is_checked() -> None:
    with pytest.raises(ConfigError, match="SIGNOFF_ACCESS_TOKEN_TTL"):
        TokenPolicy(issuer=ISSUER, audience=AUDIENCE, access_ttl=0)
    with pytest.raises(ConfigError, match="SIGNOFF_REFRESH_GRACE"):
        TokenPolicy(issuer=ISSUER, audience=AUDIENCE, refresh_grace=-1)
    with pytest.raises(ConfigError, match="SIGNOFF_TOKEN_LEEWAY"):
        TokenPolicy(issuer=ISSUER, audience=AUDIENCE, leeway=-1)
    with pytest.raises(ConfigError, match="SIGNOFF_JWT_ISSUER"):
        TokenPolicy(issuer="", audience=AUDIENCE)
