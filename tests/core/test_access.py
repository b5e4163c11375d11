"""Access tokens as an attacker would present them.

Every refusal is an :class:`InvalidToken` (or its subclass
:class:`TokenExpired`) with a short description that never contains the
token, and costs no store call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from flask_signoff.core.access import MAX_TOKEN_LENGTH, REQUIRED_CLAIMS
from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import new_secret
from flask_signoff.core.keys import JWTKey, KeySet
from flask_signoff.core.tokens import (
    RevokeOutcome,
    TokenLifecycle,
    TokenPair,
    TokenPolicy,
)
from flask_signoff.exceptions import InvalidToken, TokenExpired
from flask_signoff.stores.sql import SQLStore
from tests.support import AUDIENCE, ISSUER, SECRET_KEY
from tests.support.counting import CountingStore


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """Sign with HMAC-SHA256 by hand, whatever the header says."""
    signing_input = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    )
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def valid_claims(pair: TokenPair, now: float) -> dict[str, Any]:
    """A payload like ours, for the pair's family."""
    return {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": int(now) + 900,
        "iat": int(now),
        "jti": "forged-jti",
        "client_id": "",
        "fam": pair.family_id,
        "ep": 0,
    }


@pytest.fixture
def pair(tokens: TokenLifecycle) -> TokenPair:
    return tokens.issue("alice")


@pytest.fixture
def key(keys: KeySet) -> JWTKey:
    return keys.signing_key


def sign(
    key: JWTKey, payload: dict[str, Any], headers: dict[str, Any] | None = None
) -> str:
    """Sign with the real (HS256) key: what only a key holder could make.

    ``None`` in ``headers`` removes that header.
    """
    h: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    h.update(headers or {})
    return forge(
        {k: v for k, v in h.items() if v is not None}, payload, key.signing_key
    )


def refused(
    tokens: TokenLifecycle, token: str, counting: CountingStore
) -> InvalidToken:
    """Assert the token is refused with InvalidToken and no store call."""
    tokens.store = counting  # type: ignore[assignment]
    with pytest.raises(InvalidToken) as info:
        tokens.verify(token)
    assert counting.calls == []
    if len(token) > 8:
        assert token not in str(info.value)
    return info.value


