"""Credential binding in the core: stamp digests, sessions and families
bound to them, refreshes that ask whether the user still fits."""

from __future__ import annotations

import jwt
import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import hash_secret
from flask_signoff.core.sessions import SessionLifecycle
from flask_signoff.core.stamps import DIGEST_LENGTH, StampSigner
from flask_signoff.core.tokens import TokenLifecycle
from flask_signoff.exceptions import ConfigError, InvalidGrant, InvalidToken
from flask_signoff.stores.sql import SQLStore

OLD_KEY = "an-old-secret-key-that-is-long-enough"
NEW_KEY = "a-new-secret-key-that-is-long-enough!"
HASH = "$argon2id$v=19$m=1024,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


# -- digests ---------------------------------------------------------------------


def test_a_changed_stamp_does_not_match() -> None:
    signer = StampSigner([NEW_KEY])
    digest = signer.digest("7", HASH)
    assert signer.verify(digest, "7", HASH)
    assert not signer.verify(digest, "7", HASH + "x")
    assert not signer.verify(digest, "7", "")
    assert not signer.verify(digest, "7", None)


def test_a_digest_is_bound_to_its_user() -> None:
    signer = StampSigner([NEW_KEY])
    assert not signer.verify(signer.digest("7", HASH), "8", HASH)
    # Length-prefixed: moving characters between id and stamp changes it.
    assert signer.digest("1", "23") != signer.digest("12", "3")


def test_no_stamp_is_the_empty_digest_and_matches_only_itself() -> None:
    signer = StampSigner([NEW_KEY])
    assert signer.digest("7", None) == ""
    assert signer.verify("", "7", None)
    assert not signer.verify("", "7", HASH)
    assert not signer.verify("", "7", "")
    assert signer.verify(signer.digest("7", ""), "7", "")


def test_the_digest_is_an_hmac_not_the_stamp() -> None:
    digest = StampSigner([NEW_KEY]).digest("7", HASH)
    assert len(digest) == DIGEST_LENGTH
    assert digest.isascii()
    assert "argon2" not in digest
    assert StampSigner([OLD_KEY]).digest("7", HASH) != digest


def test_a_fallback_key_still_verifies_and_the_newest_signs() -> None:
    before = StampSigner([OLD_KEY])
    digest = before.digest("7", HASH)
    rotated = StampSigner([OLD_KEY, NEW_KEY])
    assert rotated.verify(digest, "7", HASH)
    assert not rotated.verify(digest, "7", HASH + "x")
    assert rotated.digest("7", HASH) == StampSigner([NEW_KEY]).digest("7", HASH)
    # A key dropped from the list verifies nothing any more.
    assert not StampSigner([NEW_KEY]).verify(digest, "7", HASH)


def test_a_forged_or_garbled_digest_never_matches() -> None:
    signer = StampSigner([NEW_KEY])
    digest = signer.digest("7", HASH)
    for forged in (digest[:-1], digest + "A", "é" * 43, HASH, "x" * 43):
        assert not signer.verify(forged, "7", HASH)


def test_no_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        StampSigner([])
    with pytest.raises(ConfigError):
        StampSigner([""])


# -- sessions ------------------------------------------------------------------


def test_sign_in_binds_and_rotation_keeps_or_rebinds(
    sessions: SessionLifecycle,
) -> None:
    secret, record = sessions.sign_in("7", auth_stamp="old-digest")
    assert sessions.load(secret).record == record
    assert record.auth_stamp == "old-digest"
    rotated = sessions.rotate(record, fresh=False)
    assert rotated is not None
    assert rotated[1].auth_stamp == "old-digest"
    assert sessions.load(rotated[0]).record == rotated[1]
    rebound = sessions.rotate(rotated[1], fresh=True, auth_stamp="new-digest")
    assert rebound is not None
    loaded = sessions.load(rebound[0]).record
    assert loaded is not None
    assert loaded.auth_stamp == "new-digest"
    # Saving the data never changes what the session is bound to.
    loaded.auth_stamp = "forged"
    assert sessions.save(loaded)
    again = sessions.load(rebound[0]).record
    assert again is not None
    assert again.auth_stamp == "new-digest"


# -- refresh families --------------------------------------------------------------


def test_the_family_and_its_access_tokens_carry_the_stamp(
    tokens: TokenLifecycle, store: SQLStore
) -> None:
    pair = tokens.issue("7", auth_stamp="digest-1")
    family = store.get_family(pair.family_id, "7")
    assert family is not None
    assert family.auth_stamp == "digest-1"
    assert tokens.verify(pair.access_token).auth_stamp == "digest-1"
    nxt = tokens.refresh(pair.refresh_token, check_user=lambda u, s: True)
    assert tokens.verify(nxt.access_token).auth_stamp == "digest-1"
    # Without a stamp the claim is left out altogether.
    plain = tokens.issue("8")
    assert "ast" not in jwt.decode(
        plain.access_token, options={"verify_signature": False}
    )
    assert tokens.verify(plain.access_token).auth_stamp == ""


def test_refresh_asks_about_the_familys_user(tokens: TokenLifecycle) -> None:
    asked: list[tuple[str, str]] = []
    pair = tokens.issue("7", auth_stamp="digest-1")
    tokens.refresh(pair.refresh_token, check_user=lambda *a: asked.append(a) or True)
    assert asked == [("7", "digest-1")]


def test_a_refused_user_revokes_the_whole_family(
    tokens: TokenLifecycle, store: SQLStore, clock: FrozenClock
) -> None:
    pair = tokens.issue("7", auth_stamp="digest-1")
    first = tokens.refresh(pair.refresh_token, check_user=lambda u, s: True)
    clock.advance(1)
    with pytest.raises(InvalidGrant):
        tokens.refresh(first.refresh_token, check_user=lambda u, s: False)
    # Revoked, not only refused: the user coming back does not revive it,
    # and its access tokens die with it.
    assert store.get_family(pair.family_id, "7") is None
    assert store.get_refresh(hash_secret(first.refresh_token)) is None
    with pytest.raises(InvalidGrant):
        tokens.refresh(first.refresh_token, check_user=lambda u, s: True)
    with pytest.raises(InvalidToken):
        tokens.verify(first.access_token)


@pytest.mark.parametrize(
    "ast", [0, "", None, ["x"], "x" * 65], ids=["int", "empty", "null", "list", "long"]
)
def test_a_malformed_ast_claim_is_refused(tokens: TokenLifecycle, ast: object) -> None:
    pair = tokens.issue("7", auth_stamp="digest-1")
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    key = tokens.keys.signing_key
    forged = jwt.encode(
        {**claims, "ast": ast},
        key.signing_key,
        algorithm=key.algorithm,
        headers={"typ": "at+jwt", "kid": key.kid},
    )
    with pytest.raises(InvalidToken) as error:
        tokens.verify(forged)
    assert "'ast'" in error.value.description
