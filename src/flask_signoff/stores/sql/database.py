"""The database of one SQL store: its engine, and the wrappers of every call.

:class:`Database` makes the engine for the URL's dialect (:mod:`.sqlite`,
:mod:`.postgresql`, the :mod:`.watchdog` on PostgreSQL), owns the tables
(:mod:`.schema`) and the fast reads (:mod:`.fast`), and runs every call of
the store through one read wrapper (:meth:`Database.read`, a connection that
does not write) or one write wrapper (:meth:`Database.write`, one
transaction that may write: ``BEGIN IMMEDIATE`` on SQLite, durable or not,
as its caller says), or, for the two
reads of every request, :meth:`Database.one`. Each of them creates the
schema on first use, runs a call once more when its pooled connection turns
out dead, and translates errors (:mod:`.errors`).

Dead connections
----------------

After a PostgreSQL server restarts, the connections in the pool are dead. No
ping precedes each checkout (a round trip on every call); instead a call
that finds its connection dead is run once more on a new one, when that is
safe: always for a read, and for a write only if the transaction failed
before its ``COMMIT`` was sent (a transaction that was never committed left
nothing behind). SQLAlchemy then replaces every older connection of the
pool. A call ended by the watchdog is not run again: the server is slow or
gone, and a second wait would only double the first.

Durable writes
--------------

Every write names its durability (:meth:`Database.write`'s ``durable``,
which has no default). A durable one returns only once its commit would
survive a power cut: ``synchronous=FULL`` on SQLite (:mod:`.sqlite`), its
WAL flushed on PostgreSQL (:mod:`.postgresql`). The others return before
that sync, which costs more than the rest of a sign-in together; a power cut
may lose them, never a revocation answered after them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import postgresql, sqlite
from .errors import CommitFailed, ErrorTranslator, cause
from .fast import HotQueries, PsycopgReads, Query, Row, SQLiteReads
from .lazy import LazyModule
from .schema import Schema
from .watchdog import Watchdog
from .writes import SQLiteWrites, Step

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy import exc
    from sqlalchemy.engine import Connection, Engine
else:
    sa = LazyModule("sqlalchemy")
    exc = LazyModule("sqlalchemy.exc")

T = TypeVar("T")

#: ``engine_options`` that open SQLite connections some other way than the
#: fast path would: with any of them, reads go through SQLAlchemy.
_OWN_CONNECTIONS = frozenset({"creator", "module", "pool", "poolclass"})

#: The words of SQLite's errors for a table or column that is not there yet.
_NO_SCHEMA = ("no such table", "no such column")


def rowcount(stmt: sa.Executable) -> Callable[[Connection], int]:
    """What to run, in a write, for ``stmt``: how many rows it changed."""
    return lambda conn: conn.execute(stmt).rowcount


def dialect_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` (any other name as the URL has it)."""
    name = url.partition("://")[0].partition("+")[0].lower()
    return "postgresql" if name in ("postgresql", "postgres") else name


