"""The token lifecycle: rotation, reuse detection, revocation, epochs."""

from __future__ import annotations

import threading
from pathlib import Path

import jwt
import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import hash_secret, parse_secret
from flask_signoff.core.keys import JWTKey, KeySet
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.tokens import RevokeOutcome, TokenLifecycle, TokenPolicy
from flask_signoff.exceptions import (
    InvalidGrant,
    InvalidToken,
    RefreshTokenReused,
    TokenExpired,
    TokenRevoked,
)
from flask_signoff.stores.sql import SQLStore
from tests.support.backends import sqlite_query
from tests.support.counting import CountingStore


def dead(tokens: TokenLifecycle, access_token: str) -> None:
    with pytest.raises(TokenRevoked):
        tokens.verify(access_token)


# -- issue and refresh -------------------------------------------------------


def test_issue_returns_a_bearer_pair(tokens: TokenLifecycle) -> None:
    pair = tokens.issue("alice", client_id="cli")
    assert pair.token_type == "Bearer"
    assert pair.expires_in == 900
    claims = tokens.verify(pair.access_token)
    assert (claims.subject, claims.client_id, claims.family_id, claims.epoch) == (
        "alice",
        "cli",
        pair.family_id,
        0,
    )
    assert pair.as_dict() == {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": pair.refresh_token,
    }
    assert pair.access_token not in repr(pair)
    assert pair.refresh_token not in repr(pair)


def test_refresh_tokens_carry_the_users_tag(
    tokens: TokenLifecycle, store: SQLStore
) -> None:
    pair = tokens.issue("alice")
    assert parse_secret(pair.refresh_token) == store.user_tag("alice")
    nxt = tokens.refresh(pair.refresh_token)
    assert parse_secret(nxt.refresh_token) == store.user_tag("alice")


def test_refresh_tokens_are_stored_only_as_hashes(
    tokens: TokenLifecycle, store: SQLStore, tmp_path: Path
) -> None:
    pair = tokens.issue("alice")
    second = tokens.refresh(pair.refresh_token)
    record = store.get_refresh(hash_secret(second.refresh_token))
    assert record is not None
    assert record.family_id == pair.family_id
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for token in (pair.refresh_token, second.refresh_token):
        assert token.encode() not in data
        assert token.split(".")[1].encode() not in data


def test_refresh_rotates_and_keeps_the_family(
    tokens: TokenLifecycle, clock: FrozenClock
) -> None:
    first = tokens.issue("alice", client_id="cli")
    clock.advance(600)
    second = tokens.refresh(first.refresh_token)
    assert second.family_id == first.family_id
    assert second.refresh_token != first.refresh_token
    claims = tokens.verify(second.access_token)
    assert claims.client_id == "cli"
    assert claims.issued_at == int(clock())
    # The earlier access token lives on until it expires.
    tokens.verify(first.access_token)
    third = tokens.refresh(second.refresh_token)
    tokens.verify(third.access_token)


def test_family_lifetime_is_absolute(
    tokens: TokenLifecycle, clock: FrozenClock, policy: TokenPolicy
) -> None:
    pair = tokens.issue("alice")
    for _ in range(3):
        clock.advance(policy.refresh_ttl / 4)
        pair = tokens.refresh(pair.refresh_token)
    clock.advance(policy.refresh_ttl / 4)
    with pytest.raises(InvalidGrant) as info:
        tokens.refresh(pair.refresh_token)
    assert not isinstance(info.value, RefreshTokenReused)


@pytest.mark.parametrize(
    "token",
    ["", "x", "a.b", "0" * 52, "zzzzzzzz." + "a" * 43, "\U0001f600", "e30.e30.e30"],
)
def test_malformed_refresh_tokens_cost_no_store_call(
    tokens: TokenLifecycle, counting: CountingStore, token: str
) -> None:
    tokens.store = counting  # type: ignore[assignment]
    with pytest.raises(InvalidGrant):
        tokens.refresh(token)
    assert counting.calls == []


def test_an_access_token_is_not_a_refresh_token(
    tokens: TokenLifecycle, counting: CountingStore
) -> None:
    pair = tokens.issue("alice")
    tokens.store = counting  # type: ignore[assignment]
    with pytest.raises(InvalidGrant):
        tokens.refresh(pair.access_token)
    assert counting.calls == []


