"""SQLStore: the store contract, one code path for both dialects.

Each method says what to run; :class:`.database.Database` runs it, through
its one read wrapper (``self._db.read(operation, fn)``) or its one write
wrapper (``self._db.write(operation, fn, durable=...)``: one transaction, ``BEGIN
IMMEDIATE`` on SQLite), which create the schema on first use, run a call
once more on a new connection when its pooled one was dead, and translate
errors. The two reads of every request, the session and the access token
check, are one statement each on the fast path (:meth:`.database.Database.one`).
The atomic operations are listed in the package's docstring.

Durability
----------

Every write says whether it must survive a power cut once answered
(``durable=True``; see :mod:`.database`). Durable: what ends a credential,
that is deleting sessions (sign-out, revocation, rotation, the session
replaced at sign-in), revoking families, spending a refresh token (else a
crash could let it be spent again, unseen by reuse detection), bumping an
epoch; and the routing key. Not durable, since losing one costs a sign-in
and nothing else: creating a session (with its evictions: a crash brings
back the state before the sign-in), saving or touching it, issuing refresh
tokens, throttle counts and the purge.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...core.records import (
    AccessState,
    FamilyRecord,
    RefreshRecord,
    Reserved,
    SessionRecord,
    SpendResult,
    SpendStatus,
    StoreStats,
)
from ...core.store import Store
from ...exceptions import StoreError
from .database import Database, rowcount
from .lazy import LazyModule
from .provider import end_provider_sessions
from .schema import (
    family_from_row,
    family_values,
    refresh_from_row,
    refresh_values,
    session_from_row,
    session_values,
)
from .stats import count_live
from .throttle import release, reserve
from .writes import Step, WriteStatements, row_params

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

    from .schema import Schema
else:
    sa = LazyModule("sqlalchemy")


def _first(stmt: sa.Executable) -> Callable[[Connection], Any]:
    """Run ``stmt``; its first row, or ``None``."""
    return lambda conn: conn.execute(stmt).first()


def _scalar(stmt: sa.Executable) -> Callable[[Connection], Any]:
    """Run ``stmt``; the first column of its first row, or ``None``."""
    return lambda conn: conn.execute(stmt).scalar()


class SQLStore(Store):
    """Sessions and tokens in a SQL database through SQLAlchemy Core.

    :param url: a SQLAlchemy URL. ``postgresql://`` uses psycopg 3.
    :param table_prefix: prefix of every table name, so several apps can share
        one database.
    :param timeout: seconds a call may wait: SQLite's busy timeout, PostgreSQL's
        connect and statement timeouts, and the pool's checkout timeout. On
        PostgreSQL a call still running after ``1.5 * timeout`` is ended by a
        watchdog (:mod:`flask_signoff.stores.sql.watchdog`).
    :param engine_options: extra keyword arguments for
        :func:`sqlalchemy.create_engine`.
    """

    #: Most rows one transaction of :meth:`purge_expired` deletes: a short
    #: write lock (a few milliseconds on SQLite, a million rows stored).
    purge_chunk = 100
    #: Least pause, in seconds, after each transaction of
    #: :meth:`purge_expired` (at least as long as the transaction took), so
    #: that requests waiting to write go first.
    purge_pause = 0.002

    def __init__(
        self,
        url: str,
        *,
        table_prefix: str = "signoff_",
        timeout: float = 5.0,
        engine_options: dict[str, Any] | None = None,
        create_schema: bool = True,
        **_ignored: Any,
    ) -> None:
        self._db = db = Database(url, table_prefix, timeout, engine_options)
        #: ``"sqlite"`` or ``"postgresql"``.
        self.dialect = db.dialect
        #: Seconds a call may wait (see the class's parameters).
        self.timeout = timeout
        #: The one-statement reads of every request
        #: (:mod:`flask_signoff.stores.sql.fast`): on SQLite's own driver, a
        #: connection per thread; on psycopg, prepared statements; ``None``
        #: on other drivers, whose reads go through SQLAlchemy.
        self.fast_reads = db.fast_reads
        self._writes: WriteStatements | None = None

    # SQLAlchemy's objects, made on first use: on SQLite the reads and
    # touches of every request need none of them (see .lazy).

    @property
    def url(self) -> sa.URL:
        """The SQLAlchemy URL, with its driver."""
        return self._db.url

    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def schema(self) -> Schema:
        return self._db.schema

    @property
    def metadata(self) -> sa.MetaData:
        return self._db.schema.metadata

    @property
    def t(self) -> dict[str, sa.Table]:
        """The tables by short name (``self.t["sessions"]``)."""
        return self._db.schema.tables

    @property
    def _w(self) -> WriteStatements:
        """The frequent writes, built on first use (see :mod:`.writes`)."""
        w = self._writes
        if w is None:
            w = self._writes = WriteStatements(self._db)
        return w

    def create_schema(self) -> None:
        """Create the tables if they are missing, and add the columns of
        later versions; safe to race (see
        :meth:`~flask_signoff.stores.sql.schema.Schema.create`). Every other
        call does it first if it was not done yet."""
        self._db.create_schema()

    def missing_tables(self) -> list[str]:
        """The tables of the schema that the database lacks; creates nothing.

        For ``flask signoff check``. Connects, so it also shows whether the
        database can be reached.

        :raises StoreUnavailable: the database cannot be reached.
        """
        return self._db.missing_tables()

    def close(self) -> None:
        self._db.close()

    # -- routing -----------------------------------------------------------------

    def load_routing_key(self) -> bytes:
        m = self.t["meta"]
        read = sa.select(m.c.value).where(m.c.name == "routing_key")
        create = (
            self._db.insert(m)
            .values(name="routing_key", value=secrets.token_hex(32))
            .on_conflict_do_nothing(index_elements=[m.c.name])
        )

        def create_and_read(conn: Connection) -> str:
            conn.execute(create)
            # READ COMMITTED (PostgreSQL): this statement sees the row of a
            # concurrent insert that won; BEGIN IMMEDIATE (SQLite) let no
            # other writer in between.
            return str(conn.execute(read).scalar_one())

        # A plain read first: once the key exists (every time but the very
        # first) no write lock is taken.
        kept = self._db.read("load_routing_key", _scalar(read))
        if kept is None:
            kept = self._db.write("load_routing_key", create_and_read, durable=True)
        try:
            key = bytes.fromhex(str(kept))
        except ValueError:
            key = b""
        if len(key) != 32:
            # Tagging under some other key would give users new tags: refuse.
            raise StoreError(
                f"The session store ({self.dialect}) holds a routing key that "
                "is not 32 bytes of hex."
            )
        return key

    # -- sessions ----------------------------------------------------------------

    def get_session(self, key: str) -> SessionRecord | None:
        row = self._db.one("get_session", "session", {"key": key})
        return None if row is None else session_from_row(row)

    def _insert_session(
        self, record: SessionRecord, max_per_user: int | None
    ) -> list[Step]:
        w = self._w
        steps: list[Step] = [(w.insert_session, row_params(session_values(record)))]
        if max_per_user is not None and record.user_id is not None:
            evict = {"b_user_id": record.user_id, "b_keep": max_per_user}
            steps.append((w.evict, evict))
        return steps

    def create_session(
        self, record: SessionRecord, *, max_per_user: int | None = None
    ) -> None:
        steps = self._insert_session(record, max_per_user)
        self._db.run("create_session", steps, durable=False, lock_user=record.user_id)

    def update_session(self, record: SessionRecord) -> bool:
        s = self.t["sessions"]
        stmt = (
            sa.update(s)
            .where(s.c.key == record.key)
            .values(
                data=record.data,
                last_seen_at=record.last_seen_at,
                drop_at=record.drop_at,
                expires_at=record.expires_at,
                fresh_until=record.fresh_until,
                remember=record.remember,
            )
        )
        stored = self._db.write("update_session", rowcount(stmt), durable=False)
        return stored == 1

    def touch_session(self, key: str, last_seen_at: float, drop_at: float) -> bool:
        params = {"key": key, "last_seen_at": last_seen_at, "drop_at": drop_at}
        touched = self._db.touch("touch_session", params)
        if touched is not None:  # one UPDATE on SQLite's fast path
            return touched == 1
        params = {"b_key": key, "b_last_seen_at": last_seen_at, "b_drop_at": drop_at}
        steps = [(self._w.touch_session, params)]
        return self._db.run("touch_session", steps, durable=False) == [1]

    def rotate_session(
        self, old_key: str | None, new: SessionRecord, *, require_old: bool
    ) -> bool:
        s = self.t["sessions"]

        def rotate(conn: Connection) -> bool:
            self._db.lock_user(conn, new.user_id)
            gone = 0
            if old_key is not None:
                gone = conn.execute(sa.delete(s).where(s.c.key == old_key)).rowcount
            if require_old and gone != 1:
                return False
            for stmt, params in self._insert_session(new, None):
                conn.execute(stmt, dict(params))
            return True

        return self._db.write("rotate_session", rotate, durable=True)

    def delete_session(self, key: str) -> bool:
        steps = [(self._w.delete_session, {"b_key": key})]
        return self._db.run("delete_session", steps, durable=True) == [1]

    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        s = self.t["sessions"]
        stmt = (
            sa.select(s)
            .where(s.c.user_id == user_id, s.c.drop_at > now)
            .order_by(s.c.created_at.desc(), s.c.key)
        )
        return self._db.read(
            "list_sessions",
            lambda conn: [session_from_row(r) for r in conn.execute(stmt)],
        )

    def delete_session_by_public_id(
        self, user_id: str, public_id: str
    ) -> SessionRecord | None:
        s = self.t["sessions"]
        find = sa.select(s).where(s.c.user_id == user_id, s.c.public_id == public_id)

        def delete(conn: Connection) -> SessionRecord | None:
            self._db.lock_user(conn, user_id)
            row = conn.execute(find).first()
            if row is None:
                return None
            conn.execute(sa.delete(s).where(s.c.key == row.key))
            return session_from_row(row)

        return self._db.write("delete_session_by_public_id", delete, durable=True)

    def delete_user_sessions(self, user_id: str, *, keep_key: str | None = None) -> int:
        s = self.t["sessions"]
        stmt = sa.delete(s).where(s.c.user_id == user_id)
        if keep_key is not None:
            stmt = stmt.where(s.c.key != keep_key)

        def delete(conn: Connection) -> int:
            self._db.lock_user(conn, user_id)
            return conn.execute(stmt).rowcount

        return self._db.write("delete_user_sessions", delete, durable=True)

    def delete_all_sessions(self) -> int:
        return self._db.write(
            "delete_all_sessions",
            rowcount(sa.delete(self.t["sessions"])),
            durable=True,
        )

    def purge_expired(self, now: float, *, batch_size: int = 500) -> int:
        total = 0
        for stmt in self._w.purge:
            left = batch_size
            while left > 0:
                limit = min(left, self.purge_chunk)
                steps = [(stmt, {"b_now": now, "b_limit": limit})]
                started = time.monotonic()
                gone = self._db.run("purge_expired", steps, durable=False)[0]
                held = time.monotonic() - started
                total, left = total + gone, left - limit
                if gone:
                    self._db.after_bulk_write()
                    # Let the writers that waited for this transaction in
                    # before the next one (SQLite's busy handler retries
                    # after 1, 3, 8 ... ms).
                    time.sleep(min(max(held, self.purge_pause), 0.05))
                if gone < limit:
                    break
        return total

    def stats(self, now: float) -> StoreStats:
        return self._db.read("stats", count_live(self.schema, now))

    # -- users -------------------------------------------------------------------

    def get_epoch(self, user_id: str) -> int:
        row = self._db.one("get_epoch", "epoch", {"user_id": user_id})
        return 0 if row is None else int(row[0])

    def bump_epoch(self, user_id: str) -> int:
        e = self.t["epochs"]
        stmt = (
            self._db.insert(e)
            .values(user_id=user_id, epoch=1)
            .on_conflict_do_update(
                index_elements=[e.c.user_id], set_={"epoch": e.c.epoch + 1}
            )
            .returning(e.c.epoch)
        )
        return int(self._db.write("bump_epoch", _scalar(stmt), durable=True))

    # -- refresh-token families ------------------------------------------------

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        steps: list[Step] = [
            (self._w.insert_family, row_params(family_values(family))),
            (self._w.insert_refresh, row_params(refresh_values(first))),
        ]
        self._db.run("create_family", steps, durable=False)

    def get_refresh(self, key: str) -> RefreshRecord | None:
        r = self.t["refresh"]
        stmt = sa.select(r).where(r.c.key == key)
        row = self._db.read("get_refresh", _first(stmt))
        return None if row is None else refresh_from_row(row)

    def spend_refresh(self, key: str, now: float) -> SpendResult:
        r, f = self.t["refresh"], self.t["families"]
        family_alive = sa.exists().where(
            f.c.family_id == r.c.family_id, f.c.expires_at > now
        )
        spend = (
            sa.update(r)
            .where(r.c.key == key, r.c.spent_at.is_(None), family_alive)
            .values(spent_at=now)
            .returning(*r.c)
        )
        lookup = sa.select(r).where(r.c.key == key, family_alive)

        def run(conn: Connection) -> SpendResult:
            row = conn.execute(spend).first()
            if row is not None:
                return SpendResult(SpendStatus.SPENT, refresh_from_row(row))
            row = conn.execute(lookup).first()
            if row is None:
                return SpendResult(SpendStatus.MISSING)
            return SpendResult(SpendStatus.ALREADY_SPENT, refresh_from_row(row))

        return self._db.write("spend_refresh", run, durable=True)

    def add_refresh(self, record: RefreshRecord, now: float) -> bool:
        r, f = self.t["refresh"], self.t["families"]
        values = refresh_values(record)
        source = sa.select(
            *(sa.literal(v, type_=r.c[k].type).label(k) for k, v in values.items())
        ).where(
            sa.exists().where(f.c.family_id == record.family_id, f.c.expires_at > now)
        )
        # RETURNING, not rowcount: drivers need not report the rowcount of an
        # INSERT (psycopg's is gone once SQLAlchemy has closed the cursor).
        stmt = sa.insert(r).from_select(list(values), source).returning(r.c.key)
        added = self._db.write("add_refresh", _first(stmt), durable=False)
        return added is not None

    def get_family(self, family_id: str, user_id: str) -> FamilyRecord | None:
        f = self.t["families"]
        stmt = sa.select(f).where(f.c.family_id == family_id, f.c.user_id == user_id)
        row = self._db.read("get_family", _first(stmt))
        return None if row is None else family_from_row(row)

    def revoke_family(self, family_id: str, user_id: str, until: float) -> None:
        w = self._w
        params = {"b_family_id": family_id, "b_user_id": user_id, "b_until": until}
        # The marker keeps the later deadline if the family was already
        # revoked; all three are scoped to the user (see WriteStatements).
        steps = [(w.mark_revoked, params), (w.delete_family_tokens, params)]
        steps.append((w.delete_family, params))
        self._db.run("revoke_family", steps, durable=True)

    def revoke_user_families(self, user_id: str) -> int:
        f, r = self.t["families"], self.t["refresh"]

        def revoke(conn: Connection) -> int:
            conn.execute(sa.delete(r).where(r.c.user_id == user_id))
            return conn.execute(sa.delete(f).where(f.c.user_id == user_id)).rowcount

        return self._db.write("revoke_user_families", revoke, durable=True)

    def revoke_all_families(self, until: float) -> int:
        f, r, v = self.t["families"], self.t["refresh"], self.t["revoked"]
        insert = self._db.insert(v).from_select(
            ["family_id", "user_id", "drop_at"],
            # WHERE true: SQLite needs it to parse INSERT ... SELECT ... ON CONFLICT.
            sa.select(f.c.family_id, f.c.user_id, sa.literal(until, sa.Float)).where(
                sa.true()
            ),
        )
        mark = insert.on_conflict_do_update(
            index_elements=[v.c.family_id], set_={"drop_at": insert.excluded.drop_at}
        )

        def revoke(conn: Connection) -> int:
            conn.execute(mark)
            conn.execute(sa.delete(r))
            return conn.execute(sa.delete(f)).rowcount

        return self._db.write("revoke_all_families", revoke, durable=True)

    def end_provider_sessions(
        self, iss: str, *, sid: str = "", sub: str = "", until: float
    ) -> int:
        self.check_provider_session(iss, sid, sub)
        return end_provider_sessions(self._db, iss, sid, sub, until)

    # -- throttle and access tokens ---------------------------------------------

    def reserve(self, key: str, limit: int, window: float, now: float) -> Reserved:
        return reserve(self._db, self.t["throttle"], key, limit, window, now)

    def release(self, key: str, ends: float) -> bool:
        return release(self._db, self.t["throttle"], key, ends)

    def access_state(self, user_id: str, family_id: str, now: float) -> AccessState:
        params = {"user_id": user_id, "family_id": family_id, "now": now}
        row = self._db.one("access_state", "access", params)
        assert row is not None  # a SELECT without FROM always has its row
        epoch, revoked = row
        return AccessState(epoch=int(epoch or 0), family_revoked=bool(revoked))


__all__ = ["SQLStore"]