class Database:
    """The engine of one store and the calls made on it.

    The parameters are :class:`~flask_signoff.stores.sql.SQLStore`'s.

    On a plain ``sqlite:///path`` URL the engine, the tables' SQLAlchemy
    objects and SQLAlchemy itself are made on first use: the reads and
    touches of every request (:mod:`.fast`) need none of them, and neither
    does an existing schema, which is created by the first call that finds
    it missing.
    """

    def __init__(
        self,
        url: str,
        table_prefix: str,
        timeout: float,
        engine_options: dict[str, Any] | None,
    ) -> None:
        self._url_text = url
        self._timeout = timeout
        self._engine_options = dict(engine_options or {})
        #: ``"sqlite"`` or ``"postgresql"``.
        self.dialect = dialect_of(url)
        #: Prefix of every table name.
        self.prefix = table_prefix
        self.watchdog: Watchdog | None = None
        self.fast_reads: SQLiteReads | PsycopgReads | None = None
        self._engine: Engine | None = None
        self._schema: Schema | None = None
        self._errors: ErrorTranslator | None = None
        self._queries: HotQueries | None = None
        self._schema_ready = False
        self._engine_lock = threading.Lock()
        #: The lean write transactions of :meth:`run`, on SQLite's own
        #: driver; made with the engine.
        self.fast_writes: SQLiteWrites | None = None
        path = None
        if (
            self.dialect == "sqlite"
            and not self._engine_options.keys() & _OWN_CONNECTIONS
        ):
            path = sqlite.plain_file(url)
        if path is not None:
            sqlite.create_private(path)
            connect_args = self._engine_options.get(
                "connect_args"
            ) or sqlite.connect_args(timeout)
            self.fast_reads = SQLiteReads(path, connect_args, table_prefix)
        else:
            self._make_engine()

    def _make_engine(self) -> Engine:
        sa_url = postgresql.url_with_driver(sa.make_url(self._url_text))
        options: dict[str, Any] = {"pool_timeout": self._timeout}
        if self.dialect == "sqlite":
            options.update(sqlite.engine_options(sa_url, self._timeout))
        elif self.dialect == "postgresql":
            options.update(postgresql.engine_options(self._timeout))
        options.update(self._engine_options)
        engine: Engine = sa.create_engine(sa_url, **options)
        if self.dialect == "postgresql":
            self.watchdog = Watchdog(postgresql.WATCHDOG_FACTOR * self._timeout)
        if self.dialect == "sqlite":
            sqlite.configure(engine)
        elif self.dialect == "postgresql":
            postgresql.configure(engine)
        driver = sa_url.get_driver_name()
        if self.dialect == "sqlite" and driver == "pysqlite":
            self.fast_writes = SQLiteWrites(engine)
        self._engine = engine
        if self.fast_reads is not None:
            pass  # a plain file: set up without the engine
        elif self.dialect == "sqlite" and driver == "pysqlite":
            if not options.keys() & _OWN_CONNECTIONS:
                cargs, cparams = engine.dialect.create_connect_args(engine.url)
                cparams.update(options.get("connect_args") or {})
                self.fast_reads = SQLiteReads(cargs[0], cparams, self.prefix)
        elif self.dialect == "postgresql" and driver == "psycopg":
            watch = self.watchdog.watch if self.watchdog else None
            connect_args = options.get("connect_args") or {}
            self.fast_reads = PsycopgReads(engine, connect_args, watch)
        return engine

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made on first use (once, whatever the
        threads asking)."""
        engine = self._engine
        if engine is None:
            with self._engine_lock:
                engine = self._engine or self._make_engine()
        return engine

    @property
    def url(self) -> sa.URL:
        """The SQLAlchemy URL, with its driver."""
        return self.engine.url

    @property
    def schema(self) -> Schema:
        """The tables, made on first use."""
        if self._schema is None:
            self._schema = Schema(self.prefix)
        return self._schema

    @property
    def errors(self) -> ErrorTranslator:
        """Translates this database's errors; made on the first one."""
        if self._errors is None:
            self._errors = ErrorTranslator(
                self.dialect,
                self.engine.dialect.loaded_dbapi,
                self.watchdog.limit if self.watchdog else 0,
            )
        return self._errors

    @property
    def queries(self) -> HotQueries:
        """The two statements of every request, compiled for the engine."""
        if self._queries is None:
            self._queries = HotQueries(self.schema, self.engine)
        return self._queries

    # -- the wrappers every call goes through -----------------------------------

    def read(self, operation: str, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` on a connection that does not write (see :meth:`_call`).

        :param operation: the store operation, named in errors.
        """

        def attempt() -> T:
            with self._connection(write=False) as conn:
                return fn(conn)

        return self._call(operation, attempt)

    def write(
        self, operation: str, fn: Callable[[Connection], T], *, durable: bool
    ) -> T:
        """``fn(conn)`` in one write transaction (see :meth:`_call`).

        :param operation: the store operation, named in errors.
        :param durable: return only once the commit would survive a power
            cut (a revocation), rather than once it survives the process
            (see the module's docstring).
        """

        def attempt() -> T:
            with self._connection(write=True, durable=durable) as conn:
                return fn(conn)

        return self._call(operation, attempt)

    def run(
        self,
        operation: str,
        steps: Sequence[Step],
        *,
        durable: bool,
        lock_user: str | None = None,
    ) -> list[int]:
        """Run the prepared statements ``steps`` (of
        :class:`~.writes.WriteStatements`) in one write transaction, as
        :meth:`write` would; how many rows each changed.

        On SQLite's own driver, straight on the driver (:mod:`.writes`);
        elsewhere through :meth:`write`, under the lock of ``lock_user``
        first if given (``BEGIN IMMEDIATE`` already serialises SQLite).
        """
        self.engine  # noqa: B018 -- made first: it decides fast_writes
        writes = self.fast_writes
        if writes is not None:
            return self._call(operation, writes.run, steps, durable)

        def run(conn: Connection) -> list[int]:
            self.lock_user(conn, lock_user)
            return [conn.execute(stmt, dict(params)).rowcount for stmt, params in steps]

        return self.write(operation, run, durable=durable)

    def after_bulk_write(self) -> None:
        """After a transaction that wrote many pages (a purge batch): on
        SQLite, checkpoint the WAL now, so that the commit of a request
        never finds it past ``wal_autocheckpoint`` and pays for the
        checkpoint itself. Errors are left to the next call."""
        if self.fast_writes is not None:
            with contextlib.suppress(*self.errors.handled):
                self.fast_writes.checkpoint()

    def one(self, operation: str, which: str, params: dict[str, Any]) -> Row | None:
        """The first row of one of the reads of every request, ``"session"``
        or ``"access"``, or of ``"epoch"`` (see :mod:`.fast`), on the fast
        path if the driver has one, else through SQLAlchemy (see
        :meth:`_call`)."""
        reads = self.fast_reads
        if isinstance(reads, SQLiteReads):
            return self._sqlite(
                operation, reads.one, getattr(reads.queries, which), params
            )
        queries = self.queries
        query: Query = getattr(queries, which)
        if reads is None:
            stmt = getattr(queries, f"{which}_stmt")

            def read(conn: Connection) -> Row | None:
                row = conn.execute(stmt, params).first()
                return None if row is None else tuple(row)

            return self.read(operation, read)
        return self._call(operation, reads.one, query, params)

    def touch(self, operation: str, params: dict[str, Any]) -> int | None:
        """Touch a session on SQLite's fast path, in one ``UPDATE``: the rows
        changed; ``None`` where there is no such path (write it through
        SQLAlchemy instead)."""
        reads = self.fast_reads
        if not isinstance(reads, SQLiteReads):
            return None
        return self._sqlite(operation, reads.change, reads.queries.touch, params)

    def _sqlite(
        self,
        operation: str,
        call: Callable[[Query, dict[str, Any]], T],
        query: Query,
        params: dict[str, Any],
    ) -> T:
        """``call(query, params)`` on SQLite's fast path, with no schema check
        first: a table or column that is missing (a new database, or one of
        an older version) makes the schema, and the call runs again."""
        try:
            return call(query, params)
        except sqlite3.OperationalError as e:
            if self._schema_ready or not str(e).startswith(_NO_SCHEMA):
                raise self.errors.translate(e, operation) from e
        except sqlite3.Error as e:
            raise self.errors.translate(e, operation) from e
        return self._call(operation, call, query, params)

    def _call(self, operation: str, attempt: Callable[..., T], *args: Any) -> T:
        """Return ``attempt(*args)``, after creating the schema if need be.

        An attempt whose connection turns out dead (it died in the pool while
        the server restarted) runs once more on a new connection; a write
        that was committing does not (:class:`.errors.CommitFailed`). Errors
        come out as :class:`StoreError` or :class:`StoreUnavailable`, naming
        ``operation``.
        """
        for last in (False, True):
            try:
                if not self._schema_ready:
                    self.create_schema()
                return attempt(*args)
            except exc.DBAPIError as e:
                if not last and e.connection_invalidated:
                    continue
                raise self.errors.translate(e, operation) from e
            except self.errors.handled as e:
                raise self.errors.translate(e, operation) from cause(e)
        raise AssertionError("unreachable")  # pragma: no cover

    def _watched(self, conn: Connection) -> contextlib.AbstractContextManager[None]:
        if self.watchdog is None:
            return contextlib.nullcontext()
        return self.watchdog.watch(conn.connection.dbapi_connection, conn.invalidate)

    @contextlib.contextmanager
    def _connection(self, *, write: bool, durable: bool = True) -> Iterator[Connection]:
        """A pooled connection, watched on PostgreSQL. With ``write``, the
        block is one transaction begun as a writer (``BEGIN IMMEDIATE`` on
        SQLite) and committed at its end, durably if ``durable``."""
        with self.engine.connect() as conn, self._watched(conn):
            if not write:
                yield conn
                return
            conn.execution_options(
                **{sqlite.WRITE_OPTION: True, sqlite.DURABLE_OPTION: durable}
            )
            committing = False
            try:
                with conn.begin():
                    if durable and self.dialect == "postgresql":
                        postgresql.make_durable(conn)
                    yield conn
                    committing = True
            except exc.DBAPIError as e:
                if committing:
                    raise CommitFailed() from e
                raise

    # -- what differs by dialect, inside a call ------------------------------------

    def lock_user(self, conn: Connection, user_id: str | None) -> None:
        """Hold the user's lock until ``conn``'s transaction ends.

        On SQLite ``BEGIN IMMEDIATE`` already lets one writer at a time in;
        on PostgreSQL a transaction-scoped advisory lock.
        """
        if user_id is not None and self.dialect == "postgresql":
            postgresql.lock_user(conn, self.prefix, user_id)

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which knows ``ON CONFLICT``."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- set-up and tear-down ----------------------------------------------------

    def create_schema(self) -> None:
        """Create the tables if they are missing, and add the columns of
        later versions; safe to race (see :meth:`.schema.Schema.create`).

        Database errors come out as SQLAlchemy raised them.
        """

        def lock(conn: Connection) -> None:
            if self.dialect == "postgresql":
                postgresql.lock_schema(conn, self.prefix)

        self.schema.create(lambda: self._connection(write=True), lock)
        self._schema_ready = True

    def missing_tables(self) -> list[str]:
        """The tables of the schema that the database lacks; creates nothing.

        :raises StoreUnavailable: the database cannot be reached.
        """
        try:
            with self.engine.connect() as conn:
                return self.schema.missing(conn)
        except (exc.DBAPIError, exc.TimeoutError) as e:
            raise self.errors.translate(e, "missing_tables") from e

    def close(self) -> None:
        """Stop the watchdog, close the fast reads' and the pool's
        connections. A later call opens new ones."""
        if self.watchdog is not None:
            self.watchdog.close()
        if self.fast_reads is not None:
            self.fast_reads.close()
        if self._engine is not None:
            self._engine.dispose()