def test_an_unknown_refresh_token_is_invalid_grant(tokens: TokenLifecycle) -> None:
    pair = tokens.issue("alice")
    forged = pair.refresh_token[:-4] + (
        "AAAA" if pair.refresh_token[-4:] != "AAAA" else "BBBB"
    )
    with pytest.raises(InvalidGrant):
        tokens.refresh(forged)
    tokens.verify(tokens.refresh(pair.refresh_token).access_token)


# -- reuse -----------------------------------------------------------------


def test_replay_after_grace_revokes_the_family(
    tokens: TokenLifecycle, clock: FrozenClock, policy: TokenPolicy
) -> None:
    first = tokens.issue("alice")
    second = tokens.refresh(first.refresh_token)
    clock.advance(policy.refresh_grace + 0.001)
    with pytest.raises(RefreshTokenReused) as info:
        tokens.refresh(first.refresh_token)
    assert info.value.error == "invalid_grant"
    # The newest refresh token and every access token of the family die.
    with pytest.raises(InvalidGrant):
        tokens.refresh(second.refresh_token)
    dead(tokens, second.access_token)
    dead(tokens, first.access_token)
    # Replaying again changes nothing and does not fail differently.
    with pytest.raises(InvalidGrant):
        tokens.refresh(first.refresh_token)


def test_replay_within_grace_revokes_nothing(
    tokens: TokenLifecycle, clock: FrozenClock, policy: TokenPolicy
) -> None:
    first = tokens.issue("alice")
    second = tokens.refresh(first.refresh_token)
    clock.advance(policy.refresh_grace)
    with pytest.raises(InvalidGrant) as info:
        tokens.refresh(first.refresh_token)
    assert not isinstance(info.value, RefreshTokenReused)
    assert "retry" in info.value.description
    # The winner's pair still works.
    tokens.verify(second.access_token)
    tokens.verify(first.access_token)
    tokens.verify(tokens.refresh(second.refresh_token).access_token)


def test_grace_zero_treats_any_replay_as_reuse(
    store: SQLStore, keys: KeySet, clock: FrozenClock
) -> None:
    policy = TokenPolicy(issuer="i", audience="a", refresh_grace=0)
    tokens = TokenLifecycle(store, keys, policy, clock)
    first = tokens.issue("alice")
    tokens.refresh(first.refresh_token)
    clock.advance(0.001)
    with pytest.raises(RefreshTokenReused):
        tokens.refresh(first.refresh_token)


def test_revocation_marker_outlives_every_access_token_of_the_family(
    tokens: TokenLifecycle, store: SQLStore, clock: FrozenClock
) -> None:
    first = tokens.issue("alice")
    clock.advance(100)
    second = tokens.refresh(first.refresh_token)
    clock.advance(10)
    with pytest.raises(RefreshTokenReused):
        tokens.refresh(first.refresh_token)
    # second expires at t0 + 100 + 900; purge everything already droppable
    # just before that: the marker must still be there.
    clock.advance(889)
    while store.purge_expired(clock()):
        pass
    dead(tokens, second.access_token)
    clock.advance(1)
    with pytest.raises(TokenExpired):
        tokens.verify(second.access_token)


# -- revoke_user (sign out everywhere) -------------------------------------


def test_revoke_user_kills_earlier_tokens_only(
    tokens: TokenLifecycle, sessions: SessionLifecycle
) -> None:
    a1 = tokens.issue("alice")
    a2 = tokens.issue("alice", client_id="phone")
    bob = tokens.issue("bob")
    sessions.revoke_user("alice")
    for pair in (a1, a2):
        dead(tokens, pair.access_token)
        with pytest.raises(InvalidGrant):
            tokens.refresh(pair.refresh_token)
    after = tokens.issue("alice")
    assert tokens.verify(after.access_token).epoch > 0
    tokens.verify(tokens.refresh(after.refresh_token).access_token)
    tokens.verify(bob.access_token)
    tokens.verify(tokens.refresh(bob.refresh_token).access_token)


