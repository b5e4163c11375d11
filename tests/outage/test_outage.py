"""Fail closed, with real faults: the demo under gunicorn loses its store.

For Redis and for PostgreSQL, the demo runs under a real gunicorn (two sync
workers on 127.0.0.1) with ``SIGNOFF_STORE_TIMEOUT=1``. A few users sign in
on two devices each (and get an API token when ``/api/token`` issues them).
Then, while another process sends a steady load as those users
(:mod:`tests.support.load`), the store server

1. **hangs**: it is frozen (``SIGSTOP`` on every process of the server), so
   connections stay open and nothing answers; only the client's timeouts can
   end a call. A few seconds later it is thawed.
2. **goes away**: it is stopped (its connections close), kept down a few
   seconds, and started again on the same port with the same data.

During each fault every answer must be the clear 503 (JSON or HTML, with
``Retry-After``, no traceback): no signed-in page, no sign-out or revocation
reported as done, no other 5xx, no session cookie set or deleted, and no
request may hold a worker much longer than the store timeout. Before and
after, every answer is the right user's page. Afterwards the same cookies and
tokens still work and every session is still there; the sign-out and
revocation requests that were refused during the fault then succeed, which
shows they were valid requests.

The counts are printed (``pytest -s``) and written to
``test-artifacts/outage-<backend>.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import typing as t
from collections.abc import Callable
from pathlib import Path

import pytest

from flask_signoff.responses import UNAVAILABLE_MESSAGE
from tests.outage.conftest import STORE_TIMEOUT
from tests.support import load
from tests.support.demo import PASSWORD
from tests.support.gunicorn_demo import ROOT, Browser, gunicorn_demo
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
USERS = ["ada", "grace", "edsger"]
WORKERS = 2
THREADS = 4
#: Load before a fault and after it, in seconds.
BEFORE, AFTER = 0.5, 1.0
#: How long each fault lasts, in seconds. Frozen, the store lets through
#: only WORKERS requests per STORE_TIMEOUT: the hang lasts longer.
FAULTS = {"hang": 4.0, "stop_start": 2.0}
#: Longest a request may hold a worker during a fault: one store call ends
#: within 1.5 x the timeout (PostgreSQL's watchdog; Redis's socket timeout
#: is 1 x), a new PostgreSQL connection gives up after 2 s (psycopg's floor).
SERVER_BOUND = max(1.5 * STORE_TIMEOUT, 2.0) + 1.0
#: The same seen from the client, which may wait for a busy worker first.
CLIENT_BOUND = SERVER_BOUND * -(-THREADS // WORKERS) + 1.0


# -- users and their credentials ------------------------------------------------------


def sign_in_everyone(base: str) -> tuple[list[load.Target], dict[str, t.Any]]:
    """Register the users, sign each in on two devices, ask for API tokens."""
    targets: list[load.Target] = []
    token_status = None
    for username in USERS:
        assert (
            Browser(base).post_form("/register", username=username, password=PASSWORD)
            == 303
        )
        devices: list[dict[str, str]] = []
        for n in range(2):
            device = Browser(base, user_agent=f"outage-test device {n}")
            status = device.post_form("/login", username=username, password=PASSWORD)
            assert status == 303
            csrf = device.csrf("/")
            assert csrf.startswith("s.")
            status, _, text = device.request("GET", "/api/sessions")
            assert status == 200
            rows = json.loads(text)
            assert len(rows) == n + 1
            current = next(row["id"] for row in rows if row["current"])
            cookie = device.cookies["session"]
            devices.append({"cookie": cookie, "csrf": csrf, "public_id": current})
        status, _, text = Browser(base).request(
            "POST",
            "/api/token",
            json_body={"username": username, "password": PASSWORD},
            cookies=False,
        )
        token_status = status
        bearer = json.loads(text)["access_token"] if status == 200 else None
        targets.append({"username": username, "devices": devices, "bearer": bearer})
    return targets, {"api_token_status": token_status}


def sessions_of(base: str, target: load.Target) -> set[str]:
    browser = Browser(base)
    browser.cookies["session"] = target["devices"][0]["cookie"]
    status, _, text = browser.request("GET", "/api/sessions")
    assert status == 200, status
    return {row["id"] for row in json.loads(text)}


def check_everyone_is_still_signed_in(
    base: str, targets: list[load.Target], sessions: dict[str, set[str]]
) -> None:
    for target in targets:
        for device in target["devices"]:
            browser = Browser(base)
            browser.cookies["session"] = device["cookie"]
            status, headers, text = browser.request("GET", "/api/me")
            assert status == 200, (target["username"], status, text)
            assert json.loads(text) == {"user": target["username"]}
            assert "Set-Cookie" not in headers
        if target["bearer"]:
            status, _, text = Browser(base).request(
                "GET",
                "/api/me",
                headers={"Authorization": f"Bearer {target['bearer']}"},
            )
            assert status == 200, (target["username"], status, text)
        assert sessions_of(base, target) == sessions[target["username"]]


# -- one fault under load -------------------------------------------------------------


def run_fault(
    name: str,
    during: float,
    base: str,
    logs: Path,
    targets: list[load.Target],
    fault: Callable[[], None],
    recover: Callable[[], None],
) -> dict[str, t.Any]:
    """Load before, during and after a fault; the counts, judged."""
    ctx = multiprocessing.get_context("spawn")
    phase = ctx.Value("i", 0)
    posts_in_flight = ctx.Value("i", 0)
    stop = ctx.Event()
    out = logs / f"load-{name}.json"
    access_log = logs / "access.log"
    log_start = access_log.stat().st_size if access_log.exists() else 0
    process = ctx.Process(
        target=load.run,
        args=(
            base,
            targets,
            UNAVAILABLE_MESSAGE,
            phase,
            posts_in_flight,
            stop,
            str(out),
        ),
        kwargs={"threads": THREADS, "seconds": 60.0},
    )
    process.start()
    recovered = False
    try:
        time.sleep(BEFORE)
        with phase.get_lock():
            phase.value = 1
        fault()
        with phase.get_lock():
            phase.value = load.PHASE_DOWN
        time.sleep(during)
        with phase.get_lock():
            phase.value = load.PHASE_DRAINING
        # No sign-out or revocation may still be on its way when the store is
        # back: it would succeed, and end sessions that must survive.
        deadline = time.monotonic() + 10
        while posts_in_flight.value:
            assert time.monotonic() < deadline, "requests still in flight after 10 s"
            time.sleep(0.01)
        with phase.get_lock():
            phase.value = 4
        recover()
        recovered = True
        with phase.get_lock():
            phase.value = 5
        time.sleep(AFTER)
    finally:
        stop.set()
        if not recovered:  # let blocked requests end, and the load with them
            recover()
        process.join(60)
        if process.is_alive():
            process.kill()
    assert process.exitcode == 0, f"the load process failed ({process.exitcode})"
    results: list[dict[str, t.Any]] = json.loads(out.read_text())
    server_time = {}
    with open(access_log) as f:
        f.seek(log_start)
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] != "-":
                server_time[parts[0]] = float(parts[2])
    return judge(results, server_time)


def judge(
    results: list[dict[str, t.Any]], server_time: dict[str, float]
) -> dict[str, t.Any]:
    """Count what happened; ``failures`` lists every request that broke a rule."""
    down = {load.PHASE_DOWN, load.PHASE_DRAINING}
    during = [r for r in results if {r["phase_sent"], r["phase_answered"]} <= down]
    in_fault = [r for r in results if r["phase_sent"] in down]
    statuses: dict[str, int] = {}
    by_kind: dict[str, dict[str, int]] = {}
    for r in results:
        key = str(r["status"])
        statuses[key] = statuses.get(key, 0) + 1
        kind = by_kind.setdefault(r["kind"], {})
        kind[key] = kind.get(key, 0) + 1
    failures = []
    for r in results:
        status, phases = r["status"], {r["phase_sent"], r["phase_answered"]}
        if status is None:
            failures.append(("no answer", r))
        elif r["traceback"] or r["cookie_set"] or r["cookie_deleted"]:
            failures.append(("traceback or session cookie changed", r))
        elif phases <= down:
            if status != 503 or not r["ok"]:
                failures.append(("not the clear 503 during the fault", r))
        elif phases == {0} or r["phase_sent"] == 5:
            if status != 200 or not r["ok"]:
                failures.append(("not the right page outside the fault", r))
        elif status not in (200, 503) or not r["ok"]:
            failures.append(("neither the page nor the 503 around the fault", r))
    posts = [r for r in results if r["kind"] in ("logout", "revoke")]
    measured = [server_time[r["id"]] for r in in_fault if r["id"] in server_time]
    return {
        "requests": len(results),
        "status_200": sum(r["status"] == 200 for r in results),
        "status_503": sum(r["status"] == 503 for r in results),
        "other_5xx": sum(
            r["status"] is not None and r["status"] >= 500 and r["status"] != 503
            for r in results
        ),
        "statuses": statuses,
        "by_kind": by_kind,
        "no_answer": sum(r["status"] is None for r in results),
        "wrong_200": sum(
            r["status"] is not None and 200 <= r["status"] < 400 for r in during
        ),
        "cookie_set_or_deleted": sum(
            bool(r.get("cookie_set") or r.get("cookie_deleted")) for r in results
        ),
        "bad_503_body": sum(r["status"] == 503 and not r["ok"] for r in results),
        "during_fault": {
            "requests": len(during),
            "status_503": sum(r["status"] == 503 for r in during),
            "logout_and_revoke_posts": len(posts),
            "posts_answered_503": sum(r["status"] == 503 for r in posts),
        },
        "first_after_recovery": next(
            (r["status"] for r in results if r["phase_sent"] == 5), None
        ),
        "max_latency_s": round(max((r["latency"] for r in in_fault), default=0), 3),
        "max_server_time_s": round(max(measured, default=0), 3),
        "failures": [f"{why}: {r}" for why, r in failures[:10]],
        "failure_count": len(failures),
    }


def prove_the_refused_posts_were_valid(base: str, target: load.Target) -> None:
    """The same sign-out and revocation as during the fault, now succeeding."""
    first, second = target["devices"]
    browser = Browser(base)
    browser.cookies["session"] = first["cookie"]
    form = {"csrf_token": first["csrf"]}
    status, headers, _ = browser.request(
        "POST", f"/sessions/{second['public_id']}/revoke", form=form
    )
    assert status == 303, status
    assert headers["Location"] == "/sessions"
    gone = Browser(base)
    gone.cookies["session"] = second["cookie"]
    assert gone.request("GET", "/api/me")[0] == 401
    status, headers, _ = browser.request("POST", "/logout", form=form)
    assert status == 303
    cookies = headers.get_all("Set-Cookie") or []
    deleted = [c for c in cookies if c.startswith("session=")]
    assert len(deleted) == 1
    assert "Max-Age=0" in deleted[0]
    assert browser.request("GET", "/api/me")[0] == 401


# -- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_fail_closed_under_real_faults(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: RedisServer | PostgresServer = request.getfixturevalue(
        "outage_redis" if backend == "redis" else "outage_postgres"
    )
    if isinstance(server, PostgresServer):
        url = server.create_database("outage_demo")
    else:
        server.command("FLUSHALL")
        url = server.url
    report: dict[str, t.Any] = {
        "backend": backend,
        "gunicorn_workers": WORKERS,
        "load_threads": THREADS,
        "store_timeout_s": STORE_TIMEOUT,
        "seconds_before_after": [BEFORE, AFTER],
        "fault_seconds": FAULTS,
        "server_bound_s": SERVER_BOUND,
        "client_bound_s": CLIENT_BOUND,
    }
    with gunicorn_demo(url, tmp_path, store_timeout=STORE_TIMEOUT, workers=WORKERS) as (
        base,
        logs,
    ):
        targets, info = sign_in_everyone(base)
        report.update(info)
        report["bearer_load"] = any(target["bearer"] for target in targets)
        sessions = {t["username"]: sessions_of(base, t) for t in targets}

        def restart() -> None:
            server.start()

        faults = {
            "hang": (server.pause, server.resume),
            "stop_start": (server.stop, restart),
        }
        for name, (fault, recover) in faults.items():
            report[name] = run_fault(
                name, FAULTS[name], base, logs, targets, fault, recover
            )
            check_everyone_is_still_signed_in(base, targets, sessions)
        prove_the_refused_posts_were_valid(base, targets[0])
    error_log = (logs / "error.log").read_text() + (logs / "stderr.log").read_text()
    report["worker_timeouts"] = error_log.count("WORKER TIMEOUT")
    report["tracebacks_in_server_log"] = error_log.count("Traceback")
    report["store_unavailable_log_lines"] = error_log.count("Session store unavailable")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"outage-{backend}.json").write_text(json.dumps(report, indent=2))
    print_report(report)

    assert report["worker_timeouts"] == 0
    assert report["tracebacks_in_server_log"] == 0, error_log[-3000:]
    for name in ("hang", "stop_start"):
        counts = report[name]
        assert counts["failures"] == [], counts["failures"]
        assert counts["other_5xx"] == 0
        assert counts["wrong_200"] == 0
        assert counts["no_answer"] == 0
        assert counts["cookie_set_or_deleted"] == 0
        assert counts["bad_503_body"] == 0
        assert counts["during_fault"]["requests"] > 0
        assert counts["during_fault"]["logout_and_revoke_posts"] > 0
        assert counts["max_server_time_s"] <= SERVER_BOUND
        assert counts["max_latency_s"] <= CLIENT_BOUND


def print_report(report: dict[str, t.Any]) -> None:
    print(f"\n== outage, {report['backend']} (api token: {report['api_token_status']})")
    for name in ("hang", "stop_start"):
        c = report[name]
        d = c["during_fault"]
        print(
            f"  {name:10} requests={c['requests']} 200={c['status_200']} "
            f"503={c['status_503']} other_5xx={c['other_5xx']} "
            f"wrong_200={c['wrong_200']} no_answer={c['no_answer']} "
            f"cookie_changes={c['cookie_set_or_deleted']} "
            f"bad_503={c['bad_503_body']} | during: {d['requests']} "
            f"(503: {d['status_503']}; logout/revoke posts: "
            f"{d['logout_and_revoke_posts']}, 503: {d['posts_answered_503']}) | "
            f"max latency {c['max_latency_s']} s (client), "
            f"{c['max_server_time_s']} s (worker) | first after recovery: "
            f"{c['first_after_recovery']}"
        )
