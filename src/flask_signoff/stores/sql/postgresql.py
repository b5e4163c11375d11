"""PostgreSQL engine set-up (psycopg 3, bounded calls) and its advisory locks.

Every call ends within a bound, whatever the server does. Connecting is
bounded by ``connect_timeout`` (psycopg, like libpq, waits at least 2 s), a
statement by the server's ``statement_timeout`` and ``lock_timeout``, and a
call to a server that stopped answering by the :mod:`.watchdog`, at
:data:`WATCHDOG_FACTOR` times the timeout.

No ping precedes each checkout from the pool (a round trip on every call):
the store runs a call that finds its connection dead once more instead (see
:mod:`.store`).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import TYPE_CHECKING, Any

from .lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
else:
    sa = LazyModule("sqlalchemy")

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