def test_refresh_racing_revoke_user_issues_nothing_that_lives(
    tokens: TokenLifecycle, store: SQLStore, clock: FrozenClock
) -> None:
    # The worst interleaving: revoke_user has bumped the epoch but not yet
    # deleted the families when a refresh reads the epoch and adds to its
    # family; the families are deleted right after.
    pair = tokens.issue("alice")
    bumped, go = threading.Event(), threading.Event()

    def pause_after_bump() -> None:
        if not bumped.is_set():
            bumped.set()
            assert go.wait(10)

    sessions = SessionLifecycle(
        CountingStore(store, after={"bump_epoch": pause_after_bump}),  # type: ignore[arg-type]
        SessionPolicy(),
        clock,
    )
    signing_out = threading.Thread(target=sessions.revoke_user, args=("alice",))
    signing_out.start()
    assert bumped.wait(10)
    racing = tokens.refresh(pair.refresh_token)
    go.set()
    signing_out.join(10)
    dead(tokens, racing.access_token)
    with pytest.raises(InvalidGrant):
        tokens.refresh(racing.refresh_token)


# -- verify ----------------------------------------------------------------


def test_verify_costs_one_store_call_also_when_revoked(
    tokens: TokenLifecycle, store: SQLStore, counting: CountingStore
) -> None:
    pair = tokens.issue("alice")
    tokens.revoke(pair.refresh_token)
    tokens.store = counting  # type: ignore[assignment]
    dead(tokens, pair.access_token)
    assert counting.calls == ["access_state"]


# -- revoke (RFC 7009) and logout of one client ----------------------------


def test_revoke_a_refresh_token_kills_its_family(tokens: TokenLifecycle) -> None:
    pair = tokens.issue("alice")
    other = tokens.issue("alice", client_id="other")
    assert tokens.revoke(pair.refresh_token) is RevokeOutcome.REFRESH_TOKEN
    dead(tokens, pair.access_token)
    with pytest.raises(InvalidGrant):
        tokens.refresh(pair.refresh_token)
    # Only that family: the user's other sign-ins live on.
    tokens.verify(other.access_token)
    tokens.verify(tokens.refresh(other.refresh_token).access_token)
    # A second revocation finds nothing.
    assert tokens.revoke(pair.refresh_token) is RevokeOutcome.UNKNOWN


def test_revoke_a_valid_access_token_kills_its_family(
    tokens: TokenLifecycle,
) -> None:
    pair = tokens.issue("alice")
    assert tokens.revoke(pair.access_token) is RevokeOutcome.ACCESS_TOKEN
    dead(tokens, pair.access_token)
    with pytest.raises(InvalidGrant):
        tokens.refresh(pair.refresh_token)


def test_revoke_an_expired_but_genuine_access_token_kills_its_family(
    tokens: TokenLifecycle, clock: FrozenClock
) -> None:
    pair = tokens.issue("alice")
    clock.advance(3600)
    with pytest.raises(TokenExpired):
        tokens.verify(pair.access_token)
    assert tokens.revoke(pair.access_token) is RevokeOutcome.ACCESS_TOKEN
    with pytest.raises(InvalidGrant):
        tokens.refresh(pair.refresh_token)


