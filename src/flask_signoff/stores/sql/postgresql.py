"""PostgreSQL engine set-up (psycopg 3, bounded calls) and its advisory locks.

Every call ends within a bound, whatever the server does. Connecting is
bounded by ``connect_timeout`` (psycopg, like libpq, waits at least 2 s), a
statement by the server's ``statement_timeout`` and ``lock_timeout``, and a
call to a server that stopped answering by the :mod:`.watchdog`, at
:data:`WATCHDOG_FACTOR` times the timeout.

No ping precedes each checkout from the pool (a round trip on every call):
the store runs a call that finds its connection dead once more instead (see
:mod:`.store`).

Durability per transaction
--------------------------

Every connection commits with ``synchronous_commit = off`` by default
(:func:`configure`): the commit returns before its WAL is flushed, so a
server crash or power cut in the next moments (three times
``wal_writer_delay`` at most) may lose it, and never corrupts anything
(PostgreSQL's documentation, "Asynchronous Commit"). That is the right
price for a sign-in, a touch, a refresh token issued or a throttle count:
losing one costs one more sign-in. A revocation must survive a crash once
answered: its transaction starts with :func:`make_durable`, which sets
``synchronous_commit`` back to the server's own setting, or to ``on`` if
the server's is ``off``, for that transaction only (``SET LOCAL``). Its
commit then waits for the WAL flush, and since the WAL is one sequence,
that flush also makes every earlier asynchronous commit durable.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from typing import TYPE_CHECKING, Any

from .lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine
else:
    sa = LazyModule("sqlalchemy")
    event = LazyModule("sqlalchemy.event")

#: A call still running after this many times the store's timeout is ended.
WATCHDOG_FACTOR = 1.5


def url_with_driver(url: sa.URL) -> sa.URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def engine_options(timeout: float) -> dict[str, Any]:
    """Options of :func:`sqlalchemy.create_engine` whose every call is bounded
    by ``timeout`` seconds (the watchdog aside)."""
    ms = int(timeout * 1000)
    return {
        "connect_args": {
            "connect_timeout": max(1, int(timeout)),
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms}",
        },
        "pool_pre_ping": False,
    }


#: Key of :attr:`Connection.info`: the ``synchronous_commit`` of the
#: server, which durable transactions use.
_DURABLE_LEVEL = "signoff_durable_commit"


@functools.cache
def _set_durable() -> sa.Select[Any]:
    # Built on first use: SQLAlchemy is imported lazily (see .lazy).
    return sa.select(
        sa.func.set_config("synchronous_commit", sa.bindparam("level"), True)
    )


def configure(engine: Engine) -> None:
    """Make ``synchronous_commit = off`` the default of every new connection
    of ``engine``, after noting the server's own setting (one round trip per
    connection, none per call)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True  # a session-wide SET, outside any transaction
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(
                "SELECT current_setting('synchronous_commit'),"
                " set_config('synchronous_commit', 'off', false)"
            )
            level = cursor.fetchone()[0]
        finally:
            cursor.close()
            dbapi_conn.autocommit = autocommit
        # Every level but off waits for the local WAL flush; a stronger one
        # chosen by the operator (remote_apply ...) is kept.
        record.info[_DURABLE_LEVEL] = "on" if level == "off" else level


def make_durable(conn: Connection) -> None:
    """Make the commit of ``conn``'s transaction wait for its WAL flush."""
    level = conn.info.get(_DURABLE_LEVEL, "on")
    conn.execute(_set_durable(), {"level": level})


def lock_user(conn: Connection, table_prefix: str, user_id: str) -> None:
    """Hold the user's advisory lock until ``conn``'s transaction ends.

    Statements after it take their snapshot once the lock is held, so they
    see every row the previous holder committed.
    """
    digest = hashlib.sha256(
        f"flask-signoff:user:{table_prefix}:{user_id}".encode()
    ).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def lock_schema(conn: Connection, table_prefix: str) -> None:
    """Hold the advisory lock that serialises schema creation until
    ``conn``'s transaction ends."""
    key = zlib.crc32(f"flask-signoff:schema:{table_prefix}".encode())
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
