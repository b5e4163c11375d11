"""Concurrent spends of one refresh token on a real SQLite file.

Exactly one request may win a new pair; the others get invalid_grant inside
the grace window and the family is not revoked.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
import race_worker

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import hash_secret
from flask_signoff.core.tokens import TokenLifecycle
from flask_signoff.exceptions import InvalidGrant, RefreshTokenReused
from flask_signoff.stores.sql import SQLStore
from tests.support import SECRET_KEY
from tests.support.backends import sqlite_query


def test_eight_threads_one_winner(tokens: TokenLifecycle, store: SQLStore) -> None:
    pair = tokens.issue("alice")
    barrier = threading.Barrier(8)
    won: list[Any] = []
    refused: list[BaseException] = []
    unexpected: list[BaseException] = []

    def spend() -> None:
        barrier.wait(10)
        try:
            won.append(tokens.refresh(pair.refresh_token))
        except InvalidGrant as e:
            refused.append(e)
        except BaseException as e:  # reported by the assert below
            unexpected.append(e)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert unexpected == []
    assert len(won) == 1
    assert len(refused) == 7
    # Inside the grace window: plain invalid_grant, the family lives.
    assert not any(isinstance(e, RefreshTokenReused) for e in refused)
    winner = won[0]
    assert winner.family_id == pair.family_id
    tokens.verify(winner.access_token)
    tokens.verify(tokens.refresh(winner.refresh_token).access_token)


@pytest.mark.slow
def test_two_processes_one_winner(
    tokens: TokenLifecycle, store: SQLStore, db_url: str, clock: FrozenClock
) -> None:
    ctx = multiprocessing.get_context("spawn")
    for _ in range(3):
        pair = tokens.issue("alice")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=race_worker.refresh_once,
                args=(
                    db_url,
                    SECRET_KEY,
                    clock(),
                    pair.refresh_token,
                    barrier,
                    results,
                ),
            )
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        answers = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        outcomes = sorted(a[0] for a in answers)
        assert outcomes == ["refused", "won"], answers
        (winner,) = [a for a in answers if a[0] == "won"]
        (loser,) = [a for a in answers if a[0] == "refused"]
        assert loser[1] == "InvalidGrant"
        # Never two new families: the winner continued the one it had.
        assert winner[1] == pair.family_id
        spent = store.get_refresh(hash_secret(pair.refresh_token))
        assert spent is not None
        assert spent.spent_at is not None
        assert tokens.refresh(winner[2]).family_id == pair.family_id
    # Read from the file: the store's own reads do not list families.
    path = db_url.removeprefix("sqlite:///")
    query = "SELECT count(*) FROM signoff_families WHERE user_id = 'alice'"
    assert sqlite_query(path, query) == [(3,)]
