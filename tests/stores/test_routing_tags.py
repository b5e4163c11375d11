"""The routing tag in front of every credential, on every backend.

A signed-in user's session ids and refresh tokens start with
``Store.user_tag(user_id)``: HMAC-SHA256 of the user id under a random key
that the store creates once and keeps. Someone who reads a cookie in a log
cannot compute whose it is, and the tag stays the same for as long as the
store's data lives, whatever happens to the app's ``SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import time
from typing import Any

import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import TAG_LENGTH, parse_secret
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.exceptions import StoreUnavailable
from flask_signoff.stores import open_store
from tests.stores.test_conformance import concurrently
from tests.support.backends import Backend


def unkeyed_tag(user_id: str) -> str:
    """What anyone can compute from a user id alone."""
    digest = hashlib.sha256(b"flask-signoff:tag:" + user_id.encode())
    return digest.hexdigest()[:TAG_LENGTH]


def test_a_users_tag_cannot_be_computed_from_the_user_id(backend: Backend) -> None:
    store = backend.store
    for user_id in ("1", "2", "alice", "admin"):
        tag = store.user_tag(user_id)
        assert re.fullmatch(r"[0-9a-f]{8}", tag)
        assert tag != unkeyed_tag(user_id)
    assert store.user_tag("1") != store.user_tag("2")
    assert store.user_tag("x" * 1000) != store.user_tag("x" * 999)


def test_the_credentials_of_a_user_carry_the_keyed_tag(backend: Backend) -> None:
    store = backend.store
    lifecycle = SessionLifecycle(store, SessionPolicy(), FrozenClock(time.time()))
    secret, record = lifecycle.sign_in("1")
    assert parse_secret(secret) == record.tag == store.user_tag("1")
    assert not secret.startswith(unkeyed_tag("1"))
    rotated = lifecycle.rotate(record)
    assert rotated is not None
    assert parse_secret(rotated[0]) == store.user_tag("1")
    anonymous, _ = lifecycle.start_anonymous("{}")
    assert parse_secret(anonymous) != store.user_tag("1")


def test_the_same_store_data_gives_the_same_tag(backend: Backend) -> None:
    tag = backend.store.user_tag("1")
    key = backend.store.load_routing_key()
    assert len(key) == 32
    # Another worker on the same data, and this one asking again.
    again = backend.reopen()
    assert again.load_routing_key() == key
    assert again.user_tag("1") == tag
    assert backend.store.load_routing_key() == key


def _tags_in_a_process(
    url: str, options: dict[str, Any], start_at: float, threads: int
) -> list[str]:
    """A worker process: ``threads`` fresh store objects ask at ``start_at``."""
    stores = [open_store(url, options) for _ in range(threads)]
    try:
        time.sleep(max(0.0, start_at - time.time()))
        return concurrently(threads, lambda i: stores[i].user_tag("1"))
    finally:
        for s in stores:
            s.close()


@pytest.mark.slow  # spawns processes
def test_a_fresh_store_asked_at_once_everywhere_makes_one_key(
    backend: Backend,
) -> None:
    # Nobody has read this namespace's key yet: every store object below
    # races to create it, in two processes of four threads each, plus four
    # threads here. All must end up with the one key that was kept.
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # every process imported and waiting by then
    mine = [backend.reopen() for _ in range(4)]
    with ctx.Pool(2) as pool:
        pending = pool.starmap_async(
            _tags_in_a_process,
            [(backend.url, backend.options, start_at, 4)] * 2,
        )
        time.sleep(max(0.0, start_at - time.time()))
        here = concurrently(4, lambda i: mine[i].user_tag("1"))
        there = [tag for tags in pending.get(60) for tag in tags]
    assert len(here + there) == 12
    assert set(here + there) == {backend.store.user_tag("1")}


def test_a_store_down_before_its_key_was_read_is_unavailable(
    backend: Backend,
) -> None:
    with backend.outage() as dead:
        for _ in range(2):  # a failed read leaves nothing behind to fall back on
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                dead.user_tag("1")
            assert time.monotonic() - started < 5
        lifecycle = SessionLifecycle(dead, SessionPolicy(), FrozenClock(time.time()))
        with pytest.raises(StoreUnavailable):
            lifecycle.sign_in("1")
