"""The writes of sign-in, sign-out and touches, built once, run lean.

Building a SQLAlchemy statement (its bind parameters, its cache key) and
running it through a SQLAlchemy transaction cost several times more than
running it on SQLite. The writes of every sign-in and sign-out (a session
created or deleted, a refresh family issued or revoked) and the touch of an
active session are built here once per store (:class:`WriteStatements`)
and run with their values as parameters, in one transaction, by
:meth:`.database.Database.run`:

- on SQLite's own driver, straight on a pooled connection
  (:class:`SQLiteWrites`): ``PRAGMA synchronous`` when the level changes,
  ``BEGIN IMMEDIATE``, each statement compiled once, ``COMMIT``;
- on other drivers, through SQLAlchemy like every other write.

The names of the bind parameters start with ``b_``: a name that is also a
column's is reserved in ``INSERT`` and ``UPDATE``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from .errors import CommitFailed
from .lazy import LazyModule
from .sqlite import synchronous

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.compiler import SQLCompiler

    from .database import Database
else:
    sa = LazyModule("sqlalchemy")

#: A statement of :class:`WriteStatements` and its parameters.
Step = tuple["sa.Executable", Mapping[str, Any]]

#: A statement compiled for SQLite: its SQL, the names of its ``?`` in
#: order, and the values of those that are not ours (``LIMIT -1``).
_Compiled = tuple[str, tuple[str, ...], dict[str, Any]]


def _insert(table: sa.Table) -> sa.Insert:
    """``INSERT`` of every column of ``table``, from ``b_<column>``."""
    return sa.insert(table).values(
        {c.name: sa.bindparam(f"b_{c.name}") for c in table.c}
    )


def row_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of an insert of :func:`_insert` for a row's values."""
    return {f"b_{name}": value for name, value in values.items()}


class WriteStatements:
    """The frequent writes of one store, built from its tables.

    :param db: the store's database, whose tables and dialect they are for.
    """

    def __init__(self, db: Database) -> None:
        t = db.schema.tables
        s, f, r, v = t["sessions"], t["families"], t["refresh"], t["revoked"]
        self._sessions = s
        #: A new session, from :func:`row_params`.
        self.insert_session = _insert(s)
        #: The session of ``b_key``.
        self.delete_session = sa.delete(s).where(s.c.key == sa.bindparam("b_key"))
        #: ``last_seen_at`` and ``drop_at`` of the session of ``b_key``.
        self.touch_session = (
            sa.update(s)
            .where(s.c.key == sa.bindparam("b_key"))
            .values(
                last_seen_at=sa.bindparam("b_last_seen_at"),
                drop_at=sa.bindparam("b_drop_at"),
            )
        )
        #: A new family and its first refresh token, from :func:`row_params`.
        self.insert_family = _insert(f)
        self.insert_refresh = _insert(r)
        # Revoking a family: a marker (the later deadline wins if there was
        # one), then its refresh tokens and itself. Scoped to the user, as
        # get_family is: a family id names a family only with its user (the
        # Redis store keys it that way).
        mark = db.insert(v).values(
            family_id=sa.bindparam("b_family_id"),
            user_id=sa.bindparam("b_user_id"),
            drop_at=sa.bindparam("b_until"),
        )
        later = sa.func.max if db.dialect == "sqlite" else sa.func.greatest
        #: The revocation marker of ``b_family_id`` of ``b_user_id`` until
        #: ``b_until``.
        self.mark_revoked = mark.on_conflict_do_update(
            index_elements=[v.c.family_id],
            set_={"drop_at": later(v.c.drop_at, mark.excluded.drop_at)},
        )
        mine = sa.and_(
            r.c.family_id == sa.bindparam("b_family_id"),
            r.c.user_id == sa.bindparam("b_user_id"),
        )
        #: The refresh tokens, then the family, of ``b_family_id`` of
        #: ``b_user_id``.
        self.delete_family_tokens = sa.delete(r).where(mine)
        self.delete_family = sa.delete(f).where(
            f.c.family_id == sa.bindparam("b_family_id"),
            f.c.user_id == sa.bindparam("b_user_id"),
        )
        excess = (
            sa.select(s.c.key)
            .where(s.c.user_id == sa.bindparam("b_user_id"))
            .order_by(s.c.created_at.desc(), s.c.key)
            .offset(sa.bindparam("b_keep", type_=sa.Integer))
        )
        #: The sessions of ``b_user_id`` beyond its ``b_keep`` newest.
        self.evict = sa.delete(s).where(s.c.key.in_(excess.scalar_subquery()))
        #: Per table whose rows expire: its rows past ``b_now``, at most
        #: ``b_limit`` of them (found through the index of the deadline).
        self.purge: list[sa.Delete] = []
        for table, pk, deadline in db.schema.expiring():
            batch = (
                sa.select(pk)
                .where(deadline <= sa.bindparam("b_now"))
                .limit(sa.bindparam("b_limit", type_=sa.Integer))
            )
            self.purge.append(sa.delete(table).where(pk.in_(batch.scalar_subquery())))


class SQLiteWrites:
    """One write transaction straight on a pooled connection of SQLite's
    own driver (see the module's docstring).

    :param engine: the store's engine, whose connections
        :mod:`.sqlite` set up (the driver leaves ``BEGIN`` to us).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._compiled: dict[sa.Executable, _Compiled] = {}

    def _query(self, stmt: sa.Executable) -> _Compiled:
        """``stmt`` compiled, once."""
        found = self._compiled.get(stmt)
        if found is None:
            clause = cast(sa.ClauseElement, stmt)
            compiled = cast("SQLCompiler", clause.compile(dialect=self._engine.dialect))
            fixed = {
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if not bind.required
            }
            found = (str(compiled), tuple(compiled.positiontup or ()), fixed)
            self._compiled[stmt] = found
        return found

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, without waiting
        for readers or blocking writers (``PASSIVE``)."""
        raw = self._engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def run(self, steps: Sequence[Step], durable: bool) -> list[int]:
        """Run ``steps`` in one ``BEGIN IMMEDIATE`` transaction, committed
        with ``synchronous=FULL`` if ``durable``, else ``NORMAL``; how many
        rows each changed.

        :raises sqlite3.Error: as the driver raised it.
        :raises CommitFailed: the ``COMMIT`` itself failed.
        """
        raw = self._engine.raw_connection()
        try:
            conn: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
            synchronous(conn, raw.info, durable)
            conn.execute("BEGIN IMMEDIATE")
            try:
                counts = []
                for stmt, params in steps:
                    sql, order, fixed = self._query(stmt)
                    args = [params[n] if n in params else fixed[n] for n in order]
                    counts.append(conn.execute(sql, args).rowcount)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise CommitFailed() from e
            return counts
        finally:
            raw.close()
