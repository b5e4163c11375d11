"""SQL store on SQLAlchemy 2 Core: SQLite (the embedded default) and PostgreSQL.

One code path serves both dialects. The atomic operations are single
conditional statements or short transactions:

- conditional save: ``UPDATE ... WHERE key = :key`` (never an upsert), so a
  save racing a sign-out finds no row and writes nothing;
- rotation: ``DELETE`` of the old key then ``INSERT`` of the new one in one
  transaction, the insert only if the delete found the row (when required);
- a user's sessions are inserted and deleted (sign-in, rotation, sign-out
  everywhere, revocation by public id) under one per-user lock: ``BEGIN
  IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL.
  Without it a rotation committing while a sign-out everywhere runs on
  PostgreSQL would leave the new row alive: the ``DELETE`` waits for the old
  row's lock, then finds it gone, and never sees the row inserted after its
  snapshot;
- spending a refresh token: ``UPDATE ... SET spent_at WHERE spent_at IS NULL``
  (compare-and-set), and its family must still exist;
- epochs: ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``.

On SQLite every transaction that may write starts with ``BEGIN IMMEDIATE``:
a deferred read that later upgrades to a write fails with "database is
locked" whatever the busy timeout. The database runs in WAL mode, so readers
never wait for writers. Expired rows are dropped by :meth:`purge_expired` in
small batches, each its own short transaction.

Schema creation is race-safe: several workers starting on one empty database
all come up (a losing ``CREATE TABLE`` is retried against the winner's table).

The routing key of :meth:`~flask_signoff.core.store.Store.user_tag` is the
row ``routing_key`` of the ``meta`` table. A worker that finds none inserts
one with ``INSERT ... ON CONFLICT DO NOTHING`` and reads it back in the same
transaction: whichever insert wins, every worker reads the winner's key. A
SQL store does not route by tag; the key exists so that credentials carry
the same kind of tag on every backend, none of them computable from the user
id.

Outages (PostgreSQL)
--------------------

Every call ends within a bound, whatever the server does. Connecting is
bounded by ``connect_timeout`` (psycopg, like libpq, waits at least 2 s), a
statement by the server's ``statement_timeout`` and ``lock_timeout``. Neither
ends a call to a server that stopped answering without closing the
connection (a frozen process or VM, a network that drops packets): the client
would wait on its socket for ever, and with it the worker. So a watchdog
thread shuts down the socket of any call still running one and a half times
the timeout after it started; the call fails at once, as
:class:`StoreUnavailable`, and its connection is thrown away.

After the server restarts, the connections in the pool are dead. No ping
precedes each checkout (a round trip on every call); instead a call that
finds its connection dead is run once more on a new one, when that is safe:
always for a read, and for a write only if the transaction failed before its
``COMMIT`` was sent (a transaction that was never committed left nothing
behind). SQLAlchemy then replaces every older connection of the pool. A call
ended by the watchdog is not run again: the server is slow or gone, and a
second wait would only double the first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sqlite3
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from ...core.records import (
    AccessState,
    FamilyRecord,
    RefreshRecord,
    Reserved,
    SessionRecord,
    SpendResult,
    SpendStatus,
)
from ...core.store import Store
from ...exceptions import StoreError, StoreUnavailable
from .watchdog import CallOverrun, Watchdog

T = TypeVar("T")

#: Columns of the sessions table, in :class:`SessionRecord` field order.
_SESSION_FIELDS = (
    "key",
    "tag",
    "public_id",
    "user_id",
    "data",
    "created_at",
    "last_seen_at",
    "expires_at",
    "drop_at",
    "remember",
    "fresh_until",
    "ip",
    "user_agent",
    "auth_stamp",
)

#: Columns added after the first release, by table: ``create_schema`` adds
#: them to a database made before (see :meth:`SQLStore._add_missing_columns`).
_ADDED_COLUMNS = {"sessions": ("auth_stamp",), "families": ("auth_stamp",)}


def _tables(prefix: str) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData()
    sessions = sa.Table(
        f"{prefix}sessions",
        md,
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("tag", sa.String(16), nullable=False),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("drop_at", sa.Float, nullable=False),
        sa.Column("remember", sa.Boolean, nullable=False),
        sa.Column("fresh_until", sa.Float, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        # Last, and with a server default: rows written by an older version
        # (during a rolling upgrade) get "", which binds to no stamp.
        sa.Column("auth_stamp", sa.String(64), nullable=False, server_default=""),
        sa.Index(f"ix_{prefix}sessions_user", "user_id", "created_at"),
        sa.Index(f"ix_{prefix}sessions_public", "public_id"),
        sa.Index(f"ix_{prefix}sessions_drop", "drop_at"),
    )
    epochs = sa.Table(
        f"{prefix}epochs",
        md,
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("epoch", sa.Integer, nullable=False),
    )
    families = sa.Table(
        f"{prefix}families",
        md,
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("auth_stamp", sa.String(64), nullable=False, server_default=""),
    )
    refresh = sa.Table(
        f"{prefix}refresh_tokens",
        md,
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("issued_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("spent_at", sa.Float, nullable=True),
    )
    revoked = sa.Table(
        f"{prefix}revoked_families",
        md,
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("drop_at", sa.Float, nullable=False, index=True),
    )
    # Values of the store itself (the routing key), one row each.
    meta = sa.Table(
        f"{prefix}meta",
        md,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    throttle = sa.Table(
        f"{prefix}throttle",
        md,
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
    )
    return md, {
        "throttle": throttle,
        "sessions": sessions,
        "epochs": epochs,
        "families": families,
        "refresh": refresh,
        "revoked": revoked,
        "meta": meta,
    }


def _session_from_row(row: Sequence[Any]) -> SessionRecord:
    """A row of the sessions table: its columns are ``_SESSION_FIELDS``, in
    that order, whether selected whole or by the fast read path."""
    return SessionRecord(
        key=row[0],
        tag=row[1],
        public_id=row[2],
        user_id=row[3],
        data=row[4],
        created_at=row[5],
        last_seen_at=row[6],
        expires_at=row[7],
        drop_at=row[8],
        remember=bool(row[9]),
        fresh_until=row[10],
        ip=row[11],
        user_agent=row[12],
        auth_stamp=row[13],
    )


def _sqlite_pragmas(dbapi_conn: Any) -> None:
    """Set up a new SQLite connection: our transactions, WAL, full sync."""
    # Take transaction control from the driver so BEGIN is ours.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        _sqlite_wal(cur)
        cur.execute("PRAGMA synchronous=FULL")
    finally:
        cur.close()


def _sqlite_wal(cur: Any) -> None:
    """Put the database in WAL mode (once per file: the mode is persistent).

    Switching needs a moment alone with the file, and SQLite answers
    "database is locked" at once, without its busy timeout, when another
    connection opening the same new file holds it: several workers starting
    on an empty database all try this together. Try again for a while.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + 5.0
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _create_private(path: str) -> None:
    """Create the SQLite file ``path``, empty and 0600, unless it exists.

    SQLite would create it 0644 less the umask, readable by every local user.
    The ``-wal`` and ``-shm`` files it adds later take the database file's
    permissions, so they are private too. An existing file keeps its mode:
    that is the operator's choice.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exactly, whatever bits the umask took
    finally:
        os.close(fd)


#: Stores with per-thread SQLite connections; a forked child drops its copies.
_FAST_STORES: weakref.WeakSet[SQLStore] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_FAST_STORES):
        store._forget_fast_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _session_values(record: SessionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _SESSION_FIELDS}


def _refresh_from_row(row: Any) -> RefreshRecord:
    return RefreshRecord(
        key=row.key,
        family_id=row.family_id,
        user_id=row.user_id,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        spent_at=row.spent_at,
    )


class _CommitFailed(Exception):
    """The connection failed while committing: the write may have happened."""


class SQLStore(Store):
    """Sessions and tokens in a SQL database through SQLAlchemy Core.

    :param url: a SQLAlchemy URL. ``postgresql://`` uses psycopg 3.
    :param table_prefix: prefix of every table name, so several apps can share
        one database.
    :param timeout: seconds a call may wait: SQLite's busy timeout, PostgreSQL's
        connect and statement timeouts, and the pool's checkout timeout. On
        PostgreSQL a call still running after ``1.5 * timeout`` is ended by a
        watchdog (see the module's docstring).
    :param engine_options: extra keyword arguments for
        :func:`sqlalchemy.create_engine`.
    """

    def __init__(
        self,
        url: str,
        *,
        table_prefix: str = "signoff_",
        timeout: float = 5.0,
        engine_options: dict[str, Any] | None = None,
        create_schema: bool = True,
        **_ignored: Any,
    ) -> None:
        sa_url = sa.make_url(url)
        if sa_url.drivername in ("postgresql", "postgres"):
            sa_url = sa_url.set(drivername="postgresql+psycopg")
        self.url = sa_url
        self.dialect = sa_url.get_backend_name()
        self.timeout = timeout
        options: dict[str, Any] = {"pool_timeout": timeout}
        if self.dialect == "sqlite":
            database = sa_url.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                raise StoreError(
                    "The SQLite store needs a file: in-memory databases are not "
                    "shared between connections."
                )
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            _create_private(database)
            options["connect_args"] = {"timeout": timeout, "check_same_thread": False}
        elif self.dialect == "postgresql":
            ms = int(timeout * 1000)
            options["connect_args"] = {
                "connect_timeout": max(1, int(timeout)),
                "options": f"-c statement_timeout={ms} -c lock_timeout={ms}",
            }
            options["pool_pre_ping"] = False
        options.update(engine_options or {})
        self.engine: Engine = sa.create_engine(sa_url, **options)
        self._watchdog: Watchdog | None = None
        if self.dialect == "postgresql":
            self._watchdog = Watchdog(1.5 * timeout)
        if self.dialect == "sqlite":
            self._configure_sqlite(self.engine)
        self.metadata, self.t = _tables(table_prefix)
        # The session read, every request's one store call, skips
        # SQLAlchemy's per-execute work: on SQLite it is one statement on a
        # per-thread connection opened exactly as the engine opens its own.
        s = self.t["sessions"]
        self._get_sql, self._get_params = self._compiled(
            sa.select(*(s.c[name] for name in _SESSION_FIELDS)).where(
                s.c.key == sa.bindparam("key")
            )
        )
        e, v = self.t["epochs"], self.t["revoked"]
        self._access_stmt = sa.select(
            sa.select(e.c.epoch)
            .where(e.c.user_id == sa.bindparam("user_id"))
            .scalar_subquery(),
            sa.exists().where(
                v.c.family_id == sa.bindparam("family_id"),
                v.c.user_id == sa.bindparam("user_id"),
                v.c.drop_at > sa.bindparam("now"),
            ),
        )
        self._access_sql, self._access_params = self._compiled(self._access_stmt)
        self._fast_sqlite = (
            self.dialect == "sqlite"
            and sa_url.get_driver_name() == "pysqlite"
            and not options.keys() & {"creator", "module", "pool", "poolclass"}
        )
        self._sqlite_connect_args: dict[str, Any] = dict(
            options.get("connect_args") or {}
        )
        self._local = threading.local()
        self._fast_lock = threading.Lock()
        self._fast_conns: list[sqlite3.Connection] = []
        self._fast_generation = 0
        if self._fast_sqlite:
            _FAST_STORES.add(self)
        # On PostgreSQL: a pooled connection used directly, in autocommit for
        # the one SELECT, so there is no BEGIN and no ROLLBACK round trip.
        self._fast_psycopg = (
            self.dialect == "postgresql" and sa_url.get_driver_name() == "psycopg"
        )
        #: Advisory lock key that serialises schema creation (PostgreSQL).
        self._schema_lock = zlib.crc32(f"flask-signoff:schema:{table_prefix}".encode())
        self._table_prefix = table_prefix
        self._schema_ready = False
        self._create_schema = create_schema

    # -- plumbing ------------------------------------------------------------

    def _compiled(self, stmt: Any) -> tuple[str, tuple[str, ...]]:
        """SQL text and the order of its positional parameters (if any)."""
        compiled = stmt.compile(dialect=self.engine.dialect)
        return str(compiled), tuple(compiled.positiontup or ())

    @staticmethod
    def _configure_sqlite(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            _sqlite_pragmas(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("signoff_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; turn a database outage into :class:`StoreUnavailable`.

        A call whose connection turns out dead (it died in the pool while the
        server restarted) runs once more on a new connection, unless it was
        committing (see the module's docstring).
        """
        for attempt in (1, 2):
            try:
                if not self._schema_ready:
                    self.create_schema()
                return fn()
            except CallOverrun as e:
                raise StoreUnavailable(
                    f"The session store ({self.dialect}) did not answer within "
                    f"{self._watchdog.limit if self._watchdog else 0:g} s"
                ) from e.__cause__
            except _CommitFailed as e:
                raise self._translate(cast(exc.DBAPIError, e.__cause__)) from (
                    e.__cause__
                )
            except (exc.DBAPIError, exc.TimeoutError) as e:
                if (
                    attempt == 1
                    and isinstance(e, exc.DBAPIError)
                    and e.connection_invalidated
                ):
                    continue
                raise self._translate(e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, e: exc.DBAPIError | exc.TimeoutError) -> StoreError:
        lost = isinstance(e, exc.DBAPIError) and e.connection_invalidated
        if isinstance(e, (exc.IntegrityError, exc.ProgrammingError)) and not lost:
            return StoreError(
                f"The session store ({self.dialect}) refused a statement: "
                f"{type(e.orig).__name__}"
            )
        cause = e.orig if isinstance(e, exc.DBAPIError) else e
        return StoreUnavailable(
            f"The session store ({self.dialect}) is unavailable: {type(cause).__name__}"
        )

    def _watched(self, conn: Connection) -> contextlib.AbstractContextManager[None]:
        if self._watchdog is None:
            return contextlib.nullcontext()
        return self._watchdog.watch(conn.connection.dbapi_connection, conn.invalidate)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, self._watched(conn):
            conn.execution_options(signoff_write=True)
            committing = False
            try:
                with conn.begin():
                    yield conn
                    committing = True
            except exc.DBAPIError as e:
                if committing:
                    raise _CommitFailed() from e
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, self._watched(conn):
            yield conn

    def _lock_user(self, conn: Connection, user_id: str | None) -> None:
        """Hold the user's lock until ``conn``'s transaction ends.

        On SQLite ``BEGIN IMMEDIATE`` already lets one writer at a time in.
        On PostgreSQL a transaction-scoped advisory lock; statements after it
        take their snapshot once the lock is held, so they see every row the
        previous holder committed.
        """
        if user_id is None or self.dialect != "postgresql":
            return
        digest = hashlib.sha256(
            f"flask-signoff:user:{self._table_prefix}:{user_id}".encode()
        ).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    def create_schema(self) -> None:
        """Create the tables if they are missing; safe to race.

        The check and the ``CREATE`` run in one write transaction that only
        one worker at a time can hold: ``BEGIN IMMEDIATE`` on SQLite, a
        transaction-scoped advisory lock on PostgreSQL (whose DDL is
        transactional). The others wait, then find the tables made.
        """
        for attempt in range(5):
            try:
                with self._write() as conn:
                    if self.dialect == "postgresql":
                        conn.execute(
                            sa.select(sa.func.pg_advisory_xact_lock(self._schema_lock))
                        )
                    self.metadata.create_all(conn, checkfirst=True)
                    self._add_missing_columns(conn)
                break
            except (exc.ProgrammingError, exc.IntegrityError):
                # A worker that does not take our lock (an older version, a
                # migration tool) created a table between our check and our
                # CREATE; look again. Outages (OperationalError) are not
                # retried: they must surface quickly as StoreUnavailable.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self._schema_ready = True

    def _add_missing_columns(self, conn: Connection) -> None:
        """Add the columns of :data:`_ADDED_COLUMNS` that a table lacks.

        Runs in :meth:`create_schema`'s transaction, which holds the schema
        lock (``BEGIN IMMEDIATE``, or the advisory lock and transactional DDL
        on PostgreSQL): the check and the ``ALTER`` see one state, and no
        other worker can add the column in between. ``ADD COLUMN`` with a
        constant default keeps every row and, on both databases, rewrites
        none of them.
        """
        inspector = sa.inspect(conn)
        for name, columns in _ADDED_COLUMNS.items():
            table = self.t[name]
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column_name in columns:
                if column_name in present:
                    continue
                column = table.c[column_name]
                ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
                exists = "IF NOT EXISTS " if self.dialect == "postgresql" else ""
                table_name = conn.dialect.identifier_preparer.format_table(table)
                conn.exec_driver_sql(
                    f"ALTER TABLE {table_name} ADD COLUMN {exists}{ddl}"
                )

    def missing_tables(self) -> list[str]:
        """The tables of the schema that the database lacks; creates nothing.

        For ``flask signoff check``. Connects, so it also shows whether the
        database can be reached.

        :raises StoreUnavailable: the database cannot be reached.
        """
        try:
            with self.engine.connect() as conn:
                present = set(sa.inspect(conn).get_table_names())
        except (exc.DBAPIError, exc.TimeoutError) as e:
            raise self._translate(e) from e
        return [name for name in self.metadata.tables if name not in present]

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which knows ``ON CONFLICT``."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
        self._close_fast_connections()
        self.engine.dispose()

    # -- routing -------------------------------------------------------------

    def load_routing_key(self) -> bytes:
        m = self.t["meta"]
        read = sa.select(m.c.value).where(m.c.name == "routing_key")
        create = (
            self._insert(m)
            .values(name="routing_key", value=secrets.token_hex(32))
            .on_conflict_do_nothing(index_elements=[m.c.name])
        )

        def run() -> str:
            # A plain read first: once the key exists (every time but the
            # very first) no write lock is taken.
            with self._read() as conn:
                kept = conn.execute(read).scalar()
            if kept is not None:
                return str(kept)
            with self._write() as conn:
                conn.execute(create)
                # READ COMMITTED (PostgreSQL): this statement sees the row of
                # a concurrent insert that won; BEGIN IMMEDIATE (SQLite) let
                # no other writer in between.
                return str(conn.execute(read).scalar_one())

        kept = self._guard(run)
        try:
            key = bytes.fromhex(kept)
        except ValueError:
            key = b""
        if len(key) != 32:
            # Tagging under some other key would give users new tags: refuse.
            raise StoreError(
                f"The session store ({self.dialect}) holds a routing key that "
                "is not 32 bytes of hex."
            )
        return key

    # -- the SQLite read path ------------------------------------------------

    def _sqlite_connection(self) -> sqlite3.Connection:
        """This thread's SQLite connection for reads, opened on first use."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.generation == self._fast_generation:
            return conn
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        cparams.update(self._sqlite_connect_args)
        connect: Callable[..., sqlite3.Connection] = sqlite3.connect
        conn = connect(*cargs, **cparams)
        try:
            _sqlite_pragmas(conn)
        except BaseException:
            conn.close()
            raise
        with self._fast_lock:
            self._fast_conns.append(conn)
            local.conn, local.generation = conn, self._fast_generation
        return conn

    def _close_fast_connections(self) -> None:
        with self._fast_lock:
            conns, self._fast_conns = self._fast_conns, []
            self._fast_generation += 1
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _forget_fast_connections(self) -> None:
        # In a forked child: never use (nor close) the parent's connections.
        self._fast_conns = []
        self._fast_generation += 1
        self._fast_lock = threading.Lock()
        self._local = threading.local()

    def _sqlite_one(
        self, sql: str, order: tuple[str, ...], params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        if not self._schema_ready:
            self._guard(lambda: None)  # creates it, with _guard's error mapping
        try:
            # One statement, no explicit transaction: it reads one snapshot.
            args = tuple(params[name] for name in order)
            row = self._sqlite_connection().execute(sql, args).fetchone()
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError) as e:
            raise StoreError(
                f"The session store ({self.dialect}) refused a statement: "
                f"{type(e).__name__}"
            ) from e
        except sqlite3.Error as e:
            raise StoreUnavailable(
                f"The session store ({self.dialect}) is unavailable: {type(e).__name__}"
            ) from e
        return cast("tuple[Any, ...] | None", row)

    # -- sessions ----------------------------------------------------------

    def _psycopg_one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        dbapi = self.engine.dialect.loaded_dbapi

        def run() -> tuple[Any, ...] | None:
            try:
                raw = self.engine.raw_connection()
            except dbapi.Error as e:  # the pool's own errors come unwrapped
                raise StoreUnavailable(
                    f"The session store ({self.dialect}) is unavailable: "
                    f"{type(e).__name__}"
                ) from e
            conn = raw.driver_connection
            assert conn is not None
            watched: contextlib.AbstractContextManager[None] = (
                contextlib.nullcontext()
                if self._watchdog is None
                else self._watchdog.watch(raw.dbapi_connection, raw.invalidate)
            )
            try:
                with watched:  # a frozen server: CallOverrun, never retried
                    conn.autocommit = True
                    try:
                        cursor = conn.execute(sql, params, prepare=True)
                        return cast("tuple[Any, ...] | None", cursor.fetchone())
                    finally:
                        conn.autocommit = False
            except dbapi.Error as e:
                raw.invalidate(e)
                if not (conn.closed or getattr(conn, "broken", False)):
                    if isinstance(e, (dbapi.IntegrityError, dbapi.ProgrammingError)):
                        raise StoreError(
                            f"The session store ({self.dialect}) refused a "
                            f"statement: {type(e).__name__}"
                        ) from e
                    raise StoreUnavailable(
                        f"The session store ({self.dialect}) is unavailable: "
                        f"{type(e).__name__}"
                    ) from e
            finally:
                raw.close()
            # The pooled connection was dead: the server restarted since it
            # was last used. Read again through SQLAlchemy, which on a dead
            # connection also replaces every older one of the pool (and then
            # _guard runs this once more), as for every other read.
            with self._read() as c:
                row = c.exec_driver_sql(sql, params).first()
            return None if row is None else tuple(row)

        return self._guard(run)

    def _fast_one(
        self, sql: str, order: tuple[str, ...], params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """One row of a one-statement read, past SQLAlchemy's per-execute work.

        Only for the reads on every request (the session, the token check).
        """
        if self._fast_sqlite:
            return self._sqlite_one(sql, order, params)
        return self._psycopg_one(sql, params)

    def get_session(self, key: str) -> SessionRecord | None:
        if self._fast_sqlite or self._fast_psycopg:
            row = self._fast_one(self._get_sql, self._get_params, {"key": key})
            return None if row is None else _session_from_row(row)
        s = self.t["sessions"]

        def run() -> SessionRecord | None:
            with self._read() as conn:
                row = conn.execute(sa.select(s).where(s.c.key == key)).first()
            return None if row is None else _session_from_row(row)

        return self._guard(run)

    def _insert_session(
        self, conn: Connection, record: SessionRecord, max_per_user: int | None
    ) -> None:
        s = self.t["sessions"]
        conn.execute(sa.insert(s).values(**_session_values(record)))
        if max_per_user is not None and record.user_id is not None:
            excess = (
                sa.select(s.c.key)
                .where(s.c.user_id == record.user_id)
                .order_by(s.c.created_at.desc(), s.c.key)
                .offset(max_per_user)
            )
            conn.execute(sa.delete(s).where(s.c.key.in_(excess.scalar_subquery())))

    def create_session(
        self, record: SessionRecord, *, max_per_user: int | None = None
    ) -> None:
        def run() -> None:
            with self._write() as conn:
                self._lock_user(conn, record.user_id)
                self._insert_session(conn, record, max_per_user)

        self._guard(run)

    def update_session(self, record: SessionRecord) -> bool:
        s = self.t["sessions"]
        stmt = (
            sa.update(s)
            .where(s.c.key == record.key)
            .values(
                data=record.data,
                last_seen_at=record.last_seen_at,
                drop_at=record.drop_at,
                expires_at=record.expires_at,
                fresh_until=record.fresh_until,
                remember=record.remember,
            )
        )

        def run() -> bool:
            with self._write() as conn:
                return conn.execute(stmt).rowcount == 1

        return self._guard(run)

    def touch_session(self, key: str, last_seen_at: float, drop_at: float) -> bool:
        s = self.t["sessions"]
        stmt = (
            sa.update(s)
            .where(s.c.key == key)
            .values(last_seen_at=last_seen_at, drop_at=drop_at)
        )

        def run() -> bool:
            with self._write() as conn:
                return conn.execute(stmt).rowcount == 1

        return self._guard(run)

    def rotate_session(
        self, old_key: str | None, new: SessionRecord, *, require_old: bool
    ) -> bool:
        s = self.t["sessions"]

        def run() -> bool:
            with self._write() as conn:
                self._lock_user(conn, new.user_id)
                gone = 0
                if old_key is not None:
                    gone = conn.execute(sa.delete(s).where(s.c.key == old_key)).rowcount
                if require_old and gone != 1:
                    return False
                self._insert_session(conn, new, None)
                return True

        return self._guard(run)

    def delete_session(self, key: str) -> bool:
        s = self.t["sessions"]

        def run() -> bool:
            with self._write() as conn:
                return conn.execute(sa.delete(s).where(s.c.key == key)).rowcount == 1

        return self._guard(run)

    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        s = self.t["sessions"]
        stmt = (
            sa.select(s)
            .where(s.c.user_id == user_id, s.c.drop_at > now)
            .order_by(s.c.created_at.desc(), s.c.key)
        )

        def run() -> list[SessionRecord]:
            with self._read() as conn:
                return [_session_from_row(r) for r in conn.execute(stmt)]

        return self._guard(run)

    def delete_session_by_public_id(
        self, user_id: str, public_id: str
    ) -> SessionRecord | None:
        s = self.t["sessions"]
        where = (s.c.user_id == user_id, s.c.public_id == public_id)

        def run() -> SessionRecord | None:
            with self._write() as conn:
                self._lock_user(conn, user_id)
                row = conn.execute(sa.select(s).where(*where)).first()
                if row is None:
                    return None
                conn.execute(sa.delete(s).where(s.c.key == row.key))
                return _session_from_row(row)

        return self._guard(run)

    def delete_user_sessions(self, user_id: str, *, keep_key: str | None = None) -> int:
        s = self.t["sessions"]
        stmt = sa.delete(s).where(s.c.user_id == user_id)
        if keep_key is not None:
            stmt = stmt.where(s.c.key != keep_key)

        def run() -> int:
            with self._write() as conn:
                self._lock_user(conn, user_id)
                return conn.execute(stmt).rowcount

        return self._guard(run)

    def delete_all_sessions(self) -> int:
        s = self.t["sessions"]

        def run() -> int:
            with self._write() as conn:
                return conn.execute(sa.delete(s)).rowcount

        return self._guard(run)

    def purge_expired(self, now: float, *, batch_size: int = 500) -> int:
        t = self.t
        targets = (
            (t["sessions"], t["sessions"].c.key, t["sessions"].c.drop_at),
            (t["refresh"], t["refresh"].c.key, t["refresh"].c.expires_at),
            (t["families"], t["families"].c.family_id, t["families"].c.expires_at),
            (t["revoked"], t["revoked"].c.family_id, t["revoked"].c.drop_at),
            (t["throttle"], t["throttle"].c.key, t["throttle"].c.expires_at),
        )

        def run() -> int:
            total = 0
            for table, pk, deadline in targets:
                batch = sa.select(pk).where(deadline <= now).limit(batch_size)
                stmt = sa.delete(table).where(pk.in_(batch.scalar_subquery()))
                # One short transaction per table and batch: never a long lock.
                with self._write() as conn:
                    total += conn.execute(stmt).rowcount
            return total

        return self._guard(run)

    # -- users -------------------------------------------------------------

    def get_epoch(self, user_id: str) -> int:
        e = self.t["epochs"]

        def run() -> int:
            with self._read() as conn:
                value = conn.execute(
                    sa.select(e.c.epoch).where(e.c.user_id == user_id)
                ).scalar()
            return int(value or 0)

        return self._guard(run)

    def bump_epoch(self, user_id: str) -> int:
        e = self.t["epochs"]

        def run() -> int:
            stmt = (
                self._insert(e)
                .values(user_id=user_id, epoch=1)
                .on_conflict_do_update(
                    index_elements=[e.c.user_id], set_={"epoch": e.c.epoch + 1}
                )
                .returning(e.c.epoch)
            )
            with self._write() as conn:
                return int(conn.execute(stmt).scalar_one())

        return self._guard(run)

    # -- refresh-token families ------------------------------------------

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        f, r = self.t["families"], self.t["refresh"]

        def run() -> None:
            with self._write() as conn:
                conn.execute(
                    sa.insert(f).values(
                        family_id=family.family_id,
                        user_id=family.user_id,
                        created_at=family.created_at,
                        expires_at=family.expires_at,
                        client_id=family.client_id,
                        auth_stamp=family.auth_stamp,
                    )
                )
                conn.execute(sa.insert(r).values(**self._refresh_values(first)))

        self._guard(run)

    @staticmethod
    def _refresh_values(record: RefreshRecord) -> dict[str, Any]:
        return {
            "key": record.key,
            "family_id": record.family_id,
            "user_id": record.user_id,
            "issued_at": record.issued_at,
            "expires_at": record.expires_at,
            "spent_at": record.spent_at,
        }

    def get_refresh(self, key: str) -> RefreshRecord | None:
        r = self.t["refresh"]

        def run() -> RefreshRecord | None:
            with self._read() as conn:
                row = conn.execute(sa.select(r).where(r.c.key == key)).first()
            return None if row is None else _refresh_from_row(row)

        return self._guard(run)

    def spend_refresh(self, key: str, now: float) -> SpendResult:
        r, f = self.t["refresh"], self.t["families"]
        family_alive = sa.exists().where(
            f.c.family_id == r.c.family_id, f.c.expires_at > now
        )
        spend = (
            sa.update(r)
            .where(r.c.key == key, r.c.spent_at.is_(None), family_alive)
            .values(spent_at=now)
            .returning(*r.c)
        )
        lookup = sa.select(r).where(r.c.key == key, family_alive)

        def run() -> SpendResult:
            with self._write() as conn:
                row = conn.execute(spend).first()
                if row is not None:
                    return SpendResult(SpendStatus.SPENT, _refresh_from_row(row))
                row = conn.execute(lookup).first()
            if row is None:
                return SpendResult(SpendStatus.MISSING)
            return SpendResult(SpendStatus.ALREADY_SPENT, _refresh_from_row(row))

        return self._guard(run)

    def add_refresh(self, record: RefreshRecord, now: float) -> bool:
        r, f = self.t["refresh"], self.t["families"]
        values = self._refresh_values(record)
        source = sa.select(
            *(sa.literal(v, type_=r.c[k].type).label(k) for k, v in values.items())
        ).where(
            sa.exists().where(f.c.family_id == record.family_id, f.c.expires_at > now)
        )
        # RETURNING, not rowcount: drivers need not report the rowcount of an
        # INSERT (psycopg's is gone once SQLAlchemy has closed the cursor).
        stmt = sa.insert(r).from_select(list(values), source).returning(r.c.key)

        def run() -> bool:
            with self._write() as conn:
                return conn.execute(stmt).first() is not None

        return self._guard(run)

    def get_family(self, family_id: str, user_id: str) -> FamilyRecord | None:
        f = self.t["families"]

        def run() -> FamilyRecord | None:
            with self._read() as conn:
                row = conn.execute(
                    sa.select(f).where(
                        f.c.family_id == family_id, f.c.user_id == user_id
                    )
                ).first()
            if row is None:
                return None
            return FamilyRecord(
                family_id=row.family_id,
                user_id=row.user_id,
                created_at=row.created_at,
                expires_at=row.expires_at,
                client_id=row.client_id,
                auth_stamp=row.auth_stamp,
            )

        return self._guard(run)

    def revoke_family(self, family_id: str, user_id: str, until: float) -> None:
        f, r, v = self.t["families"], self.t["refresh"], self.t["revoked"]

        def run() -> None:
            insert = self._insert(v).values(
                family_id=family_id, user_id=user_id, drop_at=until
            )
            # Keep the later deadline if the family was already revoked.
            later = sa.func.max if self.dialect == "sqlite" else sa.func.greatest
            stmt = insert.on_conflict_do_update(
                index_elements=[v.c.family_id],
                set_={"drop_at": later(v.c.drop_at, insert.excluded.drop_at)},
            )
            # Scoped to the user, as get_family is: a family id names a family
            # only together with its user (the Redis store keys it that way).
            with self._write() as conn:
                conn.execute(stmt)
                conn.execute(
                    sa.delete(r).where(
                        r.c.family_id == family_id, r.c.user_id == user_id
                    )
                )
                conn.execute(
                    sa.delete(f).where(
                        f.c.family_id == family_id, f.c.user_id == user_id
                    )
                )

        self._guard(run)

    def revoke_user_families(self, user_id: str) -> int:
        f, r = self.t["families"], self.t["refresh"]

        def run() -> int:
            with self._write() as conn:
                conn.execute(sa.delete(r).where(r.c.user_id == user_id))
                return conn.execute(sa.delete(f).where(f.c.user_id == user_id)).rowcount

        return self._guard(run)

    def revoke_all_families(self, until: float) -> int:
        f, r, v = self.t["families"], self.t["refresh"], self.t["revoked"]
        insert = self._insert(v).from_select(
            ["family_id", "user_id", "drop_at"],
            # WHERE true: SQLite needs it to parse INSERT ... SELECT ... ON CONFLICT.
            sa.select(f.c.family_id, f.c.user_id, sa.literal(until, sa.Float)).where(
                sa.true()
            ),
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[v.c.family_id], set_={"drop_at": insert.excluded.drop_at}
        )

        def run() -> int:
            with self._write() as conn:
                conn.execute(stmt)
                conn.execute(sa.delete(r))
                return conn.execute(sa.delete(f)).rowcount

        return self._guard(run)

    def reserve(self, key: str, limit: int, window: float, now: float) -> Reserved:
        th = self.t["throttle"]
        closed = th.c.expires_at <= now
        insert = self._insert(th).values(key=key, attempts=1, expires_at=now + window)
        # One upsert decides: a new or ended window opens with this attempt,
        # an open one counts it only below the limit (the WHERE); a full one
        # is left as it is and returns no row.
        take = insert.on_conflict_do_update(
            index_elements=[th.c.key],
            set_={
                "attempts": sa.case((closed, 1), else_=th.c.attempts + 1),
                "expires_at": sa.case((closed, now + window), else_=th.c.expires_at),
            },
            where=sa.or_(closed, th.c.attempts < limit),
        ).returning(th.c.attempts, th.c.expires_at)
        full = sa.select(th.c.attempts, th.c.expires_at).where(th.c.key == key)

        def run() -> Reserved:
            with self._write() as conn:
                row = conn.execute(take).first()
                if row is not None:
                    return Reserved(True, int(row[0]), float(row[1]))
                # Refused: read the window's end for Retry-After, in the same
                # transaction (on SQLite under the same write lock).
                attempts, ends = conn.execute(full).one()
            return Reserved(False, int(attempts), float(ends))

        return self._guard(run)

    def release(self, key: str, ends: float) -> bool:
        th = self.t["throttle"]
        # The window is named by its end: a float stored and returned exactly
        # (SQLite REAL and PostgreSQL double precision are both IEEE doubles).
        stmt = (
            sa.update(th)
            .where(th.c.key == key, th.c.expires_at == ends, th.c.attempts > 0)
            .values(attempts=th.c.attempts - 1)
        )

        def run() -> bool:
            with self._write() as conn:
                return bool(conn.execute(stmt).rowcount == 1)

        return self._guard(run)

    def access_state(self, user_id: str, family_id: str, now: float) -> AccessState:
        params = {"user_id": user_id, "family_id": family_id, "now": now}
        if self._fast_sqlite or self._fast_psycopg:
            row = self._fast_one(self._access_sql, self._access_params, params)
        else:

            def run() -> tuple[Any, ...] | None:
                with self._read() as conn:
                    result = conn.execute(self._access_stmt, params)
                    return cast("tuple[Any, ...] | None", result.first())

            row = self._guard(run)
        assert row is not None  # a SELECT without FROM always has its row
        epoch, revoked = row
        return AccessState(epoch=int(epoch or 0), family_revoked=bool(revoked))
