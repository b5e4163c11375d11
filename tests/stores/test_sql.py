"""SQL-only guarantees: schema creation races (SQLite file, PostgreSQL),
rotation racing sign-outs, and which calls run again on a new connection
when theirs turns out dead."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import socket
import sqlite3
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from flask_signoff.core.ids import hash_secret, new_secret, random_tag
from flask_signoff.core.records import (
    FAMILY_FIELDS,
    REFRESH_FIELDS,
    SESSION_FIELDS,
    SessionRecord,
)
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.exceptions import StoreUnavailable
from flask_signoff.stores.sql import SQLStore
from flask_signoff.stores.sql.fast import SQLiteReads
from flask_signoff.stores.sql.schema import Schema
from flask_signoff.stores.sql.watchdog import CallOverrun, Watchdog
from tests.stores.test_conformance import (
    concurrently,
    make_family,
    make_session,
    tagging,
)
from tests.support.backends import locked_sqlite
from tests.support.servers import PostgresServer, free_port

_counter = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
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


@pytest.mark.slow  # spawns processes
def test_processes_creating_the_schema_at_once_all_come_up(empty_db: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # every process imported and waiting by then
    with ctx.Pool(4) as pool:
        results = pool.starmap(_worker, [(empty_db, start_at)] * 4)
    assert sorted(results) == [1, 2, 3, 4]


def test_workers_starting_on_an_older_database_add_the_new_columns(
    empty_db: str,
) -> None:
    # A database as a version without the auth_stamp columns left it, with
    # a live session and a refresh family in it.
    now = time.time()
    old = SQLStore(empty_db)
    with tagging(old):
        session = make_session(now, auth_stamp="")
        family, token = make_family(now)
    family.auth_stamp = ""
    old.create_session(session)
    old.create_family(family, token)
    with old.engine.begin() as conn:
        for table in ("signoff_sessions", "signoff_families"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN auth_stamp")
    old.close()

    stores = [SQLStore(empty_db) for _ in range(8)]
    try:
        # Every worker's first call sets the schema up, all released together.
        got = concurrently(8, lambda i: stores[i].get_session(session.key))
        assert got == [session] * 8
        store = stores[0]
        assert store.get_family(family.family_id, "alice") == family
        assert store.get_refresh(token.key) == token
        with store.engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in ("signoff_sessions", "signoff_families"):
                names = [c["name"] for c in inspector.get_columns(table)]
                assert names.count("auth_stamp") == 1
        # New records keep their stamp; an older worker still running, which
        # writes no auth_stamp, gets "" (bound to nothing).
        with tagging(store):
            bound = make_session(now)
        store.create_session(bound)
        assert store.get_session(bound.key) == bound
        # The older version's INSERT names only these columns.
        families = store.t["families"]
        with store.engine.begin() as conn:
            conn.execute(
                sa.insert(families).values(
                    family_id="legacy",
                    user_id="bob",
                    created_at=now,
                    expires_at=now + 60,
                    client_id="",
                )
            )
        legacy = store.get_family("legacy", "bob")
        assert legacy is not None
        assert legacy.auth_stamp == ""
    finally:
        for s in stores:
            s.close()


def test_an_older_database_gets_the_provider_columns_and_indexes(
    empty_db: str,
) -> None:
    # A database as a version without OpenID Connect logout left it.
    now = time.time()
    old = SQLStore(empty_db)
    with tagging(old):
        session = make_session(now)
    old.create_session(session)
    columns = ("oidc_iss", "oidc_sid", "oidc_sub")
    with old.engine.begin() as conn:
        for table in ("sessions", "families"):
            for kind in ("sid", "sub"):
                conn.exec_driver_sql(f"DROP INDEX ix_signoff_{table}_oidc_{kind}")
            dropped = columns + (("oidc_id_token",) if table == "sessions" else ())
            for column in dropped:
                conn.exec_driver_sql(
                    f"ALTER TABLE signoff_{table} DROP COLUMN {column}"
                )
    old.close()

    stores = [SQLStore(empty_db) for _ in range(4)]
    try:
        got = concurrently(4, lambda i: stores[i].get_session(session.key))
        assert got == [session] * 4
        store = stores[0]
        with store.engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in ("sessions", "families"):
                indexes = {
                    i["name"]: i["column_names"]
                    for i in inspector.get_indexes(f"signoff_{table}")
                }
                assert indexes[f"ix_signoff_{table}_oidc_sid"] == [
                    "oidc_iss",
                    "oidc_sid",
                ]
                assert indexes[f"ix_signoff_{table}_oidc_sub"] == [
                    "oidc_iss",
                    "oidc_sub",
                ]
        with tagging(store):
            signed_in = make_session(
                now, oidc_iss="https://idp.example", oidc_sid="s1", oidc_sub="u1"
            )
        store.create_session(signed_in)
        assert store.get_session(signed_in.key) == signed_in
        ended = store.end_provider_sessions(
            "https://idp.example", sid="s1", until=now + 60
        )
        assert ended == 1
        assert store.get_session(session.key) == session
    finally:
        for s in stores:
            s.close()


def test_the_record_tables_have_the_records_fields_in_order() -> None:
    # Rows convert to records by position: a column out of place (or a
    # field without its column) would put values in the wrong fields.
    tables = Schema("any_").tables
    for name, fields in (
        ("sessions", SESSION_FIELDS),
        ("families", FAMILY_FIELDS),
        ("refresh", REFRESH_FIELDS),
    ):
        assert tuple(tables[name].c.keys()) == fields, name


# -- the SQLite read path: one statement on a per-thread connection --------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{tmp_path / 'reads.sqlite3'}")
    yield store
    store.close()


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


def _read_connection(store: SQLStore) -> sqlite3.Connection:
    """The connection the calling thread's session reads use."""
    reads = store.fast_reads
    assert isinstance(reads, SQLiteReads)
    return reads.connection()


