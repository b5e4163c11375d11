"""Authenticated ``GET /me`` of one contender in a loop, to profile it.

Starts the servers the contender needs (as ``run.py`` does), signs in, and
calls the WSGI app for ``--seconds``. Run it under a sampling profiler::

    py-spy record -o get.svg -- python -m benchmarks.profile_get signoff_redis

or, where py-spy cannot attach, with ``--cprofile FILE`` (a ``pstats``
dump). The flame graphs of the read path are kept in
``benchmarks/profiles/``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time

from benchmarks import inproc
from benchmarks.contenders import BY_NAME, Env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contender", choices=sorted(BY_NAME))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cprofile", metavar="FILE", help="write a pstats dump")
    args = parser.parse_args(argv)
    logging.getLogger("flask_signoff").setLevel(logging.ERROR)
    contender = BY_NAME[args.contender]

    from benchmarks.run import servers

    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="signoff-profile-") as workdir,
        servers(
            workdir,
            "redis" in contender.needs_servers,
            "postgres" in contender.needs_servers,
            notes,
        ) as found,
    ):
        env = Env(
            workdir=workdir,
            redis_url=found["redis"].url if "redis" in found else None,
            postgres_url=found["postgres"].url if "postgres" in found else None,
        )
        why = contender.missing(env)
        if why:
            raise SystemExit(f"{contender.label}: {why} ({'; '.join(notes)})")
        app = contender.build(env)
        headers = inproc.sign_in(app, contender.credential)
        inproc.check_get(app, headers)
        inproc.time_get(app, headers, 0.5)  # warm up outside the profile
        profiler = None
        if args.cprofile:
            import cProfile

            profiler = cProfile.Profile()
        with profiler if profiler is not None else contextlib.nullcontext():
            t0 = time.perf_counter()
            result = inproc.time_get(app, headers, args.seconds)
        if profiler is not None:
            profiler.dump_stats(args.cprofile)
        print(
            f"{contender.label}: {result['ops']:,.0f} ops/s, {result['us']:.1f} µs/op"
            f" over {time.perf_counter() - t0:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
