"""The reads made on every request, past SQLAlchemy's per-execute work.

Two reads run on nearly every request: the session by its key (a cookie
request) and :meth:`~flask_signoff.core.store.Store.access_state` (a Bearer
request). Each is one statement, run straight on the driver:

- SQLite (:class:`SQLiteReads`): on a connection of the calling thread,
  opened as the engine opens its own (:mod:`.sqlite`), with no explicit
  transaction: one statement reads one snapshot. A forked child never uses,
  nor closes, its parent's connections. The statements are written here
  (:class:`SQLiteQueries`), and neither these reads nor the touch of a
  session (one ``UPDATE``, its own transaction) need SQLAlchemy, which is
  imported only when something else is done (:mod:`.lazy`).
- PostgreSQL (:class:`PsycopgReads`): on connections of its own, kept in
  autocommit, so there is no pool checkout, no ``BEGIN`` and no
  ``ROLLBACK`` round trip, as a prepared statement compiled once
  (:class:`HotQueries`).

Other drivers read through SQLAlchemy like every other call. Errors come out
of these classes as the driver raised them: :meth:`.database.Database.one`,
which runs them, translates them (:mod:`.errors`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, cast

from ...core.records import SESSION_FIELDS
from .sqlite import set_up_connection

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from .schema import Schema

Row = tuple[Any, ...]

#: Watches a pooled connection for the length of a block (see
#: :meth:`.watchdog.Watchdog.watch`); arguments: the DB-API connection and
#: how to throw it away.
Watch = Callable[[Any, Callable[[], None]], contextlib.AbstractContextManager[None]]


class Query(NamedTuple):
    """A statement in the driver's parameter style."""

    #: The SQL text.
    sql: str
    #: The names of its positional parameters, in order (SQLite's ``?``);
    #: empty when the style names them (psycopg's ``%(name)s``).
    order: tuple[str, ...]

    @classmethod
    def compile(cls, stmt: sa.ClauseElement, engine: Engine) -> Query:
        from sqlalchemy.sql.compiler import SQLCompiler

        compiled = cast(SQLCompiler, stmt.compile(dialect=engine.dialect))
        return cls(str(compiled), tuple(compiled.positiontup or ()))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column(name: str) -> str:
    # Never quoted: SQLite reads a double-quoted name that matches no column
    # as a string literal, so a column missing from an older database would
    # read as its own name instead of failing (and being added).
    if not re.fullmatch(r"[a-z_]+", name):  # pragma: no cover (ours)
        raise ValueError(f"not a plain column name: {name!r}")
    return name


class SQLiteQueries:
    """The statements of every request on SQLite, written without SQLAlchemy.

    They name the tables and columns of :mod:`.schema` (the columns of
    ``sessions`` are :data:`~flask_signoff.core.records.SESSION_FIELDS`, in
    order); the store's tests run them against the tables SQLAlchemy makes.

    :param prefix: the store's table prefix.
    """

    def __init__(self, prefix: str) -> None:
        sessions = _quoted(f"{prefix}sessions")
        epochs = _quoted(f"{prefix}epochs")
        revoked = _quoted(f"{prefix}revoked_families")
        columns = ", ".join(_column(name) for name in SESSION_FIELDS)
        # Only identifiers are formatted in; every value is bound.
        #: The session of ``key``.
        self.session = Query(
            f"SELECT {columns} FROM {sessions} WHERE key = ?",  # noqa: S608
            ("key",),
        )
        #: The epoch of ``user_id`` and whether ``family_id`` is revoked at
        #: ``now``: one row, always.
        self.access = Query(
            f"SELECT (SELECT epoch FROM {epochs} WHERE user_id = ?), EXISTS ("  # noqa: S608
            f"SELECT 1 FROM {revoked} WHERE family_id = ? AND user_id = ? "
            "AND drop_at > ?)",
            ("user_id", "family_id", "user_id", "now"),
        )
        #: The epoch of ``user_id`` (read at sign-in).
        self.epoch = Query(
            f"SELECT epoch FROM {epochs} WHERE user_id = ?",  # noqa: S608
            ("user_id",),
        )
        #: Set ``last_seen_at`` and ``drop_at`` of the session ``key``.
        self.touch = Query(
            f"UPDATE {sessions} SET last_seen_at = ?, drop_at = ?"  # noqa: S608
            " WHERE key = ?",
            ("last_seen_at", "drop_at", "key"),
        )