def test_sqlite_reads_use_one_connection_per_thread(sqlite_store: SQLStore) -> None:
    record = _record(hash_secret(new_secret(random_tag())))
    sqlite_store.create_session(record)
    assert sqlite_store.get_session(record.key) == record
    mine = _read_connection(sqlite_store)
    assert _read_connection(sqlite_store) is mine
    theirs: list[object] = []

    def read() -> None:
        assert sqlite_store.get_session(record.key) == record
        theirs.append(_read_connection(sqlite_store))

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(10)
    assert theirs
    assert theirs[0] is not mine
    # Same pragmas as the engine's connections.
    assert mine.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert mine.isolation_level is None


def test_sqlite_reads_reconnect_after_close(sqlite_store: SQLStore) -> None:
    record = _record(hash_secret(new_secret(random_tag())))
    sqlite_store.create_session(record)
    before = _read_connection(sqlite_store)
    sqlite_store.close()
    assert sqlite_store.get_session(record.key) == record
    assert _read_connection(sqlite_store) is not before


@pytest.mark.slow  # forks a process
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sqlite_reads_in_a_forked_child_use_their_own_connection(
    sqlite_store: SQLStore,
) -> None:
    record = _record(hash_secret(new_secret(random_tag())))
    sqlite_store.create_session(record)
    parent = _read_connection(sqlite_store)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def child() -> None:
        ok = sqlite_store.get_session(record.key) == record
        queue.put(ok and _read_connection(sqlite_store) is not parent)

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert queue.get() is True
    assert sqlite_store.get_session(record.key) == record


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


