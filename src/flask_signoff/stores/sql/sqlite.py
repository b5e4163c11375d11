"""SQLite engine set-up: a private file, WAL, sync per transaction, our own ``BEGIN``.

- The database is a file (an in-memory database is not shared between
  connections), created ``0600`` (:func:`create_private`).
- Every connection, the engine's and the fast read path's
  (:mod:`.fast`), is set up by :func:`set_up_connection`: WAL mode, so
  readers never wait for the writer, and ``synchronous=FULL`` until a
  transaction says otherwise.
- The store, not the driver, issues ``BEGIN``: a transaction that may write
  starts with ``BEGIN IMMEDIATE`` (:func:`configure`). A deferred read that
  later upgrades to a write fails with "database is locked" whatever the
  busy timeout.
- Each write transaction picks its ``synchronous`` level before its
  ``BEGIN`` (SQLite refuses to change it inside a transaction): ``FULL``
  for a durable one (:data:`DURABLE_OPTION`), ``NORMAL`` for the others.

Why per transaction
-------------------

In WAL mode, ``synchronous=FULL`` syncs the WAL file at every commit, and
``NORMAL`` does not: the WAL is synced only before a checkpoint, so a
``NORMAL`` commit survives the process being killed (it is in the
operating system's cache) but may be rolled back by a power cut or an
operating system crash; the database stays consistent either way (SQLite's
documentation of ``PRAGMA synchronous`` and of WAL mode). A revocation
(sign-out, revoked session or refresh family, spent refresh token, epoch
bump) must survive a power cut once it is answered, so it commits with
``FULL``; a sign-in, a touch, a refresh token issued, a throttle count or
a purge costs nothing but one more sign-in when lost, so it commits with
``NORMAL`` and skips the sync.

The WAL is one file written in order, and its frames are checksummed in
sequence: the sync of a ``FULL`` commit flushes every earlier frame too,
whichever connection or process wrote it. So a ``FULL`` commit makes every
``NORMAL`` commit before it durable as well (SQLite's author says so on the
SQLite forum, "Switching pragma synchronous to upgrade durability", 2021),
and a revocation can never be kept while the sign-in it ends is lost.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from ...exceptions import StoreError
from .lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine
else:
    event = LazyModule("sqlalchemy.event")

#: Execution option of a connection whose transaction may write.
WRITE_OPTION = "signoff_write"

_PLAIN_PREFIX = "sqlite:///"


def plain_file(url: str) -> str | None:
    """The absolute path of the file a plain ``sqlite:///path`` URL names,
    as SQLAlchemy's driver would open it; ``None`` for any other URL (a
    query string, an escape, another driver), which SQLAlchemy reads."""
    if not url.startswith(_PLAIN_PREFIX) or "?" in url or "%" in url:
        return None
    database = url[len(_PLAIN_PREFIX) :]
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def connect_args(timeout: float) -> dict[str, Any]:
    """The arguments of :func:`sqlite3.connect` besides the file."""
    return {"timeout": timeout, "check_same_thread": False}


#: Execution option of a write transaction that must survive a power cut
#: once committed (``synchronous=FULL``); without it, ``NORMAL``.
DURABLE_OPTION = "signoff_durable"

#: Key of :attr:`Connection.info` that keeps the connection's current
#: ``synchronous`` level, so the pragma runs only when the level changes.
_LEVEL = "signoff_synchronous"


def engine_options(url: sa.URL, timeout: float) -> dict[str, Any]:
    """Check the URL names a file, create it private, and return the options
    of :func:`sqlalchemy.create_engine` for it.

    :raises StoreError: the URL names an in-memory database.
    """
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise StoreError(
            "The SQLite store needs a file: in-memory databases are not "
            "shared between connections."
        )
    create_private(database)
    return {"connect_args": connect_args(timeout)}


def configure(engine: Engine) -> None:
    """Set up every new connection of ``engine``, and begin its transactions
    with ``BEGIN IMMEDIATE`` when the connection has :data:`WRITE_OPTION`,
    else with a plain ``BEGIN``. A write transaction first sets
    ``synchronous`` to ``FULL`` with :data:`DURABLE_OPTION`, else to
    ``NORMAL``."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        set_up_connection(dbapi_conn)
        record.info[_LEVEL] = "FULL"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if not options.get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN")
            return
        synchronous(conn, conn.info, options.get(DURABLE_OPTION, True))
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def synchronous(conn: Any, info: dict[Any, Any], durable: bool) -> None:
    """Set ``synchronous`` of ``conn`` (a DB-API or SQLAlchemy connection,
    outside a transaction) to ``FULL`` if ``durable``, else ``NORMAL``.

    ``info`` is the connection's :attr:`~sqlalchemy.engine.Connection.info`,
    which keeps the level set last, so the pragma runs only on a change.
    """
    level = "FULL" if durable else "NORMAL"
    if info.get(_LEVEL) != level:
        execute = getattr(conn, "exec_driver_sql", None) or conn.execute
        execute(f"PRAGMA synchronous={level}")
        info[_LEVEL] = level


def set_up_connection(dbapi_conn: Any) -> None:
    """Set up a new SQLite connection: our transactions, WAL, full sync
    (until a write transaction of the engine chooses, see :func:`configure`)."""
    # Take transaction control from the driver so BEGIN is ours.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        _wal(cur)
        cur.execute("PRAGMA synchronous=FULL")
    finally:
        cur.close()


def _wal(cur: Any) -> None:
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


def create_private(path: str) -> None:
    """Create the SQLite file ``path``, empty and 0600, unless it exists.

    SQLite would create it 0644 less the umask, readable by every local user.
    The ``-wal`` and ``-shm`` files it adds later take the database file's
    permissions, so they are private too. An existing file keeps its mode:
    that is the operator's choice.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
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
