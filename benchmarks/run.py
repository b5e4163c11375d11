"""Flask-Signoff side by side with its peers. One command:

    python benchmarks/run.py            # full run, < 15 min
    python benchmarks/run.py --quick    # smoke run, < 2 min, asserts no speed

Without ``--no-venv`` it makes ``benchmarks/.venv`` (peers from
``benchmarks/requirements.txt`` plus this project, editable) and re-runs
itself there. With ``--no-venv`` it runs in the current interpreter and
skips, with a note, every peer that is not installed. It starts its own
Redis and PostgreSQL on free 127.0.0.1 ports (as the test suite does) and
writes ``benchmarks/results/latest.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv")


# -- the virtualenv ----------------------------------------------------------------


def _venv_python() -> str:
    return os.path.join(VENV, "bin", "python")


def ensure_venv() -> str:
    """Create or update benchmarks/.venv; return its interpreter."""
    stamp_src = b""
    for name in (
        os.path.join(HERE, "requirements.txt"),
        os.path.join(ROOT, "pyproject.toml"),
    ):
        with open(name, "rb") as f:
            stamp_src += f.read()
    stamp = hashlib.sha256(stamp_src).hexdigest()
    stamp_file = os.path.join(VENV, ".bench-stamp")
    python = _venv_python()
    if os.path.exists(stamp_file) and os.path.exists(python):
        with open(stamp_file) as f:
            if f.read().strip() == stamp:
                return python
    print(f"== setting up {os.path.relpath(VENV, ROOT)}", flush=True)
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True, timeout=300)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=600)
    subprocess.run(
        [*pip, "-r", os.path.join(HERE, "requirements.txt")], check=True, timeout=1200
    )
    subprocess.run([*pip, "-e", f"{ROOT}[redis,postgres]"], check=True, timeout=1200)
    with open(stamp_file, "w") as f:
        f.write(stamp)
    return python


# -- servers --------------------------------------------------------------------


@contextlib.contextmanager
def servers(
    workdir: str, want_redis: bool, want_pg: bool, notes: list[str]
) -> t.Iterator[dict[str, t.Any]]:
    """Start Redis and PostgreSQL with the test suite's helpers."""
    found: dict[str, t.Any] = {}
    with contextlib.ExitStack() as stack:
        try:
            from tests.support.servers import (
                PostgresServer,
                RedisServer,
                ServerMissing,
                running,
            )
        except ImportError as e:
            notes.append(f"no servers: cannot import tests.support.servers ({e})")
            yield found
            return
        if want_redis:
            try:
                redis_dir = os.path.join(workdir, "redis")
                os.makedirs(redis_dir)
                server = RedisServer(redis_dir)
                stack.enter_context(running(server))
                found["redis"] = server
            except (ServerMissing, RuntimeError, OSError) as e:
                notes.append(f"Redis contenders skipped: {e}")
        if want_pg:
            try:
                pg = PostgresServer()
                stack.enter_context(running(pg))
                found["postgres"] = pg
            except (
                ServerMissing,
                RuntimeError,
                OSError,
                subprocess.SubprocessError,
            ) as e:
                notes.append(f"PostgreSQL contenders skipped: {e}")
        yield found


# -- phases -----------------------------------------------------------------------


