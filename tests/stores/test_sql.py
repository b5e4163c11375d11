"""SQL-only guarantees: schema creation races (SQLite file, PostgreSQL)."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from pathlib import Path

import pytest

from flask_signoff.stores.sql import SQLStore
from tests.servers import PostgresServer
from tests.stores.test_conformance import concurrently

_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database with no tables at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"race{next(_counter)}_{int(time.time())}")


def test_workers_creating_the_schema_at_once_all_come_up(empty_db: str) -> None:
    stores = [SQLStore(empty_db) for _ in range(8)]
    try:
        # Each store's first call creates the schema, all released together.
        assert sorted(concurrently(8, lambda i: stores[i].bump_epoch("alice"))) == list(
            range(1, 9)
        )
    finally:
        for s in stores:
            s.close()


def _worker(url: str, start_at: float) -> int:
    time.sleep(max(0.0, start_at - time.time()))
    store = SQLStore(url)
    try:
        return store.bump_epoch("alice")
    finally:
        store.close()


def test_processes_creating_the_schema_at_once_all_come_up(empty_db: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # every process imported and waiting by then
    with ctx.Pool(4) as pool:
        results = pool.starmap(_worker, [(empty_db, start_at)] * 4)
    assert sorted(results) == [1, 2, 3, 4]
