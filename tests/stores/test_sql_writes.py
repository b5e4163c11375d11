"""The writes of the SQL store: which wait for the disk, and the purge.

A revocation (a session deleted, a family revoked, a refresh token spent,
an epoch bumped) must survive a power cut once answered: SQLite commits it
with ``synchronous=FULL``, PostgreSQL with a synchronous commit. A sign-in,
a touch, a token issued, a throttle count or a purge costs one more sign-in
when lost, and skips the sync. The level of every commit is read from the
database itself: SQLite's statement trace (the ``PRAGMA synchronous`` in
force on the connection at ``COMMIT``), PostgreSQL's ``SHOW
synchronous_commit`` inside the transaction just before it commits.

The purge never holds a long lock: it finds expired rows through the index
of their deadline, and deletes them in short transactions.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from flask_signoff.core.records import RefreshRecord
from flask_signoff.stores.sql import SQLStore
from flask_signoff.stores.sql.fast import SQLiteReads
from tests.stores.test_conformance import make_family, make_session, new_key, tagging
from tests.support.servers import PostgresServer

NOW = 1_000_000.0


class Commits:
    """The durability of every commit a store makes: ``"durable"`` or
    ``"fast"``, in order."""

    def __init__(self, store: SQLStore) -> None:
        self.levels: list[str] = []
        if store.dialect == "sqlite":
            self._watch_sqlite(store)
        else:
            self._watch_postgresql(store.engine)

    def _watch_sqlite(self, store: SQLStore) -> None:
        # Before the store's own set-up of each connection, so the trace
        # sees its first PRAGMA synchronous too.
        @event.listens_for(store.engine, "connect", insert=True)
        def trace(dbapi_conn: Any, _record: Any) -> None:
            self._trace(dbapi_conn, "?")

        # The fast path's connection of this thread (reads, and the touch),
        # opened with the synchronous level its set-up chose.
        if isinstance(store.fast_reads, SQLiteReads):
            conn = store.fast_reads.connection()
            (level,) = conn.execute("PRAGMA synchronous").fetchone()
            self._trace(conn, {1: "NORMAL", 2: "FULL"}.get(level, "?"))

    def _trace(self, dbapi_conn: Any, initial: str) -> None:
        level, explicit = [initial], [False]

        def statement(sql: str) -> None:
            text = sql.strip().upper().replace(" ", "")
            if text.startswith("PRAGMASYNCHRONOUS="):
                level[0] = text.split("=", 1)[1]
            elif text.startswith("BEGIN"):
                explicit[0] = True
            elif text == "COMMIT":
                explicit[0] = False
                self.levels.append({"FULL": "durable", "NORMAL": "fast"}[level[0]])
            elif not explicit[0] and text.startswith(("INSERT", "UPDATE", "DELETE")):
                # Outside BEGIN ... COMMIT, a write commits by itself.
                self.levels.append({"FULL": "durable", "NORMAL": "fast"}[level[0]])

        dbapi_conn.set_trace_callback(statement)

    def _watch_postgresql(self, engine: sa.Engine) -> None:
        @event.listens_for(engine, "commit")
        def commit(conn: sa.Connection) -> None:
            level = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
            self.levels.append("fast" if level == "off" else "durable")

    def of(self, call: Callable[[], Any]) -> list[str]:
        """The commits ``call()`` made."""
        del self.levels[:]
        call()
        return list(self.levels)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SQLStore, Commits]]:
    """A store on a new database, and its commits from its first one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(f"durability{time.monotonic_ns()}")
    store = SQLStore(url)
    try:
        commits = Commits(store)
        store.create_schema()
        with tagging(store):
            yield store, commits
    finally:
        store.close()


