"""The tables of the SQL store, their race-safe creation, and records as rows.

Every table name starts with the store's prefix (``signoff_`` by default),
so several apps can share one database. The columns of ``sessions``,
``families`` and ``refresh_tokens`` are the fields of
:class:`~flask_signoff.core.records.SessionRecord`,
:class:`~flask_signoff.core.records.FamilyRecord` and
:class:`~flask_signoff.core.records.RefreshRecord`, by the same names and in
the same order: rows convert to records by position, records to rows
through :data:`~flask_signoff.core.records.SESSION_FIELDS` and its
siblings, so a field added to a record needs a column here, in its place,
and nothing else.

The ``meta`` table keeps values of the store itself, one row each: the
routing key of :meth:`~flask_signoff.core.store.Store.user_tag`.

Creation is race-safe: several workers starting on one empty database all
come up (see :meth:`Schema.create`). Columns added after the first release
(:data:`ADDED_COLUMNS`) are added to an older database by the same set-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ...core.records import (
    FAMILY_FIELDS,
    REFRESH_FIELDS,
    SESSION_FIELDS,
    FamilyRecord,
    RefreshRecord,
    SessionRecord,
)
from .lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy import exc
    from sqlalchemy.engine import Connection
else:
    sa = LazyModule("sqlalchemy")
    exc = LazyModule("sqlalchemy.exc")

#: The columns of the provider session a record came from (OpenID Connect).
_OIDC_COLUMNS = ("oidc_iss", "oidc_sid", "oidc_sub")

#: Columns added after the first release, by table, in the order of their
#: fields: :meth:`Schema.create` adds them to a database made before.
ADDED_COLUMNS = {
    "sessions": ("auth_stamp", *_OIDC_COLUMNS, "oidc_id_token"),
    "families": ("auth_stamp", *_OIDC_COLUMNS),
}

#: Indexes added after the first release, by table: :meth:`Schema.create`
#: adds those that a database made before lacks.
ADDED_INDEXES = {
    "sessions": ("ix_{prefix}sessions_oidc_sid", "ix_{prefix}sessions_oidc_sub"),
    "families": ("ix_{prefix}families_oidc_sid", "ix_{prefix}families_oidc_sub"),
}


def _oidc_columns(table: str, prefix: str) -> list[Any]:
    """The provider-session columns and their two indexes.

    With server defaults, as ``auth_stamp``: rows written by an older version
    belong to no provider session. The indexes serve a back-channel logout,
    which finds records by ``(iss, sid)`` or ``(iss, sub)``.
    """
    return [
        sa.Column("oidc_iss", sa.String(255), nullable=False, server_default=""),
        sa.Column("oidc_sid", sa.String(255), nullable=False, server_default=""),
        sa.Column("oidc_sub", sa.String(255), nullable=False, server_default=""),
        sa.Index(f"ix_{prefix}{table}_oidc_sid", "oidc_iss", "oidc_sid"),
        sa.Index(f"ix_{prefix}{table}_oidc_sub", "oidc_iss", "oidc_sub"),
    ]


def _tables(prefix: str) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData()
    sessions = sa.Table(
        f"{prefix}sessions",
        md,
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("tag", sa.String(16), nullable=False),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("drop_at", sa.Float, nullable=False),
        sa.Column("remember", sa.Boolean, nullable=False),
        sa.Column("fresh_until", sa.Float, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        # Last, and with a server default: rows written by an older version
        # (during a rolling upgrade) get "", which binds to no stamp.
        sa.Column("auth_stamp", sa.String(64), nullable=False, server_default=""),
        *_oidc_columns("sessions", prefix),
        sa.Column("oidc_id_token", sa.Text, nullable=False, server_default=""),
        sa.Index(f"ix_{prefix}sessions_user", "user_id", "created_at"),
        sa.Index(f"ix_{prefix}sessions_public", "public_id"),
        sa.Index(f"ix_{prefix}sessions_drop", "drop_at"),
    )
    epochs = sa.Table(
        f"{prefix}epochs",
        md,
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("epoch", sa.Integer, nullable=False),
    )
    families = sa.Table(
        f"{prefix}families",
        md,
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("auth_stamp", sa.String(64), nullable=False, server_default=""),
        *_oidc_columns("families", prefix),
    )
    refresh = sa.Table(
        f"{prefix}refresh_tokens",
        md,
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("issued_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("spent_at", sa.Float, nullable=True),
    )
    revoked = sa.Table(
        f"{prefix}revoked_families",
        md,
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("drop_at", sa.Float, nullable=False, index=True),
    )
    # Values of the store itself (the routing key), one row each.
    meta = sa.Table(
        f"{prefix}meta",
        md,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    throttle = sa.Table(
        f"{prefix}throttle",
        md,
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
    )
    return md, {
        "throttle": throttle,
        "sessions": sessions,
        "epochs": epochs,
        "families": families,
        "refresh": refresh,
        "revoked": revoked,
        "meta": meta,
    }


class Schema:
    """The tables of one store, named with ``prefix``.

    :param prefix: prefix of every table name.
    """

    def __init__(self, prefix: str) -> None:
        #: Prefix of every table name.
        self.prefix = prefix
        metadata, tables = _tables(prefix)
        #: The :class:`sqlalchemy.MetaData` holding every table.
        self.metadata = metadata
        #: The tables by short name: ``sessions``, ``epochs``, ``families``,
        #: ``refresh``, ``revoked``, ``meta``, ``throttle``.
        self.tables = tables

    def create(
        self,
        begin: Callable[[], AbstractContextManager[Connection]],
        lock: Callable[[Connection], None],
    ) -> None:
        """Create the tables that are missing and add :data:`ADDED_COLUMNS`.

        The check and the ``CREATE`` run in one write transaction, opened by
        ``begin()``, that only one worker at a time can hold: ``BEGIN
        IMMEDIATE`` on SQLite, and on PostgreSQL (whose DDL is
        transactional) the advisory lock that ``lock(conn)`` takes. The
        others wait, then find the tables made.
        """
        for attempt in range(5):
            try:
                with begin() as conn:
                    lock(conn)
                    self.metadata.create_all(conn, checkfirst=True)
                    self._add_missing_columns(conn)
                    self._add_missing_indexes(conn)
                return
            except (exc.ProgrammingError, exc.IntegrityError):
                # A worker that does not take our lock (an older version, a
                # migration tool) created a table between our check and our
                # CREATE; look again. Outages (OperationalError) are not
                # retried: they must surface quickly as StoreUnavailable.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _add_missing_columns(self, conn: Connection) -> None:
        """Add the columns of :data:`ADDED_COLUMNS` that a table lacks.

        Runs in :meth:`create`'s transaction, which holds the schema lock:
        the check and the ``ALTER`` see one state, and no other worker can
        add the column in between. ``ADD COLUMN`` with a constant default
        keeps every row and, on both databases, rewrites none of them.
        """
        inspector = sa.inspect(conn)
        for name, columns in ADDED_COLUMNS.items():
            table = self.tables[name]
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column_name in columns:
                if column_name in present:
                    continue
                column = table.c[column_name]
                ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
                exists = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
                table_name = conn.dialect.identifier_preparer.format_table(table)
                conn.exec_driver_sql(
                    f"ALTER TABLE {table_name} ADD COLUMN {exists}{ddl}"
                )

    def _add_missing_indexes(self, conn: Connection) -> None:
        """Create the indexes of :data:`ADDED_INDEXES` that a table lacks.

        In :meth:`create`'s transaction, after the columns they cover were
        added; under the schema lock, like them.
        """
        inspector = sa.inspect(conn)
        for name, patterns in ADDED_INDEXES.items():
            table = self.tables[name]
            present = {i["name"] for i in inspector.get_indexes(table.name)}
            for pattern in patterns:
                index_name = pattern.format(prefix=self.prefix)
                if index_name in present:
                    continue
                (index,) = (i for i in table.indexes if i.name == index_name)
                index.create(conn, checkfirst=True)

    def expiring(self) -> list[tuple[sa.Table, sa.Column[Any], sa.Column[Any]]]:
        """Each table whose rows expire: the table, its key, and the column
        of the time after which a row may be dropped."""
        t = self.tables
        return [
            (t["sessions"], t["sessions"].c.key, t["sessions"].c.drop_at),
            (t["refresh"], t["refresh"].c.key, t["refresh"].c.expires_at),
            (t["families"], t["families"].c.family_id, t["families"].c.expires_at),
            (t["revoked"], t["revoked"].c.family_id, t["revoked"].c.drop_at),
            (t["throttle"], t["throttle"].c.key, t["throttle"].c.expires_at),
        ]

    def missing(self, conn: Connection) -> list[str]:
        """The names of the tables that the database lacks."""
        present = set(sa.inspect(conn).get_table_names())
        return [name for name in self.metadata.tables if name not in present]


# -- records as rows ---------------------------------------------------------
#
# A row converts to its record by position, the cheapest way on the reads of
# every request: the columns of sessions, families and refresh_tokens are
# the fields of their records, in the same order (tests/stores/test_sql.py
# checks it), so ``SELECT`` of the whole table reads them in field order.


def session_from_row(row: Sequence[Any]) -> SessionRecord:
    """A row of :data:`SESSION_FIELDS` columns, in that order."""
    record = SessionRecord(*row)
    # The fast SQLite read returns the stored integer, not a bool.
    record.remember = bool(record.remember)
    return record


def session_values(record: SessionRecord) -> dict[str, Any]:
    """The sessions row of ``record``, by column."""
    return {name: getattr(record, name) for name in SESSION_FIELDS}


def family_from_row(row: Sequence[Any]) -> FamilyRecord:
    """A row of :data:`FAMILY_FIELDS` columns, in that order."""
    return FamilyRecord(*row)


def family_values(record: FamilyRecord) -> dict[str, Any]:
    """The families row of ``record``, by column."""
    return {name: getattr(record, name) for name in FAMILY_FIELDS}


def refresh_from_row(row: Sequence[Any]) -> RefreshRecord:
    """A row of :data:`REFRESH_FIELDS` columns, in that order."""
    return RefreshRecord(*row)


def refresh_values(record: RefreshRecord) -> dict[str, Any]:
    """The refresh_tokens row of ``record``, by column."""
    return {name: getattr(record, name) for name in REFRESH_FIELDS}