def test_a_genuine_token_verifies(tokens: TokenLifecycle, pair: TokenPair) -> None:
    claims = tokens.verify(pair.access_token)
    assert claims.subject == "alice"
    assert claims.family_id == pair.family_id
    assert claims.epoch == 0
    header = jwt.get_unverified_header(pair.access_token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "HS256"
    assert header["kid"] == tokens.keys.signing_key.kid
    payload = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert set(payload) == set(REQUIRED_CLAIMS)


def test_verification_costs_exactly_one_store_call(
    tokens: TokenLifecycle, pair: TokenPair, counting: CountingStore
) -> None:
    tokens.store = counting  # type: ignore[assignment]
    tokens.verify(pair.access_token)
    assert counting.calls == ["access_state"]


# -- algorithms ------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "AAAA"])
def test_alg_none_is_refused_in_any_spelling(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
    alg: str,
    signature: str,
) -> None:
    header = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    payload = valid_claims(pair, clock())
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    refused(tokens, f"{token}.{signature}", counting)


def test_alg_none_from_pyjwt_itself_is_refused(
    tokens: TokenLifecycle, pair: TokenPair, counting: CountingStore, clock: FrozenClock
) -> None:
    token = jwt.encode(
        valid_claims(pair, clock()), None, algorithm="none", headers={"typ": "at+jwt"}
    )
    refused(tokens, token, counting)


def test_hs256_with_a_wrong_key_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    wrong = b"w" * 32
    with_kid = forge(
        {"alg": "HS256", "typ": "at+jwt", "kid": key.kid},
        valid_claims(pair, clock()),
        wrong,
    )
    error = refused(tokens, with_kid, counting)
    assert "signature" in error.description
    without_kid = forge(
        {"alg": "HS256", "typ": "at+jwt"}, valid_claims(pair, clock()), wrong
    )
    refused(tokens, without_kid, counting)


def test_a_token_signed_with_secret_key_itself_is_refused(
    tokens: TokenLifecycle, pair: TokenPair, counting: CountingStore, clock: FrozenClock
) -> None:
    # The JWT key is a subkey of SECRET_KEY, never SECRET_KEY itself.
    token = forge(
        {"alg": "HS256", "typ": "at+jwt"},
        valid_claims(pair, clock()),
        SECRET_KEY.encode(),
    )
    refused(tokens, token, counting)


def test_rs256_to_hs256_key_confusion_is_refused(
    store: SQLStore,
    clock: FrozenClock,
    policy: TokenPolicy,
    rsa_private_key: Any,
    counting: CountingStore,
) -> None:
    from cryptography.hazmat.primitives import serialization

    rsa_key = JWTKey.asymmetric("RS256", private_key=rsa_private_key)
    tokens = TokenLifecycle(store, KeySet([rsa_key]), policy, clock)
    pair = tokens.issue("alice")
    assert tokens.verify(pair.access_token).subject == "alice"
    public_pem = rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for header in (
        {"alg": "HS256", "typ": "at+jwt", "kid": rsa_key.kid},
        {"alg": "HS256", "typ": "at+jwt"},
    ):
        token = forge(header, valid_claims(pair, clock()), public_pem)
        refused(tokens, token, counting)


def test_a_token_of_another_allowed_algorithm_is_refused(
    tokens: TokenLifecycle, pair: TokenPair, counting: CountingStore, clock: FrozenClock
) -> None:
    # HS512 is on the allow-list, but the key is HS256: the key decides.
    hs512 = JWTKey.hmac(b"k" * 64, algorithm="HS512", kid=tokens.keys.signing_key.kid)
    token = jwt.encode(
        valid_claims(pair, clock()),
        hs512.signing_key,
        algorithm="HS512",
        headers={"typ": "at+jwt", "kid": hs512.kid},
    )
    refused(tokens, token, counting)


# -- header ----------------------------------------------------------------


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt2", "application/jwt", 7])
def test_wrong_or_missing_typ_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
    typ: Any,
) -> None:
    token = sign(key, valid_claims(pair, clock()), {"typ": typ})
    error = refused(tokens, token, counting)
    assert "typ" in error.description


@pytest.mark.parametrize(
    "typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"]
)
def test_typ_is_compared_case_insensitively(
    tokens: TokenLifecycle, pair: TokenPair, key: JWTKey, clock: FrozenClock, typ: str
) -> None:
    token = sign(key, valid_claims(pair, clock()), {"typ": typ})
    assert tokens.verify(token).family_id == pair.family_id


def test_unknown_kid_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    # Even correctly signed: a kid we do not list is a key we retired.
    token = sign(key, valid_claims(pair, clock()), {"kid": "retired"})
    error = refused(tokens, token, counting)
    assert "unknown key" in error.description


@pytest.mark.parametrize("kid", [7, ["a"], {"a": 1}, True])
def test_a_kid_that_is_not_a_string_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
    kid: Any,
) -> None:
    token = forge(
        {"alg": "HS256", "typ": "at+jwt", "kid": kid},
        valid_claims(pair, clock()),
        key.signing_key,
    )
    refused(tokens, token, counting)


def test_an_unknown_critical_header_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    token = forge(
        {"alg": "HS256", "typ": "at+jwt", "kid": key.kid, "crit": ["exp2"], "exp2": 1},
        valid_claims(pair, clock()),
        key.signing_key,
    )
    refused(tokens, token, counting)


def test_a_token_without_kid_is_tried_against_every_key(
    tokens: TokenLifecycle, pair: TokenPair, key: JWTKey, clock: FrozenClock
) -> None:
    token = sign(key, valid_claims(pair, clock()), {"kid": None})
    assert tokens.verify(token).family_id == pair.family_id