def _paused_rotation(
    store: SQLStore, old: SessionRecord, action: Callable[[], object]
) -> tuple[SessionRecord, dict[str, object]]:
    """Rotate ``old`` to a new id while ``action`` runs in another thread.

    The rotation stops right after deleting the old row, before inserting
    the new one; ``action`` starts then, and the rotation goes on half a
    second later (the action waits for it, or already did its work).
    """
    new = make_session(time.time(), public_id=old.public_id, created_at=old.created_at)
    deleted, release = threading.Event(), threading.Event()

    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            threading.current_thread().name == "rotation"
            and statement.lstrip()[:6].upper() == "DELETE"
        ):
            deleted.set()
            release.wait(5)

    event.listen(store.engine, "after_cursor_execute", pause)
    results: dict[str, object] = {}

    def rotate() -> None:
        results["rotated"] = store.rotate_session(old.key, new, require_old=True)

    def other() -> None:
        results["action"] = action()

    rotation = threading.Thread(target=rotate, name="rotation")
    try:
        rotation.start()
        assert deleted.wait(5)
        racer = threading.Thread(target=other)
        racer.start()
        time.sleep(0.5)
    finally:
        release.set()
        rotation.join(10)
    racer.join(10)
    event.remove(store.engine, "after_cursor_execute", pause)
    return new, results


@pytest.fixture
def sql_store(empty_db: str) -> Iterator[SQLStore]:
    store = SQLStore(empty_db)
    store.create_schema()
    with tagging(store):
        yield store
    store.close()


def test_a_rotation_never_outlives_a_sign_out_everywhere(sql_store: SQLStore) -> None:
    # A remembered session coming back (rotated as it is opened) while the
    # user signs out everywhere on another device: no session may survive.
    old = make_session(time.time())
    sql_store.create_session(old)
    new, results = _paused_rotation(
        sql_store, old, lambda: sql_store.delete_user_sessions("alice")
    )
    assert results == {"rotated": True, "action": 1}
    assert sql_store.get_session(new.key) is None
    assert sql_store.list_sessions("alice", time.time()) == []


def test_a_rotation_never_outlives_the_revocation_of_its_session(
    sql_store: SQLStore,
) -> None:
    # "Sign out that device" while that device's session is being rotated:
    # reported done, so the session must be gone under its new id too.
    old = make_session(time.time())
    sql_store.create_session(old)
    new, results = _paused_rotation(
        sql_store,
        old,
        lambda: sql_store.delete_session_by_public_id("alice", old.public_id),
    )
    assert results["rotated"] is True
    assert results["action"] is not None
    assert sql_store.get_session(new.key) is None
    assert sql_store.list_sessions("alice", time.time()) == []


# -- a dead connection: retried when that is safe ------------------------------


