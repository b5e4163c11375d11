"""Ending what came from one OpenID Connect provider session, in SQL.

:meth:`~flask_signoff.core.store.Store.end_provider_sessions` for
:class:`~flask_signoff.stores.sql.SQLStore`: one transaction, found through
the indexes on ``(oidc_iss, oidc_sid)`` and ``(oidc_iss, oidc_sub)`` of the
sessions and families tables.

The users of the matching sessions are locked first (the per-user lock of
sign-in and rotation, see the package's docstring), in a fixed order so that
two of these calls never wait on each other in a cycle. On PostgreSQL this
is what makes a rotation racing the call safe: the rotation commits before
the lock is granted, and the ``DELETE`` after it, a later statement with a
fresh snapshot, sees the new row. On SQLite ``BEGIN IMMEDIATE`` already lets
one writer at a time in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
else:
    sa = LazyModule("sqlalchemy")

from .database import Database


def end_provider_sessions(
    db: Database, iss: str, sid: str, sub: str, until: float
) -> int:
    """Delete the sessions and revoke the families of ``(iss, sid)``, or of
    ``(iss, sub)`` when ``sid`` is empty; return how many."""
    t = db.schema.tables
    s, f, r, v = t["sessions"], t["families"], t["refresh"], t["revoked"]

    def match(table: sa.Table) -> sa.ColumnElement[bool]:
        if sid:
            return sa.and_(table.c.oidc_iss == iss, table.c.oidc_sid == sid)
        return sa.and_(table.c.oidc_iss == iss, table.c.oidc_sub == sub)

    users = sa.select(s.c.user_id).where(match(s), s.c.user_id.is_not(None)).distinct()
    families = sa.select(f.c.family_id, f.c.user_id).where(match(f))

    def run(conn: Connection) -> int:
        for user_id in sorted(str(u) for u in conn.scalars(users)):
            db.lock_user(conn, user_id)
        found = conn.execute(families).all()
        if found:
            insert = db.insert(v).values(
                [
                    {"family_id": fid, "user_id": uid, "drop_at": until}
                    for fid, uid in found
                ]
            )
            # Keep the later deadline of a family revoked before.
            later = sa.func.max if db.dialect == "sqlite" else sa.func.greatest
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[v.c.family_id],
                    set_={"drop_at": later(v.c.drop_at, insert.excluded.drop_at)},
                )
            )
            ids = [fid for fid, _ in found]
            conn.execute(sa.delete(r).where(r.c.family_id.in_(ids)))
            conn.execute(sa.delete(f).where(f.c.family_id.in_(ids)))
        return len(found) + conn.execute(sa.delete(s).where(match(s))).rowcount

    # A revocation: answered only once it would survive a power cut.
    return db.write("end_provider_sessions", run, durable=True)
