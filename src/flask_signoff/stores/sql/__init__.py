"""The SQL store (SQLAlchemy 2 Core): SQLite, the embedded default, and PostgreSQL.

One code path serves both dialects. The atomic operations are single
conditional statements or short transactions:

- conditional save: ``UPDATE ... WHERE key = :key`` (never an upsert), so a
  save racing a sign-out finds no row and writes nothing;
- rotation: ``DELETE`` of the old key then ``INSERT`` of the new one in one
  transaction, the insert only if the delete found the row (when required);
- a user's sessions are inserted and deleted (sign-in, rotation, sign-out
  everywhere, revocation by public id) under one per-user lock: ``BEGIN
  IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL.
  Without it a rotation committing while a sign-out everywhere runs on
  PostgreSQL would leave the new row alive: the ``DELETE`` waits for the old
  row's lock, then finds it gone, and never sees the row inserted after its
  snapshot;
- spending a refresh token: ``UPDATE ... SET spent_at WHERE spent_at IS NULL``
  (compare-and-set), and its family must still exist;
- epochs: ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``.

Only revocations wait for the disk: every write says whether it must
survive a power cut once answered (sign-outs, revocations, spent refresh
tokens, epoch bumps) or only a crash of the process (sign-ins, touches,
tokens issued, throttle counts, the purge); see :mod:`.store` and
:mod:`.sqlite`.

On SQLite every transaction that may write starts with ``BEGIN IMMEDIATE``:
a deferred read that later upgrades to a write fails with "database is
locked" whatever the busy timeout. The database runs in WAL mode, so readers
never wait for writers. Expired rows are dropped by
:meth:`SQLStore.purge_expired` in small batches, each its own short
transaction.

Schema creation is race-safe: several workers starting on one empty database
all come up (a losing ``CREATE TABLE`` is retried against the winner's table).

The routing key of :meth:`~flask_signoff.core.store.Store.user_tag` is the
row ``routing_key`` of the ``meta`` table. A worker that finds none inserts
one with ``INSERT ... ON CONFLICT DO NOTHING`` and reads it back in the same
transaction: whichever insert wins, every worker reads the winner's key. A
SQL store does not route by tag; the key exists so that credentials carry
the same kind of tag on every backend, none of them computable from the user
id.

The package
-----------

:class:`SQLStore` is its whole public face. The modules, in the order a call
meets them:

.. code-block:: text

    store.py       SQLStore: the store contract; each method says what to
                   run, in a read or in a write transaction
    database.py    the engine of one store, and the one read wrapper and the
                   one write wrapper every call goes through (schema on
                   first use, dead-connection retry, error translation)
    fast.py        the two reads of every request (the session, the access
                   token check) as one compiled statement on the driver: a
                   connection per thread on SQLite, prepared on psycopg
    writes.py      the writes of sign-in, sign-out and touches, built once;
                   on SQLite's own driver run straight on a pooled
                   connection, in one BEGIN IMMEDIATE transaction
    schema.py      the tables (prefixed), race-safe creation, columns added
                   by later versions, the meta table; records <-> rows
    sqlite.py      SQLite engine set-up: a 0600 file, WAL, synchronous
                   FULL or NORMAL per transaction, BEGIN IMMEDIATE for
                   transactions that may write
    postgresql.py  PostgreSQL engine set-up: connect, statement and lock
                   timeouts; synchronous_commit per transaction; advisory
                   locks (per user, schema creation)
    watchdog.py    the thread that ends calls to a PostgreSQL server that
                   stopped answering
    stats.py       the counts of `flask signoff stats`, in one read
    throttle.py    the throttle's windows: reserve and release, one
                   statement each
    lazy.py        SQLAlchemy imported on first use, so a worker serving
                   SQLite cookie requests never loads it
    errors.py      database errors -> StoreError / StoreUnavailable, in one
                   place
    provider.py    ending what came from one OpenID Connect provider
                   session (back-channel logout)

Nothing here imports Flask. SQLAlchemy and the drivers (the standard
``sqlite3``, psycopg 3) are loaded when first needed, so SQLite apps never
need psycopg.
"""

from __future__ import annotations

from .store import SQLStore as SQLStore

__all__ = ["SQLStore"]