def rotated(items: list[t.Any], r: int) -> list[t.Any]:
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def primitives(env: t.Any, found: dict[str, t.Any], apps: dict[str, t.Any]) -> dict:
    """One store read (and a JWT decode) without Flask: name -> (label, fn)."""
    import sqlite3

    import sqlalchemy as sa

    from benchmarks.contenders import sqlite_url

    out: dict[str, tuple[str, t.Callable[[], t.Any]]] = {}
    if "signoff_sqlite" in apps:
        store = apps["signoff_sqlite"].extensions["signoff"].store
        key = next(iter(_keys(store)))
        path = sqlite_url(env)[len("sqlite:///") :]
        conn = sqlite3.connect(path, check_same_thread=False)
        sql = "SELECT * FROM signoff_sessions WHERE key = ?"
        out["sqlite3_pk"] = (
            "SQLite PK SELECT, sqlite3 directly",
            lambda: conn.execute(sql, (key,)).fetchone(),
        )
        engine = sa.create_engine(sqlite_url(env))
        table = store.t["sessions"]
        stmt = sa.select(table).where(table.c.key == key)

        def core() -> t.Any:
            with engine.connect() as c:
                return c.execute(stmt).first()

        out["sqlalchemy_pk"] = ("SQLite PK SELECT, SQLAlchemy Core", core)
    if "postgres" in found and "signoff_postgres" in apps:
        import psycopg

        store = apps["signoff_postgres"].extensions["signoff"].store
        key = next(iter(_keys(store)))
        pconn = psycopg.connect(found["postgres"].url, autocommit=True)
        psql = "SELECT * FROM signoff_sessions WHERE key = %s"
        out["psycopg_pk"] = (
            "PostgreSQL PK SELECT, psycopg directly",
            lambda: pconn.execute(psql, (key,), prepare=True).fetchone(),
        )
    if "redis" in found:
        import redis

        client = redis.Redis.from_url(found["redis"].url, decode_responses=True)
        client.set("bench:k", "v")
        client.hset("bench:h", mapping={f"f{i}": "x" * 16 for i in range(12)})
        out["redis_get"] = ("redis-py GET, loopback", lambda: client.get("bench:k"))
        out["redis_hgetall"] = (
            "redis-py HGETALL (12 fields), loopback",
            lambda: client.hgetall("bench:h"),
        )
        out["redis_mget"] = (
            "redis-py MGET (2 keys), loopback",
            lambda: client.mget(["bench:k", "bench:x"]),
        )
    try:
        import jwt

        token = jwt.encode({"sub": "1", "exp": int(time.time()) + 3600}, "k" * 32)
        out["pyjwt_decode"] = (
            "PyJWT HS256 decode",
            lambda: jwt.decode(token, "k" * 32, algorithms=["HS256"]),
        )
    except ImportError:
        pass
    return out


def _keys(store: t.Any) -> list[str]:
    import sqlalchemy as sa

    s = store.t["sessions"]
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(s.c.key).limit(1))]


def phase_get(ctx: Context) -> dict[str, t.Any]:
    from benchmarks import inproc, report

    names = list(ctx.apps)
    prims = primitives(ctx.env, ctx.found, ctx.apps)
    items = [("app", n) for n in names] + [("prim", p) for p in prims]
    rounds: list[dict[str, t.Any]] = []
    for r in range(ctx.rounds):
        row: dict[str, t.Any] = {}
        for kind, name in rotated(items, r):
            if kind == "app":
                row[name] = inproc.time_get(
                    ctx.apps[name], ctx.headers[name], ctx.budget
                )
            else:
                row[name] = inproc.time_call(prims[name][1], ctx.budget / 2)
        bare = row.get("bare")
        for name in names:
            row[name]["ratio"] = row[name]["ops"] / bare["ops"] if bare else None
        rounds.append(row)
        ctx.progress(f"GET round {r + 1}/{ctx.rounds}")
    from benchmarks.contenders import BY_NAME

    summary = {}
    for name in names:
        per = [rd[name] for rd in rounds]
        summary[name] = {
            "label": BY_NAME[name].label,
            "ops": report.median(per, "ops"),
            "us": report.median(per, "us"),
            "cpu_us": report.median(per, "cpu_us"),
            "ratio": report.median(per, "ratio"),
        }
    prim_summary = {
        p: {"label": prims[p][0], "us": report.median([rd[p] for rd in rounds], "us")}
        for p in prims
    }
    close = {}
    bare_us = summary.get("bare", {}).get("us")
    for name in names:
        read = BY_NAME[name].store_read
        if (
            not name.startswith("signoff")
            or read not in prim_summary
            or bare_us is None
        ):
            continue
        floor = bare_us + prim_summary[read]["us"]
        close[name] = {
            "label": summary[name]["label"],
            "us": summary[name]["us"],
            "floor_us": floor,
            "overhead_us": summary[name]["us"] - floor,
            "ratio": floor / summary[name]["us"],
        }
    return {
        "rounds": rounds,
        "summary": summary,
        "primitives": prim_summary,
        "vs_bare_plus_read": close,
        "targets": targets(rounds, summary),
    }


