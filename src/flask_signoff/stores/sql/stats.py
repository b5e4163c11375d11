"""The counts of ``flask signoff stats`` on SQL: one read transaction.

Sessions are counted over the ``drop_at`` index (a range of the live ones),
families over ``expires_at``: the cost grows with the live records, and
nothing is written. Never called on a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...core.records import StoreStats
from .lazy import LazyModule
from .schema import Schema

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
else:
    sa = LazyModule("sqlalchemy")


def count_live(schema: Schema, now: float) -> Callable[[Connection], StoreStats]:
    """What to run, in a read, to count the records alive at ``now``."""
    s, f = schema.tables["sessions"], schema.tables["families"]

    def flagged(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        # SUM of NULL over no rows is NULL: coalesce, so an empty table is 0.
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    sessions = sa.select(
        sa.func.count(),
        flagged(s.c.remember == sa.true()),
        flagged(s.c.user_id.is_(None)),
    ).where(s.c.drop_at > now)
    families = sa.select(sa.func.count()).where(f.c.expires_at > now)

    def run(conn: Connection) -> StoreStats:
        live, remembered, anonymous = conn.execute(sessions).one()
        return StoreStats(
            sessions=int(live),
            remembered=int(remembered),
            anonymous=int(anonymous),
            families=int(conn.execute(families).scalar_one()),
        )

    return run