def _calls(s: SQLStore) -> dict[str, tuple[Callable[[], Any], str]]:
    """Each write of the store, on records made for it, and how it must
    commit."""
    alice, other, rotated = (make_session(NOW, "alice") for _ in range(3))
    family, first = make_family(NOW, "alice")
    spare, spare_first = make_family(NOW, "alice")
    following = RefreshRecord(
        key=new_key("alice"),
        family_id=family.family_id,
        user_id="alice",
        issued_at=NOW,
        expires_at=family.expires_at,
    )
    s.create_session(other)
    s.create_family(spare, spare_first)
    return {
        "create_session": (lambda: s.create_session(alice, max_per_user=5), "fast"),
        "touch_session": (
            lambda: s.touch_session(alice.key, NOW, NOW + 60),
            "fast",
        ),
        "update_session": (
            lambda: s.update_session(dataclasses.replace(alice, data="x")),
            "fast",
        ),
        "rotate_session": (
            lambda: s.rotate_session(alice.key, rotated, require_old=True),
            "durable",
        ),
        "delete_session": (lambda: s.delete_session(rotated.key), "durable"),
        "delete_session_by_public_id": (
            lambda: s.delete_session_by_public_id("alice", other.public_id),
            "durable",
        ),
        "delete_user_sessions": (
            lambda: s.delete_user_sessions("alice"),
            "durable",
        ),
        "delete_all_sessions": (s.delete_all_sessions, "durable"),
        "create_family": (lambda: s.create_family(family, first), "fast"),
        "spend_refresh": (lambda: s.spend_refresh(first.key, NOW), "durable"),
        "add_refresh": (lambda: s.add_refresh(following, NOW), "fast"),
        "revoke_family": (
            lambda: s.revoke_family(family.family_id, "alice", NOW + 900),
            "durable",
        ),
        "revoke_user_families": (
            lambda: s.revoke_user_families("alice"),
            "durable",
        ),
        "revoke_all_families": (
            lambda: s.revoke_all_families(NOW + 900),
            "durable",
        ),
        "bump_epoch": (lambda: s.bump_epoch("alice"), "durable"),
        "reserve": (lambda: s.reserve("ip:1", 5, 60, NOW), "fast"),
        "release": (lambda: s.release("ip:1", NOW + 60), "fast"),
    }


def test_revocations_wait_for_the_disk_and_nothing_else_does(
    sql_store: tuple[SQLStore, Commits],
) -> None:
    store, commits = sql_store
    calls = _calls(store)
    made = {name: commits.of(call) for name, (call, _) in calls.items()}
    # Every call commits once, at the level it must: all in one assertion,
    # so a failure lists every wrong call at once.
    assert made == {name: [level] for name, (_, level) in calls.items()}


def test_the_purge_does_not_wait_for_the_disk(
    sql_store: tuple[SQLStore, Commits],
) -> None:
    store, commits = sql_store
    for _ in range(3):
        store.create_session(make_session(NOW, "bob", drop_at=NOW - 1))
    levels = commits.of(lambda: store.purge_expired(NOW))
    assert "fast" in levels
    assert set(levels) == {"fast"}


def test_the_purge_finds_expired_rows_through_the_deadline_index(
    sql_store: tuple[SQLStore, Commits],
) -> None:
    store = sql_store[0]
    deadlines = {
        table.name: deadline.name for table, _, deadline in store.schema.expiring()
    }
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            # Tables this small are read whole; the question is whether
            # the plan can use the index at all.
            conn.exec_driver_sql("SET enable_seqscan = off")
        for stmt in store._w.purge:
            compiled = stmt.compile(dialect=store.engine.dialect)
            params = compiled.construct_params({"b_now": NOW, "b_limit": 100})
            if store.dialect == "sqlite":
                rows = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}",
                    tuple(params[n] for n in compiled.positiontup or ()),
                )
                plan = "\n".join(str(r[-1]) for r in rows)
            else:
                rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", params)
                plan = "\n".join(str(r[0]) for r in rows)
            table = stmt.table.name  # type: ignore[attr-defined]
            deadline = deadlines[table]
            if store.dialect == "sqlite":
                # The subquery searches the deadline's index; the DELETE
                # finds each row by its key; no statement reads the table.
                search = (
                    rf"SEARCH {table} USING (COVERING )?INDEX \S+ \({deadline}<\?\)"
                )
                assert re.search(search, plan), plan
                assert f"SCAN {table}" not in plan, plan
            else:
                assert "Seq Scan" not in plan, plan
                assert f"Index Cond: ({deadline} <=" in plan, plan


def test_the_purge_deletes_in_short_transactions(
    sql_store: tuple[SQLStore, Commits],
) -> None:
    store, commits = sql_store
    store.purge_chunk = 10
    store.purge_pause = 0.0
    for _ in range(25):
        store.create_session(make_session(NOW, "bob", drop_at=NOW - 1))
    live = make_session(NOW, "bob")
    store.create_session(live)
    made = commits.of(lambda: store.purge_expired(NOW, batch_size=500))
    # 10 + 10 + 5 sessions, then one transaction per other table.
    assert len(made) == 3 + len(store.schema.expiring()) - 1
    s = store.t["sessions"]
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(s.c.key)).scalars().all() == [live.key]