# -- claims ----------------------------------------------------------------


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_each_required_claim_missing_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
    claim: str,
) -> None:
    payload = valid_claims(pair, clock())
    del payload[claim]
    error = refused(tokens, sign(key, payload), counting)
    assert claim in error.description


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_each_required_claim_null_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
    claim: str,
) -> None:
    payload = valid_claims(pair, clock())
    payload[claim] = None
    refused(tokens, sign(key, payload), counting)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", 42),
        ("sub", ""),
        ("fam", ["x"]),
        ("fam", "f" * 65),
        ("client_id", 1),
        ("jti", 5),
        ("ep", True),
        ("ep", -1),
        ("ep", "0"),
        ("ep", 1.5),
        ("ep", 2**64),
        ("exp", "soon"),
        ("exp", True),
        ("iat", [1]),
    ],
)
def test_claims_of_the_wrong_type_are_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
    claim: str,
    value: Any,
) -> None:
    payload = valid_claims(pair, clock())
    payload[claim] = value
    refused(tokens, sign(key, payload), counting)


def test_an_infinite_exp_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    # Python's json reads the non-standard Infinity; we must not.
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    payload = json.dumps(valid_claims(pair, clock())).replace(
        str(int(clock()) + 900), "Infinity"
    )
    body = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}"
    sig = hmac.new(key.signing_key, body.encode(), hashlib.sha256).digest()
    refused(tokens, f"{body}.{b64(sig)}", counting)


def test_wrong_audience_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    payload = valid_claims(pair, clock())
    payload["aud"] = "other-api"
    error = refused(tokens, sign(key, payload), counting)
    assert "audience" in error.description


def test_wrong_issuer_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    payload = valid_claims(pair, clock())
    payload["iss"] = "https://evil.example"
    error = refused(tokens, sign(key, payload), counting)
    assert "issued by someone else" in error.description


# -- time ------------------------------------------------------------------


def test_expired_token_is_refused_on_exp(
    tokens: TokenLifecycle, pair: TokenPair, clock: FrozenClock
) -> None:
    clock.advance(899.9)
    tokens.verify(pair.access_token)
    clock.advance(0.1)
    # RFC 7519: not accepted on or after exp.
    with pytest.raises(TokenExpired):
        tokens.verify(pair.access_token)


def test_leeway_is_explicit(store: SQLStore, keys: KeySet, clock: FrozenClock) -> None:
    policy = TokenPolicy(issuer=ISSUER, audience=AUDIENCE, leeway=30)
    tokens = TokenLifecycle(store, keys, policy, clock)
    pair = tokens.issue("alice")
    clock.advance(900 + 29)
    tokens.verify(pair.access_token)
    clock.advance(1)
    with pytest.raises(TokenExpired):
        tokens.verify(pair.access_token)