def test_revoke_a_forged_access_token_revokes_nothing(
    tokens: TokenLifecycle, counting: CountingStore
) -> None:
    victim = tokens.issue("alice")
    payload = jwt.decode(victim.access_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(victim.access_token)
    forged = jwt.encode(
        payload,
        b"attacker key, 32 bytes or more!!",
        headers={"typ": "at+jwt", "kid": header["kid"]},
    )
    store = tokens.store
    tokens.store = counting  # type: ignore[assignment]
    assert tokens.revoke(forged) is RevokeOutcome.UNKNOWN
    assert tokens.revoke(forged, "access_token") is RevokeOutcome.UNKNOWN
    assert counting.calls == []
    tokens.store = store
    tokens.verify(victim.access_token)
    tokens.verify(tokens.refresh(victim.refresh_token).access_token)


def test_revoke_ignores_the_hint(tokens: TokenLifecycle) -> None:
    a = tokens.issue("alice")
    b = tokens.issue("alice")
    assert tokens.revoke(a.refresh_token, "access_token") is RevokeOutcome.REFRESH_TOKEN
    assert tokens.revoke(b.access_token, "refresh_token") is RevokeOutcome.ACCESS_TOKEN
    c = tokens.issue("alice")
    assert tokens.revoke(c.refresh_token, "bogus hint") is RevokeOutcome.REFRESH_TOKEN
    for pair in (a, b, c):
        dead(tokens, pair.access_token)


def test_revoke_leaves_other_users_alone(tokens: TokenLifecycle) -> None:
    alice = tokens.issue("alice")
    bob = tokens.issue("bob")
    tokens.revoke(alice.refresh_token)
    tokens.verify(bob.access_token)
    tokens.verify(tokens.refresh(bob.refresh_token).access_token)


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "x" * 20_000, "zzzzzzzz." + "a" * 43]
)
def test_revoke_garbage_writes_nothing(
    tokens: TokenLifecycle, counting: CountingStore, token: str
) -> None:
    tokens.store = counting  # type: ignore[assignment]
    assert tokens.revoke(token) is RevokeOutcome.UNKNOWN
    assert "revoke_family" not in counting.calls


def test_revoke_an_unknown_refresh_token_writes_nothing(
    tokens: TokenLifecycle, counting: CountingStore
) -> None:
    pair = tokens.issue("bob")
    tokens.store = counting  # type: ignore[assignment]
    unknown = pair.refresh_token[:9] + "b" * 43
    assert tokens.revoke(unknown) is RevokeOutcome.UNKNOWN
    assert counting.calls == ["get_refresh"]


def test_revoke_family_of_access_is_logout_of_one_client(
    tokens: TokenLifecycle,
) -> None:
    phone = tokens.issue("alice", client_id="phone")
    laptop = tokens.issue("alice", client_id="laptop")
    claims = tokens.verify(phone.access_token)
    tokens.revoke_family_of_access(claims)
    dead(tokens, phone.access_token)
    with pytest.raises(InvalidGrant):
        tokens.refresh(phone.refresh_token)
    tokens.verify(laptop.access_token)


def test_tokens_of_another_issuer_configuration_are_not_ours(
    store: SQLStore, clock: FrozenClock
) -> None:
    keys = KeySet([JWTKey.hmac(b"k" * 32)])
    ours = TokenLifecycle(store, keys, TokenPolicy(issuer="a", audience="x"), clock)
    theirs = TokenLifecycle(store, keys, TokenPolicy(issuer="b", audience="x"), clock)
    pair = theirs.issue("alice")
    with pytest.raises(InvalidToken):
        ours.verify(pair.access_token)
    assert ours.revoke(pair.access_token) is RevokeOutcome.UNKNOWN


# -- revocation racing a refresh ----------------------------------------------


def revoke_every_family_of_alice(store: SQLStore, db_url: str) -> None:
    """A revocation, slipped in at one step of a refresh."""
    path = db_url.removeprefix("sqlite:///")
    for (family,) in sqlite_query(path, "SELECT family_id FROM signoff_families"):
        store.revoke_family(family, "alice", 1e12)


@pytest.mark.parametrize("before", ["get_family", "add_refresh"])
def test_a_family_revoked_during_a_refresh_issues_nothing(
    store: SQLStore,
    db_url: str,
    keys: KeySet,
    policy: TokenPolicy,
    clock: FrozenClock,
    before: str,
) -> None:
    pair = TokenLifecycle(store, keys, policy, clock).issue("alice")
    revoking = CountingStore(
        store, before={before: lambda: revoke_every_family_of_alice(store, db_url)}
    )
    racing = TokenLifecycle(revoking, keys, policy, clock)  # type: ignore[arg-type]
    with pytest.raises(InvalidGrant):
        racing.refresh(pair.refresh_token)
    dead(TokenLifecycle(store, keys, policy, clock), pair.access_token)


def test_revoke_refuses_non_strings(tokens: TokenLifecycle) -> None:
    assert tokens.revoke(None) is RevokeOutcome.UNKNOWN  # type: ignore[arg-type]
    assert tokens.revoke(b"bytes") is RevokeOutcome.UNKNOWN  # type: ignore[arg-type]