class HotQueries:
    """The reads of every request (and the epoch read at sign-in), built from
    the store's tables.

    :param schema: the store's tables.
    :param engine: the engine whose dialect compiles them.
    """

    def __init__(self, schema: Schema, engine: Engine) -> None:
        import sqlalchemy as sa

        s, e, v = (schema.tables[name] for name in ("sessions", "epochs", "revoked"))
        #: The session of ``:key``.
        self.session_stmt = sa.select(s).where(s.c.key == sa.bindparam("key"))
        #: The epoch of ``:user_id`` and whether ``:family_id`` is revoked
        #: at ``:now``: one row, always (a SELECT without FROM).
        self.access_stmt = sa.select(
            sa.select(e.c.epoch)
            .where(e.c.user_id == sa.bindparam("user_id"))
            .scalar_subquery(),
            sa.exists().where(
                v.c.family_id == sa.bindparam("family_id"),
                v.c.user_id == sa.bindparam("user_id"),
                v.c.drop_at > sa.bindparam("now"),
            ),
        )
        #: The epoch of ``:user_id`` (read at sign-in).
        self.epoch_stmt = sa.select(e.c.epoch).where(
            e.c.user_id == sa.bindparam("user_id")
        )
        self.session = Query.compile(self.session_stmt, engine)
        self.access = Query.compile(self.access_stmt, engine)
        self.epoch = Query.compile(self.epoch_stmt, engine)


#: Readers with per-thread connections; a forked child drops its copies.
_READERS: weakref.WeakSet[_PerThread[Any]] = weakref.WeakSet()


def _after_fork() -> None:
    for reads in list(_READERS):
        reads._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


C = TypeVar("C")


class _PerThread(Generic[C]):
    """A connection per thread, opened on first use by :meth:`_open` (and
    again after :meth:`close`, :meth:`_drop`, or in a forked child, which
    never uses, nor closes, its parent's connections)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[C] = []
        self._generation = 0
        _READERS.add(self)

    def _open(self) -> C:
        raise NotImplementedError

    def _close(self, conn: C) -> None:
        raise NotImplementedError

    def connection(self) -> C:
        """This thread's connection."""
        local = self._local
        conn: C | None = getattr(local, "conn", None)
        if conn is not None and local.generation == self._generation:
            return conn
        conn = self._open()
        with self._lock:
            self._conns.append(conn)
            local.conn, local.generation = conn, self._generation
        return conn

    def _drop(self, conn: C) -> None:
        """Close this thread's ``conn``; its next call opens a new one."""
        self._local.conn = None
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        self._close(conn)

    def close(self) -> None:
        """Close every thread's connection; the next call opens a new one."""
        with self._lock:
            conns, self._conns = self._conns, []
            self._generation += 1
        for conn in conns:
            self._close(conn)

    def _forget(self) -> None:
        # In a forked child: never use (nor close) the parent's connections.
        self._conns = []
        self._generation += 1
        self._lock = threading.Lock()
        self._local = threading.local()


#: Bytes of a SQLite file the read connections map into memory.
MMAP_SIZE = 256 * 1024 * 1024


