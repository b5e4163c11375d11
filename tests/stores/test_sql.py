"""SQL-only guarantees: schema creation races (SQLite file, PostgreSQL)."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from flask_signoff.core.ids import hash_secret, new_secret, random_tag
from flask_signoff.core.records import SessionRecord
from flask_signoff.exceptions import StoreUnavailable
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


# -- the SQLite read path: one statement on a per-thread connection --------------


def _record(key: str) -> SessionRecord:
    return SessionRecord(
        key=key,
        tag=key[:8],
        public_id="pub-" + key[:8],
        user_id=None,
        data='{"a":1}',
        created_at=1.5,
        last_seen_at=2.25,
        expires_at=3.125,
        drop_at=3.0,
        remember=True,
        fresh_until=0.0,
        ip="127.0.0.1",
        user_agent=None,
    )


def test_sqlite_reads_use_one_connection_per_thread(sql_store: SQLStore) -> None:
    record = _record(hash_secret(new_secret(random_tag())))
    sql_store.create_session(record)
    assert sql_store.get_session(record.key) == record
    mine = sql_store._sqlite_connection()
    assert sql_store._sqlite_connection() is mine
    theirs: list[object] = []

    def read() -> None:
        assert sql_store.get_session(record.key) == record
        theirs.append(sql_store._sqlite_connection())

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(10)
    assert theirs
    assert theirs[0] is not mine
    # Same pragmas as the engine's connections.
    assert mine.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert mine.isolation_level is None


def test_sqlite_reads_reconnect_after_close(sql_store: SQLStore) -> None:
    record = _record(hash_secret(new_secret(random_tag())))
    sql_store.create_session(record)
    before = sql_store._sqlite_connection()
    sql_store.close()
    assert sql_store.get_session(record.key) == record
    assert sql_store._sqlite_connection() is not before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sqlite_reads_in_a_forked_child_use_their_own_connection(
    sql_store: SQLStore,
) -> None:
    record = _record(hash_secret(new_secret(random_tag())))
    sql_store.create_session(record)
    parent = sql_store._sqlite_connection()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def child() -> None:
        ok = sql_store.get_session(record.key) == record
        queue.put(ok and sql_store._sqlite_connection() is not parent)

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert queue.get() is True
    assert sql_store.get_session(record.key) == record


def test_sqlite_read_of_a_broken_file_is_unavailable(tmp_path: Path) -> None:
    target = tmp_path / "not-a-db.sqlite3"
    store = SQLStore(f"sqlite:///{target}")
    try:
        store.create_schema()
        store.close()
        target.write_bytes(b"this is not a database" * 100)
        with pytest.raises(StoreUnavailable, match="sqlite"):
            store.get_session(hash_secret(new_secret(random_tag())))
    finally:
        store.close()
