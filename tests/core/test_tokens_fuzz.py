"""Whatever a client sends, the token core answers with a token error.

Never a crash (a 500) and never a store write for something we did not
issue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_signoff.core.tokens import RevokeOutcome, TokenLifecycle
from flask_signoff.exceptions import InvalidGrant, InvalidToken
from tests.support.counting import CountingStore

#: Hundreds of examples per test: seconds each.
pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@st.composite
def jwt_shaped(draw: st.DrawFn) -> str:
    """Three base64url segments whose first two are (mostly) JSON objects."""
    header: dict[str, Any] = draw(
        st.dictionaries(
            st.sampled_from(["alg", "typ", "kid", "crit", "b64", "jku", "x"]),
            json_values,
        )
    )
    payload = draw(
        st.one_of(json_values, st.dictionaries(st.text(max_size=9), json_values))
    )
    first = b64(json.dumps(header).encode())
    second = draw(
        st.one_of(st.just(b64(json.dumps(payload).encode())), st.text(max_size=30))
    )
    third = draw(st.one_of(st.binary(max_size=80).map(b64), st.text(max_size=20)))
    return f"{first}.{second}.{third}"


anything = st.one_of(st.text(max_size=400), jwt_shaped(), st.binary().map(b64))


@FUZZ
@given(token=anything)
def test_any_text_as_access_token_is_invalid_token(
    tokens: TokenLifecycle, counting: CountingStore, token: str
) -> None:
    tokens.store = counting  # type: ignore[assignment]
    with pytest.raises(InvalidToken):
        tokens.verify(token)
    assert counting.calls == []


@FUZZ
@given(token=anything)
def test_any_text_as_refresh_token_is_invalid_grant(
    tokens: TokenLifecycle, counting: CountingStore, token: str
) -> None:
    tokens.store = counting  # type: ignore[assignment]
    with pytest.raises(InvalidGrant):
        tokens.refresh(token)
    # At most the compare-and-set, which finds nothing and writes nothing.
    assert counting.calls in ([], ["spend_refresh"])


@FUZZ
@given(
    token=st.one_of(anything, st.from_regex(r"\A[0-9a-f]{8}\.[A-Za-z0-9_-]{43}\Z")),
    hint=st.none() | st.text(max_size=20),
)
def test_any_text_to_revoke_revokes_nothing(
    tokens: TokenLifecycle, counting: CountingStore, token: str, hint: str | None
) -> None:
    tokens.store = counting  # type: ignore[assignment]
    assert tokens.revoke(token, hint) is RevokeOutcome.UNKNOWN
    assert "revoke_family" not in counting.calls


claim_names = st.sampled_from(
    ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "fam", "ep", "x"]
)


@FUZZ
@given(
    payload=st.dictionaries(claim_names, json_values),
    typ=st.sampled_from(["at+jwt", "JWT", None]),
)
def test_any_claims_signed_with_our_key_are_checked_not_crashed(
    tokens: TokenLifecycle,
    counting: CountingStore,
    payload: dict[str, Any],
    typ: str | None,
) -> None:
    # What only a key holder could send: every claim still gets checked.
    key = tokens.keys.signing_key
    header = {"alg": "HS256", "kid": key.kid, "typ": typ}
    body = ".".join(
        b64(json.dumps(part).encode())
        for part in ({k: v for k, v in header.items() if v is not None}, payload)
    )
    signature = hmac.new(key.signing_key, body.encode(), hashlib.sha256).digest()
    token = f"{body}.{b64(signature)}"
    tokens.store = counting  # type: ignore[assignment]
    with pytest.raises(InvalidToken):
        tokens.verify(token)
    assert counting.calls == []
