"""The throttle's windows on SQL: :meth:`Store.reserve` and :meth:`Store.release`.

Each is one statement in one write transaction, so concurrent attempts are
counted exactly (see :mod:`flask_signoff.core.throttle` for the rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.records import Reserved
from .database import Database, rowcount
from .lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
else:
    sa = LazyModule("sqlalchemy")


def reserve(
    db: Database, th: sa.Table, key: str, limit: int, window: float, now: float
) -> Reserved:
    """The store's ``reserve``: one upsert, under the write lock."""
    closed = th.c.expires_at <= now
    insert = db.insert(th).values(key=key, attempts=1, expires_at=now + window)
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

    def run(conn: Connection) -> Reserved:
        row = conn.execute(take).first()
        if row is not None:
            return Reserved(True, int(row[0]), float(row[1]))
        # Refused: read the window's end for Retry-After, in the same
        # transaction (on SQLite under the same write lock).
        attempts, ends = conn.execute(full).one()
        return Reserved(False, int(attempts), float(ends))

    return db.write("reserve", run, durable=False)


def release(db: Database, th: sa.Table, key: str, ends: float) -> bool:
    """The store's ``release``: one conditional update."""
    # The window is named by its end: a float stored and returned exactly
    # (SQLite REAL and PostgreSQL double precision are both IEEE doubles).
    stmt = (
        sa.update(th)
        .where(th.c.key == key, th.c.expires_at == ends, th.c.attempts > 0)
        .values(attempts=th.c.attempts - 1)
    )
    return db.write("release", rowcount(stmt), durable=False) == 1