class SQLiteReads(_PerThread[sqlite3.Connection]):
    """One-statement reads (and touches) on a SQLite connection per thread.

    :param database: the file, as :func:`sqlite3.connect` takes it.
    :param connect_args: the other arguments of :func:`sqlite3.connect`.
    :param prefix: the store's table prefix.
    """

    def __init__(
        self, database: str, connect_args: Mapping[str, Any], prefix: str
    ) -> None:
        super().__init__()
        self._database = database
        self._connect_args = dict(connect_args)
        #: The statements run here.
        self.queries = SQLiteQueries(prefix)

    def _open(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = sqlite3.connect(self._database, **self._connect_args)
        try:
            set_up_connection(conn)
            # The one write made here is a touch, which need not survive a
            # power cut (a lost one only makes the idle timeout a little
            # earlier): no sync at its commit (see .writes for the rule).
            conn.execute("PRAGMA synchronous=NORMAL")
            # Reads map the file instead of copying each page out of the
            # OS cache into a 2 MiB page cache: with a million sessions the
            # two B-trees of a lookup no longer fit that cache, and a
            # lookup took twice as long as with a thousand.
            conn.execute(f"PRAGMA mmap_size={MMAP_SIZE}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    def one(self, query: Query, params: Mapping[str, Any]) -> Row | None:
        """The first row of ``query``, or ``None``.

        :raises sqlite3.Error: as the driver raised it.
        """
        args = tuple([params[name] for name in query.order])  # no generator
        return cast("Row | None", self.connection().execute(query.sql, args).fetchone())

    def change(self, query: Query, params: Mapping[str, Any]) -> int:
        """Run one ``UPDATE`` (its own transaction); the rows it changed.

        :raises sqlite3.Error: as the driver raised it.
        """
        args = tuple([params[name] for name in query.order])
        return self.connection().execute(query.sql, args).rowcount


class PsycopgReads:
    """One-statement reads as prepared statements, on psycopg connections of
    their own kept in autocommit: no engine pool checkout, no ``BEGIN``, no
    ``ROLLBACK``, nothing to switch per call.

    Idle connections wait in a stack (a ``pop`` and an ``append``, atomic
    under the GIL), so there are never more than the reads ever running at
    once; a forked child never uses its parent's.

    :param engine: the store's engine (``postgresql+psycopg``), whose URL
        the connections open.
    :param connect_args: the engine's ``connect_args`` (timeouts).
    :param watch: the watchdog's :meth:`~.watchdog.Watchdog.watch`, if any.
    """

    def __init__(
        self, engine: Engine, connect_args: Mapping[str, Any], watch: Watch | None
    ) -> None:
        dbapi = engine.dialect.loaded_dbapi
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        cparams.update(connect_args)
        self._connect: Callable[[], Any] = lambda: dbapi.connect(
            *cargs, **cparams, autocommit=True
        )
        self._watch = watch
        self._error: type[Exception] = dbapi.Error
        self._idle: list[Any] = []
        self._pid = os.getpid()
        self._generation = 0

    def one(self, query: Query, params: Mapping[str, Any]) -> Row | None:
        """The first row of ``query``, or ``None``.

        A connection found dead (the server restarted since it was last
        used) throws away every idle one, which died with it, and the read
        runs once more on a new one: a read is safe to repeat. Any failed
        connection is closed, never reused.

        :raises psycopg.Error: as the driver raised it.
        :raises CallOverrun: the watchdog ended the call (never run again).
        """
        for last in (False, True):
            conn, generation = self._checkout()
            try:
                with self._watched(conn):
                    row = conn.execute(query.sql, params, prepare=True).fetchone()
            except self._error:
                self._discard(conn)
                if last or not (conn.closed or getattr(conn, "broken", False)):
                    raise
                self.close()
                continue
            except BaseException:
                self._discard(conn)  # ended by the watchdog, or interrupted
                raise
            if generation == self._generation:
                self._idle.append(conn)
            else:  # closed meanwhile
                self._discard(conn)
            return cast("Row | None", row)
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(self) -> tuple[Any, int]:
        if self._pid != os.getpid():
            # In a forked child: never use (nor close) the parent's.
            self._idle, self._pid = [], os.getpid()
            self._generation += 1
        generation = self._generation
        try:
            return self._idle.pop(), generation
        except IndexError:
            return self._connect(), generation

    def _discard(self, conn: Any) -> None:
        with contextlib.suppress(self._error):
            conn.close()

    def _watched(self, conn: Any) -> contextlib.AbstractContextManager[None]:
        if self._watch is None:
            return contextlib.nullcontext()
        return self._watch(conn, lambda: self._discard(conn))

    def close(self) -> None:
        """Close the idle connections; those in use are closed when done."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)
