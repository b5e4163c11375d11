"""Latency of each store operation on each backend: median and p99.

Runs every operation of the store contract that a request can trigger, N
times each, against real servers started for the run (SQLite file, Redis,
Redis Cluster of 3 masters, PostgreSQL), and prints one markdown table per
backend. Run from the repository root:

    python benchmarks/store_ops.py [--n 2000] [--backends sqlite,redis,cluster,postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.ids import hash_secret, new_secret
from flask_signoff.core.keys import KeySet
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.store import Store
from flask_signoff.core.tokens import TokenLifecycle, TokenPolicy
from flask_signoff.stores import open_store

BACKENDS = ("sqlite", "redis", "cluster", "postgres")


@contextmanager
def store_for(backend: str) -> Iterator[Store]:
    from tests.support.servers import PostgresServer, RedisCluster, RedisServer, running

    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp(prefix='signoff-ops-')}/ops.sqlite3"
        elif backend == "redis":
            server = RedisServer(tempfile.mkdtemp(prefix="signoff-ops-redis-"))
            stack.enter_context(running(server))
            url = server.url
        elif backend == "cluster":
            cluster = RedisCluster(tempfile.mkdtemp(prefix="signoff-ops-cluster-"))
            stack.enter_context(running(cluster))
            url = cluster.url
        else:
            pg = PostgresServer()
            stack.enter_context(running(pg))
            url = pg.url
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()


def measure(n: int, op: Callable[[int], Any]) -> tuple[float, float]:
    """Median and p99 in microseconds of ``op(i)`` for i in range(n)."""
    op(-1)  # warm up: connections, prepared statements, scripts
    samples = []
    for i in range(n):
        start = time.perf_counter()
        op(i)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def run(backend: str, n: int) -> list[tuple[str, float, float]]:
    with store_for(backend) as store:
        clock = FrozenClock()
        sessions = SessionLifecycle(store, SessionPolicy(), clock)
        tokens = TokenLifecycle(
            store,
            KeySet.from_secret_keys([b"benchmark secret key, long enough " * 2]),
            TokenPolicy(issuer="bench", audience="bench"),
            clock,
        )
        made = [sessions.sign_in(f"user{i % 100}") for i in range(n + 1)]
        records = [r for _, r in made]
        secrets = [s for s, _ in made]
        pairs = [tokens.issue(f"user{i % 100}") for i in range(n + 1)]
        results = []

        def row(name: str, op: Callable[[int], Any]) -> None:
            results.append((name, *measure(n, op)))

        row("get_session (hit)", lambda i: store.get_session(records[i].key))
        row(
            "get_session (miss)",
            lambda i: store.get_session(hash_secret(new_secret(store.user_tag("x")))),
        )
        row("touch_session", lambda i: sessions.touch(records[i]))
        row("update_session", lambda i: sessions.save(records[i]))
        row("create_session (sign-in)", lambda i: sessions.sign_in(f"new{i % 50}"))
        row(
            "list_sessions (one user, ~20 sessions)",
            lambda i: sessions.sessions_for("user7"),
        )
        row(
            "access_state (token check)", lambda i: tokens.verify(pairs[i].access_token)
        )
        row(
            "refresh (spend, epoch, family, add)",
            lambda i: tokens.refresh(pairs[i].refresh_token),
        )
        row("bump_epoch", lambda i: store.bump_epoch(f"user{i % 100}"))
        rotated: list[Any] = list(records)

        def rotate(i: int) -> None:
            result = sessions.rotate(rotated[i])
            if result is not None:
                rotated[i] = result[1]

        row("rotate_session", rotate)
        row("delete_session (sign-out)", lambda i: sessions.end(rotated[i].key))
        del secrets
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    for backend in args.backends.split(","):
        print(f"\n### {backend} ({args.n} calls each)\n")
        print("| operation | median µs | p99 µs |")
        print("|---|---:|---:|")
        for name, median, p99 in run(backend, args.n):
            print(f"| {name} | {median:.0f} | {p99:.0f} |")


if __name__ == "__main__":
    main()
