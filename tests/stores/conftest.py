"""The ``backend`` fixture: one store per test, on every real backend.

Each test gets a fresh namespace (a new SQLite file, a new table prefix on
PostgreSQL, a new key prefix on Redis), so tests never see each other's data
while the servers are started only once per session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flask_signoff.core.store import Store
from flask_signoff.stores import open_store
from tests.support.servers import PostgresServer, RedisCluster, RedisServer, free_port

BACKENDS = ["sqlite", "redis", "redis_cluster", "postgres"]

_counter = itertools.count()


@dataclasses.dataclass
class Backend:
    """A store under test, with a way to read everything it wrote."""

    name: str
    store: Store
    #: Every record the backend holds for this store, as text.
    dump: Callable[[], bytes]
    #: Everything the backend wrote, as it lies on disk where we can see it
    #: (SQLite's files, freed pages included); else the same as ``dump``.
    raw: Callable[[], bytes]
    #: A context yielding a store of this kind that cannot reach its server.
    outage: Callable[[], contextlib.AbstractContextManager[Store]]
    #: Make another store on the same namespace (as another worker would).
    reopen: Callable[[], Store]
    #: What ``reopen`` passes to :func:`open_store` (for another process).
    url: str = ""
    options: dict[str, object] = dataclasses.field(default_factory=dict)


def _redis_dump(store: Store, prefix: str) -> bytes:
    from flask_signoff.stores.redis import RedisStore

    assert isinstance(store, RedisStore)
    client = store.client
    out: list[str] = []
    for name in sorted(str(k) for k in client.scan_iter(match=f"{prefix}*")):
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
    return "\n".join(out).encode()


@contextlib.contextmanager
def _closing(url: str) -> Iterator[Store]:
    store = open_store(url, {"timeout": 1.0})
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name: str = request.param
    n = next(_counter)
    if name == "sqlite":
        path = tmp_path / "signoff.sqlite3"
        url = f"sqlite:///{path}"

        def raw() -> bytes:
            return b"".join(
                p.read_bytes()
                for p in tmp_path.iterdir()
                if p.name.startswith(path.name)
            )

        def dump() -> bytes:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                tables = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
                rows = [
                    row
                    for (table,) in tables
                    for row in conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608
                ]
            return repr(rows).encode()

        @contextlib.contextmanager
        def outage() -> Iterator[Store]:
            # SQLite has no server to lose: a database locked past the busy
            # timeout is its outage.
            dead = open_store(
                f"sqlite:///{tmp_path / 'locked.sqlite3'}", {"timeout": 0.3}
            )
            dead.get_epoch("warm-up")  # create the schema before the lock
            dead.close()  # an exclusive lock waits for every open connection
            locker = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None)
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

        options: dict[str, object] = {}
    elif name == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.url
        table_prefix = f"t{n}_"
        options = {"table_prefix": table_prefix}

        def dump() -> bytes:
            like = f"'{table_prefix}%'"
            query = f"SELECT tablename FROM pg_tables WHERE tablename LIKE {like}"  # noqa: S608
            rows = server.execute(query, server.dbname)
            out = []
            for (table,) in rows:
                out += server.execute(f'SELECT t::text FROM "{table}" t', server.dbname)  # noqa: S608
            return repr(out).encode()

        def outage() -> contextlib.AbstractContextManager[Store]:
            dead_url = f"postgresql://nobody@127.0.0.1:{free_port()}/signoff"
            return _closing(dead_url)

    else:
        server_: RedisServer | RedisCluster = request.getfixturevalue(
            "redis_server" if name == "redis" else "redis_cluster"
        )
        url = server_.url
        key_prefix = f"t{n}:"
        options = {"key_prefix": key_prefix}

        def dump() -> bytes:
            return _redis_dump(store, key_prefix)

        def outage() -> contextlib.AbstractContextManager[Store]:
            scheme = "redis+cluster" if name == "redis_cluster" else "redis"
            return _closing(f"{scheme}://127.0.0.1:{free_port()}")

    store = open_store(url, options)
    opened = [store]

    def reopen() -> Store:
        another = open_store(url, options)
        opened.append(another)
        return another

    try:
        yield Backend(
            name,
            store,
            dump,
            raw if name == "sqlite" else dump,
            outage,
            reopen,
            url=url,
            options=options,
        )
    finally:
        for s in opened:
            s.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store
