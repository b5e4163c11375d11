"""Run in a separate process by test_tokens_race: one refresh, one answer.

A module of its own (not a test module) so that a spawned interpreter
imports only what it needs.
"""

from __future__ import annotations

from typing import Any

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.keys import KeySet
from flask_signoff.core.tokens import TokenLifecycle, TokenPolicy
from flask_signoff.exceptions import InvalidGrant
from flask_signoff.stores.sql import SQLStore


def refresh_once(
    url: str,
    secret_key: str | bytes,
    now: float,
    refresh_token: str,
    barrier: Any,
    results: Any,
) -> None:
    store = SQLStore(url)
    tokens = TokenLifecycle(
        store,
        KeySet.from_secret_keys([secret_key]),
        TokenPolicy(issuer="https://app.example", audience="app.example"),
        FrozenClock(now),
    )
    # Warm the connection and schema check before the start line.
    store.get_epoch("warm-up")
    barrier.wait(30)
    try:
        pair = tokens.refresh(refresh_token)
    except InvalidGrant as e:
        results.put(("refused", type(e).__name__, None))
    else:
        results.put(("won", pair.family_id, pair.refresh_token))
    finally:
        store.close()
