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
- PostgreSQL (:class:`PsycopgReads`): on a pooled connection in autocommit,
  so there is no ``BEGIN`` and no ``ROLLBACK`` round trip, as a prepared
  statement compiled once (:class:`HotQueries`).

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
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from ...core.records import SESSION_FIELDS
from .sqlite import set_up_connection

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import PoolProxiedConnection

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
        #: Set ``last_seen_at`` and ``drop_at`` of the session ``key``.
        self.touch = Query(
            f"UPDATE {sessions} SET last_seen_at = ?, drop_at = ?"  # noqa: S608
            " WHERE key = ?",
            ("last_seen_at", "drop_at", "key"),
        )


class HotQueries:
    """The two statements of every request, built from the store's tables.

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
        self.session = Query.compile(self.session_stmt, engine)
        self.access = Query.compile(self.access_stmt, engine)


#: Readers with per-thread SQLite connections; a forked child drops its copies.
_SQLITE_READERS: weakref.WeakSet[SQLiteReads] = weakref.WeakSet()


def _after_fork() -> None:
    for reads in list(_SQLITE_READERS):
        reads._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class SQLiteReads:
    """One-statement reads (and touches) on a SQLite connection per thread.

    :param database: the file, as :func:`sqlite3.connect` takes it.
    :param connect_args: the other arguments of :func:`sqlite3.connect`.
    :param prefix: the store's table prefix.
    """

    def __init__(
        self, database: str, connect_args: Mapping[str, Any], prefix: str
    ) -> None:
        self._database = database
        self._connect_args = dict(connect_args)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._generation = 0
        #: The statements run here.
        self.queries = SQLiteQueries(prefix)
        _SQLITE_READERS.add(self)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after
        :meth:`close`, or in a forked child)."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.generation == self._generation:
            return conn
        conn = sqlite3.connect(self._database, **self._connect_args)
        try:
            set_up_connection(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._conns.append(conn)
            local.conn, local.generation = conn, self._generation
        return conn

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

    def close(self) -> None:
        """Close every thread's connection; the next read opens a new one."""
        with self._lock:
            conns, self._conns = self._conns, []
            self._generation += 1
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _forget(self) -> None:
        # In a forked child: never use (nor close) the parent's connections.
        self._conns = []
        self._generation += 1
        self._lock = threading.Lock()
        self._local = threading.local()


class PsycopgReads:
    """One-statement reads as prepared statements on pooled connections.

    :param engine: the store's engine (``postgresql+psycopg``).
    :param watch: the watchdog's :meth:`~.watchdog.Watchdog.watch`, if any.
    """

    def __init__(self, engine: Engine, watch: Watch | None) -> None:
        self._engine = engine
        self._watch = watch
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def _watched(
        self, dbapi_connection: Any, invalidate: Callable[[], None]
    ) -> contextlib.AbstractContextManager[None]:
        if self._watch is None:
            return contextlib.nullcontext()
        return self._watch(dbapi_connection, invalidate)

    def one(self, query: Query, params: Mapping[str, Any]) -> Row | None:
        """The first row of ``query``, or ``None``.

        :raises psycopg.Error: as the driver raised it (the connection is
            thrown away), or from the pool, unwrapped.
        :raises sqlalchemy.exc.DBAPIError: the pooled connection was dead,
            and so was the next one.
        :raises CallOverrun: the watchdog ended the call (never run again).
        """
        raw: PoolProxiedConnection = self._engine.raw_connection()
        conn = raw.driver_connection
        assert conn is not None
        try:
            with self._watched(raw.dbapi_connection, raw.invalidate):
                conn.autocommit = True
                try:
                    cursor = conn.execute(query.sql, params, prepare=True)
                    return cast("Row | None", cursor.fetchone())
                finally:
                    conn.autocommit = False
        except self._error as e:
            raw.invalidate(e)
            if not (conn.closed or getattr(conn, "broken", False)):
                raise
        finally:
            raw.close()
        # The pooled connection was dead: the server restarted since it was
        # last used. Read again through SQLAlchemy, which on a dead
        # connection also replaces every older one of the pool (and then
        # Database.one runs this once more), as for every other read.
        with (
            self._engine.connect() as c,
            self._watched(c.connection.dbapi_connection, c.invalidate),
        ):
            row = c.exec_driver_sql(query.sql, dict(params)).first()
        return None if row is None else tuple(row)

    def close(self) -> None:
        """Nothing to close: the connections are the engine's pool's."""
