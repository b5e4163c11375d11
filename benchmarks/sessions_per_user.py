"""How sign-in and listing behave when one user has many sessions.

A script that signs in in a loop must not make sign-in or the session list
slow. This signs one user in N times (default 10,000) and reports the median
sign-in time of the first and last 500, and the median time of listing the
user's sessions at the end, with the default cap (100 per user) and with no
cap. Run from the repository root:

    python benchmarks/sessions_per_user.py [--n 10000] [--backend sqlite|redis]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.store import Store
from flask_signoff.stores import open_store


@contextmanager
def store_for(backend: str) -> Iterator[Store]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="signoff-bench-")
        store = open_store(f"sqlite:///{folder}/bench.sqlite3")
        yield store
        store.close()
        return
    from tests.support.servers import RedisServer, running

    server = RedisServer(tempfile.mkdtemp(prefix="signoff-bench-redis-"))
    with running(server):
        store = open_store(server.url)
        yield store
        store.close()


def run(backend: str, n: int, cap: int | None) -> dict[str, float]:
    with store_for(backend) as store:
        clock = FrozenClock()
        lc = SessionLifecycle(store, SessionPolicy(max_sessions_per_user=cap), clock)
        times = []
        for _ in range(n):
            clock.advance(0.001)
            start = time.perf_counter()
            lc.sign_in("looping-user", user_agent="bench")
            times.append(time.perf_counter() - start)
        listing = []
        for _ in range(20):
            start = time.perf_counter()
            count = len(lc.sessions_for("looping-user"))
            listing.append(time.perf_counter() - start)
    return {
        "first_500_ms": statistics.median(times[:500]) * 1000,
        "last_500_ms": statistics.median(times[-500:]) * 1000,
        "list_ms": statistics.median(listing) * 1000,
        "listed": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    args = parser.parse_args()
    print(f"{args.n} sign-ins of one user, {args.backend}")
    print("| cap | sign-in, first 500 (ms) | last 500 (ms) | list (ms) | listed |")
    print("|---|---|---|---|---|")
    for cap in (100, None):
        r = run(args.backend, args.n, cap)
        print(
            f"| {cap or 'none'} | {r['first_500_ms']:.3f} | {r['last_500_ms']:.3f}"
            f" | {r['list_ms']:.3f} | {r['listed']:.0f} |"
        )


if __name__ == "__main__":
    main()