def targets(rounds: list[dict[str, t.Any]], summary: dict[str, t.Any]) -> list[dict]:
    """The performance goals, measured as medians of per-round ratios (or,
    for the ``µs`` ones, of per-round differences)."""
    goals = [
        ("SQLite cookie GET vs bare Flask", "≥ 0.80× bare",
         "signoff_sqlite", "bare", 0.8),
        ("SQLite cookie GET vs Flask-Login (cookie)", "> 1× (floor)",
         "signoff_sqlite", "flask_login", 1.0),
        ("Redis cookie GET vs Flask-Login + Flask-Session (Redis)", "≥ 2.5×",
         "signoff_redis", "flask_login_fs_redis", 2.5),
        ("Redis Bearer GET vs Flask-JWT-Extended + Redis blocklist", "≥ 2×",
         "signoff_bearer_redis", "jwt_extended_redis", 2.0),
        ("SQLite cookie GET vs Flask cookie session", "≥ 1×",
         "signoff_sqlite", "flask_session", 1.0),
        ("SQLite Bearer GET vs Flask-JWT-Extended (no blocklist)", "≥ 1×",
         "signoff_bearer_sqlite", "jwt_extended", 1.0),
        ("SQLite cookie GET vs Flask cookie session, CPU time", "≥ 1×",
         "signoff_sqlite", "flask_session", 1.0, "cpu_us"),
        ("SQLite Bearer GET vs Flask-JWT-Extended (no blocklist), CPU time",
         "≥ 1×", "signoff_bearer_sqlite", "jwt_extended", 1.0, "cpu_us"),
        ("Redis cookie GET, µs above bare Flask + one HGETALL", "≤ 50 µs",
         "signoff_redis", "bare_redis", -50.0),
        ("PostgreSQL cookie GET, µs above bare Flask + one prepared PK SELECT",
         "≤ 50 µs", "signoff_postgres", "bare_postgres", -50.0),
        ("Redis cookie GET, CPU µs above bare Flask + one HGETALL", "≤ 50 µs",
         "signoff_redis", "bare_redis", -50.0, "cpu_us"),
        ("PostgreSQL cookie GET, CPU µs above bare Flask + one prepared PK "
         "SELECT", "≤ 50 µs", "signoff_postgres", "bare_postgres", -50.0,
         "cpu_us"),
    ]  # fmt: skip
    return _goals(rounds, summary, goals, "ops", "us")


def _goals(
    rounds: list[dict[str, t.Any]],
    summary: dict[str, t.Any],
    goals: list[tuple[t.Any, ...]],
    rate: str,
    latency: str | None,
) -> list[dict]:
    """Each goal ``(what, goal, a, b, need[, key])`` measured over
    ``rounds``: the median of ``a``'s ``rate`` over ``b``'s (or of ``b``'s
    time ``key`` over ``a``'s), at least ``need``; or, for a negative
    ``need``, the median of ``a``'s ``latency`` (or ``key``) minus ``b``'s,
    at most ``-need``."""
    import statistics

    out = []
    for what, goal, a, b, need, *key in goals:
        if a not in summary or b not in summary:
            continue
        if need >= 0 and key:
            value = statistics.median(rd[b][key[0]] / rd[a][key[0]] for rd in rounds)
            met = value >= need
        elif need >= 0:
            value = statistics.median(rd[a][rate] / rd[b][rate] for rd in rounds)
            met = value >= need
        else:
            field = key[0] if key else latency
            assert field is not None
            value = statistics.median(rd[a][field] - rd[b][field] for rd in rounds)
            met = value <= -need
        out.append({"what": what, "goal": goal, "value": value, "met": met})
    return out


def http_targets(
    rounds: list[dict[str, t.Any]], summary: dict[str, t.Any]
) -> list[dict]:
    """The goals over HTTP: req/s ratios per round, and RSS per worker."""
    goals = [
        ("SQLite cookie GET vs Flask cookie session, req/s", "≥ 1×",
         "signoff_sqlite", "flask_session", 1.0),
        ("SQLite Bearer GET vs Flask-JWT-Extended (no blocklist), req/s", "≥ 1×",
         "signoff_bearer_sqlite", "jwt_extended", 1.0),
    ]  # fmt: skip
    out = _goals(rounds, summary, goals, "rps", None)
    base = summary.get("flask_login")
    for name, what in (
        ("signoff_sqlite", "SQLite cookie"),
        ("signoff_bearer_sqlite", "SQLite Bearer"),
        ("signoff_redis", "Redis cookie"),
    ):
        if base is None or name not in summary:
            continue
        value = summary[name]["rss_mib"] - base["rss_mib"]
        out.append(
            {
                "what": f"{what}: RSS per worker, MiB above Flask-Login's",
                "goal": "≤ 10 MiB",
                "value": value,
                "met": value <= 10,
            }
        )
    return out


