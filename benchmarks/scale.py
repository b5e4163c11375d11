"""Scale: lookups among a million sessions, purge stalls, bytes per session.

Records are made by Flask-Signoff's own lifecycle (the code that makes them
at sign-in) and written in the store's own row / key layout, in bulk:
``executemany`` for SQLite, ``COPY`` for PostgreSQL, a pipeline for Redis.
A sample is read back through the store and compared field by field, so a
drift between this loader and the store fails the run.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import statistics
import time
import typing as t

from . import inproc
from .contenders import Env, _signoff

if t.TYPE_CHECKING:
    from flask import Flask

    from flask_signoff.core.records import SessionRecord


def make_records(app: Flask, n: int, users: int, start: int = 0) -> list[SessionRecord]:
    lifecycle = app.extensions["signoff"].lifecycle
    out = []
    for i in range(start, start + n):
        _, record = lifecycle._new_record(
            user_id=f"u{i % users}",
            data="",
            remember=False,
            duration=None,
            fresh=True,
            ip="127.0.0.1",
            user_agent="bench/1.0",
        )
        out.append(record)
    return out


# -- bulk loaders: the store's own layout ---------------------------------------


def load_sqlite(app: Flask, records: list[SessionRecord]) -> None:
    from flask_signoff.core.records import SESSION_FIELDS
    from flask_signoff.stores.sql.schema import session_values

    store = app.extensions["signoff"].store
    table = store.t["sessions"].name
    cols = ", ".join(f'"{c}"' for c in SESSION_FIELDS)
    marks = ", ".join("?" for _ in SESSION_FIELDS)
    sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
    raw = store.engine.raw_connection()
    try:
        conn = raw.driver_connection
        for i in range(0, len(records), 50_000):
            rows = [tuple(session_values(r).values()) for r in records[i : i + 50_000]]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
    finally:
        raw.close()


def load_postgres(app: Flask, records: list[SessionRecord]) -> None:
    from flask_signoff.core.records import SESSION_FIELDS
    from flask_signoff.stores.sql.schema import session_values

    store = app.extensions["signoff"].store
    table = store.t["sessions"].name
    cols = ", ".join(f'"{c}"' for c in SESSION_FIELDS)
    raw = store.engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            # The store's statement timeout is for requests, not bulk loads.
            cur.execute("SET LOCAL statement_timeout = 0")
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for r in records:
                    copy.write_row(tuple(session_values(r).values()))
            cur.execute(f"ANALYZE {table}")
        conn.commit()
    finally:
        raw.close()


def load_redis(app: Flask, records: list[SessionRecord]) -> None:
    # What the store's create script does (insert_session in
    # stores/redis/scripts/lib.lua).
    from flask_signoff.core.ids import key_tag
    from flask_signoff.stores.redis.codec import SESSION, expiry_ms
    from flask_signoff.stores.redis.keys import KeyLayout

    store = app.extensions["signoff"].store
    client = store.client
    keys: KeyLayout = store.keys
    for i in range(0, len(records), 5_000):
        pipe = client.pipeline(transaction=False)
        for r in records[i : i + 5_000]:
            base = keys.base(key_tag(r.key))
            skey = keys.session(r.key)
            drop = int(expiry_ms(r.drop_at))
            pipe.hset(skey, items=SESSION.encode(r))
            pipe.pexpireat(skey, drop)
            idx = keys.session_index(base, r.user_id)
            pipe.zadd(idx, {r.key: r.created_at})
            pipe.pexpireat(idx, drop)
            pipe.set(keys.public_link(base, r.public_id, r.user_id), r.key, pxat=drop)
        pipe.execute()


LOADERS = {"sqlite": load_sqlite, "postgres": load_postgres, "redis": load_redis}


def store_size(kind: str, app: Flask, path: str | None) -> int:
    """Bytes the store uses for sessions now."""
    store = app.extensions["signoff"].store
    if kind == "sqlite":
        assert path is not None
        raw = store.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return sum(
            os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)
        )
    if kind == "postgres":
        import sqlalchemy as sa

        with store.engine.connect() as conn:
            name = store.t["sessions"].name
            return int(
                conn.execute(
                    sa.text(f"SELECT pg_total_relation_size('{name}')")
                ).scalar()
            )
    info = store.client.info("memory")
    return int(info["used_memory"])


def verify_sample(app: Flask, records: list[SessionRecord]) -> None:
    store = app.extensions["signoff"].store
    for r in random.Random(1).sample(records, min(50, len(records))):
        got = store.get_session(r.key)
        if got != r:
            raise RuntimeError(
                f"bulk-loaded record reads back differently:\n{got}\n{r}"
            )


def time_lookups(app: Flask, keys: list[str], budget: float) -> dict[str, float]:
    store = app.extensions["signoff"].store
    it = iter(keys * (1 + int(budget * 200_000) // max(1, len(keys))))
    missing = 0

    def one() -> None:
        nonlocal missing
        if store.get_session(next(it)) is None:
            missing += 1

    result = inproc.time_call(one, budget)
    if missing:
        raise RuntimeError(f"{missing} loaded sessions not found")
    return result


def scale_store_url(kind: str, env: Env, size: str) -> tuple[str, str | None]:
    """Where the store of ``size`` (``small`` or ``large``) of ``kind`` is."""
    if kind == "sqlite":
        name = "scale.sqlite3" if size == "large" else "scale-small.sqlite3"
        path = os.path.join(env.workdir, name)
        return "sqlite:///" + path, path
    if kind == "postgres":
        assert env.postgres_url is not None
        name = "scale" if size == "large" else "scale_small"
        return env.postgres_url.rsplit("/", 1)[0] + "/" + name, None
    return env.redis_db(3 if size == "large" else 4), None


# -- concurrent GETs during a purge ---------------------------------------------


def _get_loop(url: str, headers: dict[str, str], stop: t.Any, out: t.Any) -> None:
    import logging

    logging.getLogger("flask_signoff").setLevel(logging.ERROR)
    # Every GET also writes (its touch is due at once): it waits for the
    # purge's write lock wherever the store has one.
    app = _signoff(url, SIGNOFF_TOUCH_INTERVAL=0.001)
    base = inproc.environ("GET", "/me", headers)
    samples: list[tuple[float, float]] = []
    bad = 0

    def start_response(status: str, h: t.Any, exc: t.Any = None) -> None:
        nonlocal bad
        if status[0] != "2":
            bad += 1

    deadline = time.monotonic() + 600
    out.put("ready")
    while not stop.is_set() and time.monotonic() < deadline:
        t0 = time.monotonic()
        result = app(base.copy(), start_response)
        for _ in result:
            pass
        result.close()
        samples.append((t0, time.monotonic() - t0))
    out.put((samples, bad))


def purge_with_concurrent_gets(
    app: Flask,
    url: str,
    headers: dict[str, str],
    keep_key: str,
    time_cap: float,
    vacuum: t.Callable[[str], t.Any] | None = None,
) -> dict[str, float]:
    """Expire every session but ``keep_key``, then purge them in batches while
    another process does authenticated GETs, each of which writes its touch;
    the longest GET is the stall."""
    import sqlalchemy as sa

    store = app.extensions["signoff"].store
    s = store.t["sessions"]
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
        expired = conn.execute(
            sa.update(s).where(s.c.key != keep_key).values(drop_at=1.0)
        ).rowcount
    if vacuum is not None:
        vacuum(s.name)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    out = ctx.Queue()
    proc = ctx.Process(target=_get_loop, args=(url, headers, stop, out))
    proc.start()
    try:
        if out.get(timeout=60) != "ready":
            raise RuntimeError("GET process did not start")
        time.sleep(1.0)  # baseline: GETs with no purge running
        start = time.monotonic()
        purged = batches = 0
        longest_batch = 0.0
        while time.monotonic() - start < time_cap:
            b0 = time.monotonic()
            n = store.purge_expired(time.time())
            longest_batch = max(longest_batch, time.monotonic() - b0)
            if n == 0:
                break
            purged += n
            batches += 1
        end = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
    samples, bad = out.get(timeout=120)
    proc.join(30)
    if bad:
        raise RuntimeError(f"{bad} concurrent GETs failed during the purge")
    before = [d for t0, d in samples if t0 + d < start]
    during = [d for t0, d in samples if t0 < end and t0 + d > start]
    return {
        "expired_rows": expired,
        "purged_rows": purged,
        "batches": batches,
        "purge_s": end - start,
        "longest_batch_ms": longest_batch * 1e3,
        "gets_during": len(during),
        "max_get_ms_before": max(before) * 1e3 if before else math.nan,
        "max_get_ms_during": max(during) * 1e3 if during else math.nan,
        "p99_get_ms_during": (
            statistics.quantiles(during, n=100)[98] * 1e3
            if len(during) >= 100
            else math.nan
        ),
        "median_get_ms_during": statistics.median(during) * 1e3 if during else math.nan,
    }