class Faults:
    """Make the next statements or the next commit of a store fail.

    A "disconnect" is the error a DB-API driver raises on a connection that
    died (SQLAlchemy then throws the connection away); any other error is an
    outage of another kind (a lock held too long, say).
    """

    DISCONNECT = "Cannot operate on a closed database."

    def __init__(self, store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        self.fail_statements: list[Exception] = []
        self.fail_commits: list[Exception] = []
        self.commits = 0
        event.listen(store.engine, "before_cursor_execute", self._before_execute)
        dialect = store.engine.dialect
        do_commit = dialect.do_commit

        def failing_commit(dbapi_connection: Any) -> None:
            self.commits += 1
            if self.fail_commits:
                raise self.fail_commits.pop(0)
            do_commit(dbapi_connection)

        monkeypatch.setattr(dialect, "do_commit", failing_commit)

    def _before_execute(
        self, conn: Any, cursor: Any, statement: str, *args: Any
    ) -> None:
        if statement.startswith(("SELECT", "UPDATE", "INSERT", "DELETE")):
            self.statements.append(statement.split()[0])
            if self.fail_statements:
                raise self.fail_statements.pop(0)


@pytest.fixture
def faulty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{tmp_path / 'faulty.sqlite3'}", timeout=0.5)
    store.create_schema()
    yield store
    store.close()


def _signed_in(store: SQLStore) -> SessionRecord:
    lifecycle = SessionLifecycle(store, SessionPolicy())
    _, record = lifecycle.sign_in("alice")
    return record


def test_a_read_on_a_dead_connection_runs_again(
    faulty: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _signed_in(faulty)
    faults = Faults(faulty, monkeypatch)
    faults.fail_statements.append(sqlite3.ProgrammingError(Faults.DISCONNECT))
    assert faulty.list_sessions("alice", record.created_at) == [record]
    assert faults.statements == ["SELECT", "SELECT"]


def test_a_write_that_died_before_commit_runs_again(
    faulty: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _signed_in(faulty)
    faults = Faults(faulty, monkeypatch)
    faults.fail_statements.append(sqlite3.ProgrammingError(Faults.DISCONNECT))
    record.data = "changed"
    assert faulty.update_session(record) is True
    assert faults.statements == ["UPDATE", "UPDATE"]
    assert faults.commits == 1
    stored = faulty.get_session(record.key)
    assert stored is not None
    assert stored.data == "changed"


def test_a_write_that_died_while_committing_is_not_run_again(
    faulty: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The COMMIT may have reached the server: running the write again could
    # apply it twice (spend a refresh token twice, bump an epoch twice).
    faults = Faults(faulty, monkeypatch)
    faults.fail_commits.append(sqlite3.ProgrammingError(Faults.DISCONNECT))
    with pytest.raises(StoreUnavailable):
        faulty.bump_epoch("alice")
    assert faults.statements == ["INSERT"]
    assert faults.commits == 1


def test_other_errors_are_not_run_again(
    faulty: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _signed_in(faulty)
    faults = Faults(faulty, monkeypatch)
    faults.fail_statements.append(sqlite3.OperationalError("database is locked"))
    with pytest.raises(StoreUnavailable, match="unavailable: OperationalError"):
        faulty.list_sessions("alice", record.created_at)
    assert faults.statements == ["SELECT"]


def test_a_second_dead_connection_is_an_outage(
    faulty: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _signed_in(faulty)
    faults = Faults(faulty, monkeypatch)
    faults.fail_statements += [
        sqlite3.ProgrammingError(Faults.DISCONNECT),
        sqlite3.ProgrammingError(Faults.DISCONNECT),
    ]
    with pytest.raises(StoreUnavailable):
        faulty.list_sessions("alice", record.created_at)
    assert faults.statements == ["SELECT", "SELECT"]


# -- the watchdog that ends calls to a frozen server -----------------------------


class _FakeConnection:
    """What the watchdog sees of a psycopg connection in the pool."""

    def __init__(self, sock: socket.socket) -> None:
        pgconn = types.SimpleNamespace(socket=sock.fileno())
        self.dbapi_connection = types.SimpleNamespace(pgconn=pgconn)
        self.invalidated = False

    def invalidate(self) -> None:
        self.invalidated = True

    def watched_by(self, watchdog: Watchdog) -> Any:
        return watchdog.watch(self.dbapi_connection, self.invalidate)


def _wait_for_answer(sock: socket.socket) -> bytes:
    """Block as a driver waiting for its server; a closed socket is an error."""
    data = sock.recv(16)
    if not data:
        raise OperationalError("SELECT 1", None, ConnectionResetError())
    return data


def test_the_watchdog_ends_a_call_that_overruns_and_spares_the_others() -> None:
    watchdog = Watchdog(0.3)
    slow_client, slow_server = socket.socketpair()
    fast_client, fast_server = socket.socketpair()
    slow, fast = _FakeConnection(slow_client), _FakeConnection(fast_client)
    try:
        start = time.monotonic()
        with pytest.raises(CallOverrun), slow.watched_by(watchdog):
            _wait_for_answer(slow_client)
        assert 0.3 <= time.monotonic() - start < 1.0
        assert slow.invalidated
        # A call that gets its answer in time is left alone, and so is its
        # connection, whatever the watchdog does meanwhile.
        fast_server.sendall(b"answer")
        with fast.watched_by(watchdog):
            assert _wait_for_answer(fast_client) == b"answer"
        time.sleep(0.4)
        assert not fast.invalidated
        fast_server.sendall(b"still open")
        assert fast_client.recv(16) == b"still open"
    finally:
        watchdog.close()
        for s in (slow_client, slow_server, fast_client, fast_server):
            s.close()


def test_the_watchdog_sleeps_once_nothing_is_left_to_end() -> None:
    watchdog = Watchdog(0.1)
    client, server = socket.socketpair()
    conn = _FakeConnection(client)
    try:
        with conn.watched_by(watchdog):
            time.sleep(0.3)  # killed at 0.1 s, still running: no busy loop
            assert watchdog.idle
        assert conn.invalidated
        # A new call wakes it up again.
        other_client, other_server = socket.socketpair()
        with other_client, other_server:
            other = _FakeConnection(other_client)
            start = time.monotonic()
            with pytest.raises(CallOverrun), other.watched_by(watchdog):
                _wait_for_answer(other_client)
            assert time.monotonic() - start < 0.5
    finally:
        watchdog.close()
        client.close()
        server.close()


# -- what an outage says -----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def dead_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    """A store whose database cannot be reached: PostgreSQL on a port where
    nothing listens; a SQLite file locked by another process's writer past
    the busy timeout."""
    if request.param == "postgres":
        store = SQLStore(f"postgresql://nobody@127.0.0.1:{free_port()}/signoff")
        yield store
        store.close()
        return
    with locked_sqlite(tmp_path / "locked.sqlite3") as locked:
        assert isinstance(locked, SQLStore)
        yield locked


def test_an_outage_names_the_backend_and_the_operation(dead_store: SQLStore) -> None:
    # The reads of every request (their own fast path), a read and a write
    # through SQLAlchemy: each names where it failed, for the logs.
    key = hash_secret(new_secret(random_tag()))
    calls: dict[str, Callable[[], object]] = {
        "get_session": lambda: dead_store.get_session(key),
        "access_state": lambda: dead_store.access_state("alice", "f", time.time()),
        "list_sessions": lambda: dead_store.list_sessions("alice", time.time()),
        "bump_epoch": lambda: dead_store.bump_epoch("alice"),
    }
    for operation, call in calls.items():
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert caught.value.backend == dead_store.dialect
        assert caught.value.operation == operation
        assert f"{operation}()" in str(caught.value)


# -- file modes ------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_sqlite_files_are_private_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    # Session hashes and user ids are nobody else's business on a shared
    # machine: the database and the -wal and -shm files SQLite adds beside
    # it are the owner's alone.
    path = tmp_path / "new" / "signoff.sqlite3"
    store = SQLStore(f"sqlite:///{path}")
    try:
        with tagging(store):
            store.create_session(make_session(time.time()))
        assert store.get_epoch("alice") == 0  # the per-thread read connection
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == [
            "signoff.sqlite3",
            "signoff.sqlite3-shm",
            "signoff.sqlite3-wal",
        ]
        for name in files:
            assert _mode(path.parent / name) == 0o600, name
    finally:
        store.close()


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "shared.sqlite3"
    path.touch()
    path.chmod(0o640)  # the operator's choice (a backup group, say)
    store = SQLStore(f"sqlite:///{path}")
    try:
        with tagging(store):
            store.create_session(make_session(time.time()))
    finally:
        store.close()
    assert _mode(path) == 0o640


def test_sqlite_reads_map_the_file_and_touch_without_a_sync(tmp_path: Path) -> None:
    # The reads of every request map the file (a lookup among a million
    # sessions no longer copies each page into a small cache), and the one
    # write they make, the touch, is not synced: only revocations are.
    store = SQLStore(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        store.create_schema()
        assert isinstance(store.fast_reads, SQLiteReads)
        conn = store.fast_reads.connection()
        (mapped,) = conn.execute("PRAGMA mmap_size").fetchone()
        (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
        assert mapped >= 64 * 1024 * 1024
        assert synchronous == 1  # NORMAL
    finally:
        store.close()
