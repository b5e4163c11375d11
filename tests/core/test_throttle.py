"""The throttling rule, without Flask: reserve, then check; refund on success."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.store import Store
from flask_signoff.core.throttle import (
    Attempt,
    Outcome,
    Throttle,
    ThrottlePolicy,
    account_name,
)
from flask_signoff.exceptions import TooManyAttempts


@pytest.fixture
def throttle(store: Store, clock: FrozenClock) -> Throttle:
    return Throttle(
        store, ThrottlePolicy(account_limit=3, ip_limit=5, window=60), clock
    )


def fail(throttle: Throttle, name: str, ip: str | None = "10.0.0.1") -> Attempt:
    attempt = throttle.reserve(name, ip)
    attempt.failed()
    return attempt


def test_the_limit_is_reserved_before_any_check(throttle: Throttle) -> None:
    held = [throttle.reserve("alice", "10.0.0.1") for _ in range(3)]
    # Three checks are under way, none reported yet: the fourth waits.
    with pytest.raises(TooManyAttempts) as refused:
        throttle.reserve("alice", "10.0.0.2")
    assert refused.value.retry_after == 60
    assert all(a.outcome is Outcome.PENDING for a in held)


def test_retry_after_counts_down_to_the_end_of_the_window(
    throttle: Throttle, clock: FrozenClock
) -> None:
    for _ in range(3):
        fail(throttle, "alice")
    clock.advance(45.5)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.reserve("alice")
    assert refused.value.retry_after == 15
    clock.advance(14.5)
    fail(throttle, "alice")  # a new window


def test_success_gives_back_its_own_attempt_only(throttle: Throttle) -> None:
    fail(throttle, "alice")
    fail(throttle, "alice")
    attempt = throttle.reserve("alice")
    attempt.succeeded()
    attempt.succeeded()  # once only
    fail(throttle, "alice")  # the third failure: the earlier two still count
    with pytest.raises(TooManyAttempts):
        throttle.reserve("alice")


def test_an_attempt_never_reported_stays_counted(throttle: Throttle) -> None:
    for _ in range(3):
        throttle.reserve("alice")
    with pytest.raises(TooManyAttempts):
        throttle.reserve("alice")


def test_an_outcome_is_reported_once(throttle: Throttle) -> None:
    attempt = fail(throttle, "alice")
    with pytest.raises(RuntimeError):
        attempt.succeeded()
    attempt = throttle.reserve("alice")
    attempt.succeeded()
    with pytest.raises(RuntimeError):
        attempt.failed()
    assert attempt.outcome is Outcome.SUCCEEDED


def test_a_refund_goes_to_its_own_window_only(
    throttle: Throttle, clock: FrozenClock
) -> None:
    slow = throttle.reserve("alice")  # a check still running at the window's end
    clock.advance(61)
    for _ in range(2):
        fail(throttle, "alice")
    slow.succeeded()  # must not give the new window a third free guess
    fail(throttle, "alice")
    with pytest.raises(TooManyAttempts):
        throttle.reserve("alice")


def test_a_locked_address_takes_nothing_from_the_account(throttle: Throttle) -> None:
    for i in range(5):
        fail(throttle, f"user{i}", "10.0.0.9")
    for _ in range(10):
        with pytest.raises(TooManyAttempts):
            throttle.reserve("alice", "10.0.0.9")
    # alice's own counter was not touched by the refused attempts.
    for _ in range(3):
        fail(throttle, "alice", "10.0.0.8")


def test_a_locked_account_gives_back_the_address_attempt(throttle: Throttle) -> None:
    for _ in range(3):
        fail(throttle, "alice", "10.0.0.1")
    for _ in range(10):
        with pytest.raises(TooManyAttempts):
            throttle.reserve("alice", "10.0.0.2")
    # 10.0.0.2 still has all of its five.
    for i in range(5):
        fail(throttle, f"user{i}", "10.0.0.2")
    with pytest.raises(TooManyAttempts):
        throttle.reserve("bob", "10.0.0.2")


def test_count_failure_counts_without_a_reservation(throttle: Throttle) -> None:
    for _ in range(4):  # the fourth finds the counter full and changes nothing
        throttle.count_failure("alice")
    with pytest.raises(TooManyAttempts):
        throttle.reserve("alice")


def test_limits_can_be_off(store: Store, clock: FrozenClock) -> None:
    off = Throttle(store, ThrottlePolicy(account_limit=None, ip_limit=None), clock)
    assert off.keys("alice", "10.0.0.1") == []
    for _ in range(50):
        off.reserve("alice", "10.0.0.1")


def test_keys_hash_the_folded_name_and_the_address(throttle: Throttle) -> None:
    # The same keys as counters written before: an upgrade keeps them.
    name = hashlib.sha256(b"alice").hexdigest()[:40]
    ip = hashlib.sha256(b"10.0.0.1").hexdigest()[:40]
    assert throttle.keys(" ALICE ", "10.0.0.1") == [(f"i:{ip}", 5), (f"a:{name}", 3)]
    assert account_name("\uff21LICE\u3000") == "alice"


@pytest.mark.parametrize("name", ["\udc80", "al\ud800ice"])
def test_a_lone_surrogate_is_counted_not_a_crash(throttle: Throttle, name: str) -> None:
    # What a JSON body's "\udc80" escape decodes to.
    for _ in range(3):
        fail(throttle, name, "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        throttle.reserve(name, "\udc80")
    fail(throttle, name + "x", "\udc80")


def test_keys_are_an_hmac_under_the_key_given(store: Store, clock: FrozenClock) -> None:
    secret = b"k" * 32
    keyed = Throttle(
        store, ThrottlePolicy(account_limit=3, ip_limit=5), clock, key=lambda: secret
    )
    name = hmac.new(secret, b"alice", hashlib.sha256).hexdigest()[:40]
    ip = hmac.new(secret, b"10.0.0.1", hashlib.sha256).hexdigest()[:40]
    assert keyed.keys("Alice", "10.0.0.1") == [(f"i:{ip}", 5), (f"a:{name}", 3)]
    # A source with no key yet (no SECRET_KEY) counts under a plain hash.
    unkeyed = Throttle(store, ThrottlePolicy(), clock, key=lambda: None)
    plain = hashlib.sha256(b"alice").hexdigest()[:40]
    assert unkeyed.keys("alice", None) == [(f"a:{plain}", 10)]
