"""The store backends a test runs on: SQLite, Redis, a Redis Cluster, PostgreSQL.

The ``backend`` fixture (``tests/conftest.py``) runs a test once per name in
:data:`BACKENDS` and gives it a :class:`Backend`: a namespace of the test's
own (a new SQLite file, a new table prefix on PostgreSQL, a new key prefix on
Redis), so tests never see each other's data while the servers are started
only once per session. A test asks for it in one of two ways:

- a store: ``backend.store`` (opened on first use, closed after the test),
  or the ``store`` fixture, which is the same;
- an app: ``backend.config``, the ``SIGNOFF_*`` keys that put an app's store
  on that backend and namespace (empty on SQLite: the app's default,
  ``signoff.sqlite3`` in its instance folder, which is ``backend.url``).

Tests on a backend other than SQLite are marked ``slow`` by themselves
(``tests/conftest.py``), since they need a server.

The counting helpers read what a backend holds directly (SQL, Redis
commands), not through the store, whose own reads skip what is expired.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_signoff.core.store import Store
from flask_signoff.extension import get_state
from flask_signoff.stores import open_store
from tests.support.servers import PostgresServer, RedisCluster, RedisServer, free_port

BACKENDS = ["sqlite", "redis", "redis_cluster", "postgres"]

#: The session-wide server fixture (``tests/conftest.py``) each backend needs.
SERVER_FIXTURES = {
    "redis": "redis_server",
    "redis_cluster": "redis_cluster",
    "postgres": "postgres_server",
}
#: The backends that need a server: a test on one of them is ``slow``.
SERVER_BACKENDS = frozenset(SERVER_FIXTURES)

_counter = itertools.count()


class Backend:
    """A store backend under test, in a namespace of its own.

    :param name: one of :data:`BACKENDS`.
    :param instance: the instance folder of an app on this backend; on
        SQLite the store is ``signoff.sqlite3`` in it.
    :param server: the running server (``None`` for SQLite).
    """

    def __init__(
        self,
        name: str,
        instance: Path,
        server: RedisServer | RedisCluster | PostgresServer | None = None,
    ) -> None:
        n = next(_counter)
        self.name = name
        self.server = server
        #: What :func:`open_store` takes, e.g. for another process.
        self.options: dict[str, object] = {}
        #: ``SIGNOFF_*`` keys that put an app's store here.
        self.config: dict[str, Any] = {}
        self._opened: list[Store] = []
        if name == "sqlite":
            self.path = instance / "signoff.sqlite3"
            self.url = f"sqlite:///{self.path}"
            # Named, as in testing mode the default is a temporary file.
            self.config = {"SIGNOFF_STORE_URL": self.url}
        elif name == "postgres":
            assert isinstance(server, PostgresServer)
            self.url = server.url
            self.table_prefix = f"t{n}_"
            self.options = {"table_prefix": self.table_prefix}
            self.config = {
                "SIGNOFF_STORE_URL": self.url,
                "SIGNOFF_TABLE_PREFIX": self.table_prefix,
            }
        else:
            assert isinstance(server, (RedisServer, RedisCluster))
            self.url = server.url
            self.key_prefix = f"t{n}:"
            self.options = {"key_prefix": self.key_prefix}
            self.config = {
                "SIGNOFF_STORE_URL": self.url,
                "SIGNOFF_KEY_PREFIX": self.key_prefix,
            }

    @functools.cached_property
    def store(self) -> Store:
        """The store of this namespace, opened on first use."""
        if self.name == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        store = open_store(self.url, self.options)
        self._opened.append(store)
        return store

    def reopen(self) -> Store:
        """Another store on the same namespace (as another worker would)."""
        self.store  # noqa: B018 (the first one creates the folder)
        another = open_store(self.url, self.options)
        self._opened.append(another)
        return another

    def close(self) -> None:
        for store in self._opened:
            store.close()

    def dump(self) -> bytes:
        """Every record the backend holds for this namespace, as text."""
        if self.name == "sqlite":
            rows = [
                row
                for table in sqlite_tables(self.path)
                for row in sqlite_query(self.path, f'SELECT * FROM "{table}"')  # noqa: S608
            ]
            return repr(rows).encode()
        if self.name == "postgres":
            return _postgres_dump(self.server, self.table_prefix)
        return _redis_dump(self.url, self.key_prefix)

    def raw(self) -> bytes:
        """Everything the backend wrote, as it lies on disk where we can see it
        (SQLite's files, freed pages included); else the same as :meth:`dump`.
        """
        if self.name != "sqlite":
            return self.dump()
        return b"".join(
            p.read_bytes()
            for p in self.path.parent.iterdir()
            if p.name.startswith(self.path.name)
        )

    def outage(self) -> contextlib.AbstractContextManager[Store]:
        """A context yielding a store of this kind that cannot reach its server."""
        if self.name == "sqlite":
            return locked_sqlite(self.path.parent / "locked.sqlite3")
        if self.name == "postgres":
            return _closing(f"postgresql://nobody@127.0.0.1:{free_port()}/signoff")
        scheme = "redis+cluster" if self.name == "redis_cluster" else "redis"
        return _closing(f"{scheme}://127.0.0.1:{free_port()}")


def open_backend(
    name: str, instance: Path, request: pytest.FixtureRequest
) -> Iterator[Backend]:
    """The ``backend`` fixture's body: start what ``name`` needs, close after."""
    server = None
    if name in SERVER_FIXTURES:
        server = request.getfixturevalue(SERVER_FIXTURES[name])
    backend = Backend(name, instance, server)
    try:
        yield backend
    finally:
        backend.close()


# -- reading a backend directly ---------------------------------------------------


def sqlite_query(path: str | os.PathLike[str], sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the SQLite file ``path`` (none if no file)."""
    if not os.path.exists(path):
        return []  # connecting would create it
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def sqlite_tables(path: str | os.PathLike[str]) -> list[str]:
    query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return [name for (name,) in sqlite_query(path, query)]


def count_rows(path: str | os.PathLike[str], table: str = "signoff_sessions") -> int:
    """Rows in ``table`` of the SQLite file ``path`` (all of them, any state).

    The store creates its tables on the first write, so no file or no table
    means that nothing was ever written.
    """
    if table not in sqlite_tables(path):
        return 0
    return int(sqlite_query(path, f'SELECT count(*) FROM "{table}"')[0][0])  # noqa: S608


def redis_client(url: str) -> Any:
    """A client of our own for a store URL (``redis://``, ``redis+cluster://``)."""
    import redis
    from redis.cluster import RedisCluster as Cluster

    scheme, _, rest = url.partition("://")
    if scheme == "redis+cluster":
        return Cluster.from_url(f"redis://{rest}", decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


def redis_keys(client: Any, pattern: str) -> list[str]:
    """Every key matching ``pattern``; on a cluster, on every primary."""
    from redis.cluster import RedisCluster as Cluster

    if isinstance(client, Cluster):
        found = client.scan_iter(match=pattern, target_nodes=Cluster.PRIMARIES)
    else:
        found = client.scan_iter(match=pattern)
    return [str(k) for k in found]


def store_of(app: Flask) -> tuple[str, dict[str, str]]:
    """The store URL of ``app`` (as ``init_app`` chose it) and its namespace."""
    url = get_state(app).settings.store_url
    prefixes = {
        "table_prefix": app.config["SIGNOFF_TABLE_PREFIX"],
        "key_prefix": app.config["SIGNOFF_KEY_PREFIX"],
    }
    return url, prefixes


def count_sessions(app: Flask) -> int:
    """Session records in the app's store, in any state, read from the backend.

    Read directly rather than through the store's own reads, which skip what
    is expired: any record at all counts.
    """
    url, prefixes = store_of(app)
    scheme = url.partition("://")[0]
    table = f"{prefixes['table_prefix']}sessions"
    if scheme == "sqlite":
        return count_rows(url.removeprefix("sqlite:///"), table)
    if scheme.startswith("postgres"):
        import psycopg

        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if found is None or found[0] is None:
                return 0
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608
            return int(count[0]) if count else 0
    # Every session hash is `<prefix>{<tag>}:s:<key>`; on a cluster, on any node.
    client = redis_client(url)
    try:
        return len(redis_keys(client, f"{prefixes['key_prefix']}*:s:*"))
    finally:
        client.close()


def forget_expired(app: Flask) -> None:
    """Make the app's store forget every session past its ``drop_at``.

    What happens on its own, some time after the deadline: SQL stores drop
    such rows with ``flask signoff purge``; Redis expires the session hash on
    its own clock, leaving the user's index entry and the public-id link to
    expire or be cleaned later. A frozen clock runs ahead of Redis's, so this
    does by hand what Redis would do once real time caught up.
    """
    url, prefixes = store_of(app)
    if not url.startswith("redis"):
        app.test_cli_runner().invoke(args=["signoff", "purge"], catch_exceptions=False)
        return
    now = get_state(app).clock()
    client = redis_client(url)
    try:
        for name in redis_keys(client, f"{prefixes['key_prefix']}*:s:*"):
            drop_at = client.hget(name, "drop_at")
            if drop_at is not None and float(drop_at) <= now:
                client.delete(name)
    finally:
        client.close()


def _postgres_dump(server: Any, table_prefix: str) -> bytes:
    like = f"'{table_prefix}%'"
    query = f"SELECT tablename FROM pg_tables WHERE tablename LIKE {like}"  # noqa: S608
    rows = server.execute(query, server.dbname)
    out = []
    for (table,) in rows:
        out += server.execute(f'SELECT t::text FROM "{table}" t', server.dbname)  # noqa: S608
    return repr(out).encode()


def _redis_dump(url: str, prefix: str) -> bytes:
    client = redis_client(url)
    out: list[str] = []
    try:
        for name in sorted(redis_keys(client, f"{prefix}*")):
            kind = client.type(name)
            out.append(f"{name} {kind}")
            if kind == "hash":
                out.append(repr(client.hgetall(name)))
            elif kind == "string":
                out.append(repr(client.get(name)))
            elif kind == "zset":
                out.append(repr(client.zrange(name, 0, -1, withscores=True)))
            elif kind == "set":
                out.append(repr(sorted(client.smembers(name))))
    finally:
        client.close()
    return "\n".join(out).encode()


@contextlib.contextmanager
def _closing(url: str) -> Iterator[Store]:
    store = open_store(url, {"timeout": 1.0})
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def locked_sqlite(path: Path) -> Iterator[Store]:
    """A SQLite store at ``path`` whose file another connection holds under
    an exclusive lock: SQLite has no server to lose, so a database locked
    past the busy timeout (0.3 s here) is its outage."""
    dead = open_store(f"sqlite:///{path}", {"timeout": 0.3})
    dead.get_epoch("warm-up")  # create the schema before the lock
    dead.close()  # an exclusive lock waits for every open connection
    locker = sqlite3.connect(path, isolation_level=None)
    # In WAL mode only an exclusive locking mode keeps readers out too.
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute('DELETE FROM "signoff_epochs"')
    try:
        yield dead
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        dead.close()