def test_iat_in_the_future_is_refused_beyond_leeway(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    payload = valid_claims(pair, clock())
    payload["iat"] += 1
    payload["exp"] += 1
    error = refused(tokens, sign(key, payload), counting)
    assert "not yet valid" in error.description


def test_iat_in_the_future_within_leeway_is_accepted(
    store: SQLStore, keys: KeySet, clock: FrozenClock
) -> None:
    tokens = TokenLifecycle(
        store, keys, TokenPolicy(issuer=ISSUER, audience=AUDIENCE, leeway=5), clock
    )
    pair = tokens.issue("alice")
    payload = valid_claims(pair, clock())
    payload["iat"] += 5
    payload["exp"] += 5
    assert tokens.verify(sign(keys.signing_key, payload)).subject == "alice"


def test_nbf_in_the_future_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    payload = valid_claims(pair, clock())
    payload["nbf"] = int(clock()) + 10
    refused(tokens, sign(key, payload), counting)
    payload["nbf"] = int(clock())
    assert tokens.verify(sign(key, payload)).subject == "alice"


def test_a_token_claiming_a_longer_life_than_allowed_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    # Signed when access_ttl was an hour: it would outlive a revocation
    # marker kept for today's 15 minutes.
    payload = valid_claims(pair, clock())
    payload["exp"] = payload["iat"] + 3600
    error = refused(tokens, sign(key, payload), counting)
    assert "longer" in error.description


# -- not an access token at all ----------------------------------------------


def test_a_ten_kilobyte_header_is_refused_unread(
    tokens: TokenLifecycle, key: JWTKey, counting: CountingStore, pair: TokenPair
) -> None:
    token = forge(
        {"alg": "HS256", "typ": "at+jwt", "kid": key.kid, "x": "a" * 10_000},
        {"sub": "alice"},
        key.signing_key,
    )
    assert len(token) > MAX_TOKEN_LENGTH
    error = refused(tokens, token, counting)
    assert "too long" in error.description


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_a_deeply_nested_header_is_refused(
    tokens: TokenLifecycle, counting: CountingStore, opening: bytes
) -> None:
    # Nested deeper than the JSON parser's stack, yet under the length
    # limit: a RecursionError, not a ValueError, from json.loads.
    closing = b"]" if opening == b"[" else b"}"
    depth = 3000 if opening == b"[" else 1000
    token = f"{b64(opening * depth + closing * depth)}.e30.c2ln"
    assert len(token) <= MAX_TOKEN_LENGTH
    error = refused(tokens, token, counting)
    assert "malformed" in error.description
    assert tokens.revoke(token) is RevokeOutcome.UNKNOWN
    assert counting.calls == []


def test_a_recursion_error_inside_pyjwt_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    counting: CountingStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Older PyJWT releases let a RecursionError out of their own header
    # parse. Ours reads the header first, higher on the stack, so a header
    # nested just below the limit passes ours and may overflow PyJWT's.
    def overflow(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(jwt.PyJWS, "_load", overflow)
    error = refused(tokens, pair.access_token, counting)
    assert "malformed" in error.description


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        "null",
        "Bearer abc",
        "a.b",
        "a.b.c",
        "a.b.c.d.e",
        "..",
        "...",
        "e30.e30.",
        "e30.e30.e30",
        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
        "\x00\x00.\x00.\x00",
        "é.é.é",
        "\ud800.\udfff.x",
        "\U0001f600",
        "eyJ" + "A" * 100,
        "e30=.e30=.e30=",
    ],
)
def test_garbage_is_refused(
    tokens: TokenLifecycle, counting: CountingStore, garbage: str
) -> None:
    refused(tokens, garbage, counting)


def test_a_non_string_is_refused(
    tokens: TokenLifecycle, counting: CountingStore
) -> None:
    for value in (None, b"a.b.c", 42):
        tokens.store = counting  # type: ignore[assignment]
        with pytest.raises(InvalidToken):
            tokens.verify(value)  # type: ignore[arg-type]
    assert counting.calls == []


def test_a_refresh_token_is_not_an_access_token(
    tokens: TokenLifecycle, pair: TokenPair, counting: CountingStore, store: SQLStore
) -> None:
    error = refused(tokens, pair.refresh_token, counting)
    assert "not an access token" in error.description
    refused(tokens, new_secret(store.user_tag("alice")), counting)


def test_a_jwt_of_another_kind_signed_with_our_key_is_refused(
    tokens: TokenLifecycle,
    pair: TokenPair,
    key: JWTKey,
    counting: CountingStore,
    clock: FrozenClock,
) -> None:
    # Say an ID token: same key, same claims, but typ JWT.
    token = jwt.encode(
        valid_claims(pair, clock()),
        key.signing_key,
        algorithm="HS256",
        headers={"kid": key.kid},
    )
    refused(tokens, token, counting)