def phase_cycle(ctx: Context) -> dict[str, t.Any]:
    from benchmarks import inproc, report
    from benchmarks.contenders import BY_NAME

    names = [
        n for n in ctx.apps if BY_NAME[n].credential != "none" and BY_NAME[n].in_cycle
    ]
    rounds = []
    for r in range(ctx.rounds):
        row = {}
        for name in rotated(names, r):
            row[name] = inproc.time_cycle(
                ctx.apps[name], BY_NAME[name].credential, ctx.budget
            )
        rounds.append(row)
        ctx.progress(f"cycle round {r + 1}/{ctx.rounds}")
    summary = {}
    for name in names:
        per = [rd[name] for rd in rounds]
        summary[name] = {
            "label": BY_NAME[name].label,
            "ops": report.median(per, "ops"),
            "us": report.median(per, "us"),
            "revoked": all(p["revoked"] for p in per),
        }
    return {"rounds": rounds, "summary": summary, "targets": cycle_targets(rounds)}


def cycle_targets(rounds: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Sign-in and sign-out at least as fast as the peers that can revoke:
    medians of the per-round ratios of cycles/s."""
    import statistics

    goals = [
        ("SQLite cookie cycle vs Flask-Login + Flask-Session (Redis)",
         "signoff_sqlite", "flask_login_fs_redis"),
        ("SQLite Bearer cycle vs Flask-JWT-Extended + Redis blocklist",
         "signoff_bearer_sqlite", "jwt_extended_redis"),
    ]  # fmt: skip
    out = []
    for what, a, b in goals:
        if rounds and a in rounds[0] and b in rounds[0]:
            value = statistics.median(rd[a]["ops"] / rd[b]["ops"] for rd in rounds)
            out.append(
                {"what": what, "goal": "≥ 1×", "value": value, "met": value >= 1}
            )
    return out


def phase_http(ctx: Context) -> dict[str, t.Any] | None:
    import json

    from benchmarks import over_http as http
    from benchmarks import report
    from benchmarks.contenders import BY_NAME
    from tests.support.servers import free_port

    if http.wrk_path() is None:
        ctx.notes.append(
            "HTTP phase skipped: wrk is not installed (apt-get install wrk)"
        )
        return None
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        ctx.notes.append("HTTP phase skipped: gunicorn is not installed")
        return None
    names = list(ctx.apps)
    servers = {}
    try:
        for name in names:
            g = http.Gunicorn(
                name,
                ctx.env,
                free_port(),
                os.path.join(ctx.workdir, f"gunicorn-{name}.log"),
            )
            g.start()
            servers[name] = g
        for name in names:
            servers[name].wait_ready(ctx.headers[name])
        ctx.progress("gunicorn up")
        rounds = []
        for r in range(ctx.http_rounds):
            row = {}
            for name in rotated(names, r):
                row[name] = http.run_wrk(
                    servers[name].url, ctx.headers[name], ctx.http_duration
                )
            rounds.append(row)
            ctx.progress(f"HTTP round {r + 1}/{ctx.http_rounds}")
        rss = {name: servers[name].worker_rss() for name in names}
    finally:
        for g in servers.values():
            g.stop()
    summary = {}
    for name in names:
        per = [rd[name] for rd in rounds]
        workers = rss[name]
        summary[name] = {
            "label": BY_NAME[name].label,
            "rps": report.median(per, "rps"),
            "p50_ms": report.median(per, "p50_ms"),
            "p99_ms": report.median(per, "p99_ms"),
            "errors": sum(p["non2xx"] + p["socket_errors"] for p in per),
            "rss_bytes": workers,
            "rss_mib": (sum(workers) / len(workers) / 2**20)
            if workers
            else float("nan"),
        }
    json.dumps(summary)
    return {
        "rounds": rounds,
        "summary": summary,
        "targets": http_targets(rounds, summary),
        "workers": 2,
        "connections": 8,
        "duration": max(1, round(ctx.http_duration)),
    }


def phase_scale(ctx: Context) -> dict[str, t.Any]:
    import random

    from benchmarks import inproc, report, scale
    from benchmarks.contenders import _signoff

    kinds = ["sqlite"]
    if "postgres" in ctx.found:
        for name in ("scale_small", "scale"):
            ctx.found["postgres"].create_database(name)
        kinds.append("postgres")
    if "redis" in ctx.found:
        kinds.append("redis")
    small, large = 1_000, ctx.scale_n
    users = large // 10
    t0 = time.monotonic()
    records_all: list[t.Any] = []
    out: dict[str, t.Any] = {
        "small": small,
        "large": large,
        "users": users,
        "stores": {},
    }
    for kind in kinds:
        # Two stores, one of each size, measured in interleaved rounds: a
        # machine that slows down during the run favours neither.
        stores: dict[str, dict[str, t.Any]] = {}
        for label, target in (("small", small), ("large", large)):
            url, path = scale.scale_store_url(kind, ctx.env, label)
            app = _signoff(url)
            headers = inproc.sign_in(app, "cookie")
            inproc.check_get(app, headers)
            if not records_all:
                records_all = scale.make_records(app, large - 1, users)
                ctx.progress(
                    f"made {len(records_all):,} records ({time.monotonic() - t0:.0f} s)"
                )
            before = scale.store_size(kind, app, path)
            chunk = records_all[: target - 1]
            l0 = time.monotonic()
            scale.LOADERS[kind](app, chunk)
            load_s = time.monotonic() - l0
            scale.verify_sample(app, chunk)
            sample = [
                r.key for r in random.Random(2).sample(chunk, min(5000, len(chunk)))
            ]
            stores[label] = {
                "app": app,
                "url": url,
                "headers": headers,
                "sample": sample,
                "load_s": load_s,
                "size_bytes": scale.store_size(kind, app, path) - before,
            }
            ctx.progress(f"scale {kind}: {target:,} sessions")
        rounds = []
        for r in range(ctx.rounds):
            row = {}
            for label in rotated(["small", "large"], r):
                st = stores[label]
                row[label] = {
                    "lookup_us": scale.time_lookups(
                        st["app"], st["sample"], ctx.budget
                    )["us"],
                    "get_ops": inproc.time_get(st["app"], st["headers"], ctx.budget)[
                        "ops"
                    ],
                }
            rounds.append(row)
        result: dict[str, t.Any] = {"rounds": rounds}
        for label in ("small", "large"):
            per = [rd[label] for rd in rounds]
            result[label] = {
                "lookup_us": report.median(per, "lookup_us"),
                "get_ops": report.median(per, "get_ops"),
                "size_bytes": stores[label]["size_bytes"],
            }
        result["load_s"] = stores["small"]["load_s"] + stores["large"]["load_s"]
        result["bytes_per_session"] = (
            stores["large"]["size_bytes"] - stores["small"]["size_bytes"]
        ) / (large - small)
        big = stores["large"]
        if kind in ("sqlite", "postgres"):
            vacuum = None
            if kind == "postgres":
                pg = ctx.found["postgres"]

                def vacuum(table: str, pg: t.Any = pg) -> None:
                    pg.execute(f"VACUUM ANALYZE {table}", dbname="scale")

            alice_key = (
                big["app"]
                .extensions["signoff"]
                .store.list_sessions("1", time.time())[0]
                .key
            )
            result["purge"] = scale.purge_with_concurrent_gets(
                big["app"],
                big["url"],
                big["headers"],
                alice_key,
                time_cap=ctx.purge_cap,
                vacuum=vacuum,
            )
            ctx.progress(f"purge {kind}: {result['purge']['purge_s']:.1f} s")
        for st in stores.values():
            st["app"].extensions["signoff"].store.close()
        out["stores"][kind] = result
    out["targets"] = scale_targets(out)
    return out


def scale_targets(scale: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """Each store at the large size within 20 % of the small one (medians of
    interleaved rounds), and the longest concurrent request during a purge."""
    out = []
    large = f"{scale['large']:,}"
    for kind, row in scale["stores"].items():
        slower = [
            ("lookup", row["large"]["lookup_us"] / row["small"]["lookup_us"]),
            ("GET", row["small"]["get_ops"] / row["large"]["get_ops"]),
        ]
        for what, value in slower:
            out.append(
                {
                    "what": f"{kind} {what} at {large} vs 1,000 sessions",
                    "goal": "≤ 1.20× slower",
                    "value": value,
                    "met": value <= 1.2,
                }
            )
        purge = row.get("purge")
        if purge:
            value = purge["max_get_ms_during"]
            out.append(
                {
                    "what": f"{kind} longest request during the purge (ms)",
                    "goal": "≤ 10 ms",
                    "value": value,
                    "met": value <= 10.0,
                }
            )
    return out


class Context:
    def __init__(self, args: argparse.Namespace, workdir: str) -> None:
        self.quick = args.quick
        self.rounds = args.rounds or (2 if args.quick else 5)
        self.http_rounds = args.rounds or (1 if args.quick else 3)
        self.budget = 0.15 if args.quick else 0.8
        self.http_duration = 1 if args.quick else 5
        self.scale_n = args.scale or (10_000 if args.quick else 1_000_000)
        self.purge_cap = 60 if args.quick else 240
        self.workdir = workdir
        self.notes: list[str] = []
        self.found: dict[str, t.Any] = {}
        self.apps: dict[str, t.Any] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.env: t.Any = None
        self.started = time.monotonic()

    def progress(self, what: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="short smoke run (< 2 min)"
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="run in this interpreter; skip missing peers",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds per phase")
    parser.add_argument(
        "--phases", default="get,cycle,http,scale", help="comma-separated subset"
    )
    parser.add_argument(
        "--scale", type=int, help="sessions of the large scale run (default 1e6)"
    )
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    if not args.no_venv:
        python = ensure_venv()
        os.execv(
            python, [python, os.path.abspath(__file__), *sys.argv[1:], "--no-venv"]
        )

    # The checked-out code, whatever is installed; and not this folder
    # first on the path (it would shadow standard modules).
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(ROOT, "src"), ROOT, os.environ.get("PYTHONPATH", "")]
    )
    logging.getLogger("flask_signoff").setLevel(logging.ERROR)
    phases = set(args.phases.split(","))

    from benchmarks import inproc, report
    from benchmarks.contenders import CONTENDERS, Env

    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as workdir:
        ctx = Context(args, workdir)
        with servers(workdir, True, True, ctx.notes) as found:
            ctx.found = found
            ctx.env = Env(
                workdir=workdir,
                redis_url=found["redis"].url if "redis" in found else None,
                postgres_url=found["postgres"].url if "postgres" in found else None,
            )
            for c in CONTENDERS:
                why = c.missing(ctx.env)
                if why:
                    ctx.notes.append(f"{c.label} skipped: {why}")
                    continue
                app = c.build(ctx.env)
                ctx.headers[c.name] = inproc.sign_in(app, c.credential)
                inproc.check_get(app, ctx.headers[c.name])
                ctx.apps[c.name] = app
            ctx.progress(f"{len(ctx.apps)} contenders ready")
            results: dict[str, t.Any] = {
                "mode": "quick" if args.quick else "full",
                "rounds": ctx.rounds,
                "notes": ctx.notes,
                "machine": report.machine(),
            }
            if "get" in phases:
                results["get"] = phase_get(ctx)
            if "cycle" in phases:
                results["cycle"] = phase_cycle(ctx)
            if "http" in phases:
                results["http"] = phase_http(ctx)
            if "scale" in phases:
                results["scale"] = phase_scale(ctx)
            extra = {}
            if "redis" in found:
                info = found["redis"].command("INFO", "server")
                extra["redis-server"] = info.split("redis_version:")[1].split()[0]
            if "postgres" in found:
                extra["postgresql"] = str(
                    found["postgres"].execute("SHOW server_version")[0][0]
                )
            results["versions"] = report.versions(extra)
        results["elapsed_s"] = time.monotonic() - ctx.started
        for path in report.write(results, args.out):
            print("wrote", os.path.relpath(path, ROOT))
        with open(os.path.join(args.out, "latest.md")) as f:
            print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
