from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_signoff import FrozenClock, cli
from flask_signoff.core.records import FamilyRecord, RefreshRecord
from flask_signoff.extension import get_state
from tests.support import SECRET_KEY
from tests.support.apps import make_app
from tests.support.backends import count_rows
from tests.support.servers import PostgresServer, RedisCluster, RedisServer, free_port
from tests.test_store_check import FIX, OPT_OUT, policy

_namespaces = itertools.count()


def run(app: Flask, *args: str, **kwargs: Any) -> Any:
    return app.test_cli_runner().invoke(args=["signoff", *args], **kwargs)


def test_every_command_has_help(app: Flask) -> None:
    commands = ("sessions", "revoke-user", "revoke-all", "purge", "init", "check")
    for command in (*commands, "stats"):
        result = run(app, command, "--help")
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_sessions_lists_public_ids_never_secrets(app: Flask, client: Any) -> None:
    client.post("/login/alice", headers={"User-Agent": "TestBrowser/1.0"})
    secret = client.get_cookie("session").value
    record = get_state(app).lifecycle.sessions_for("alice")[0]
    result = run(app, "sessions", "alice")
    assert result.exit_code == 0
    assert record.public_id in result.output
    assert "TestBrowser/1.0" in result.output
    assert "1 live session(s)." in result.output
    assert secret not in result.output
    assert secret.partition(".")[2] not in result.output
    assert record.key.partition(".")[2] not in result.output
    assert "No live sessions" in run(app, "sessions", "bob").output


def test_revoke_user(app: Flask, client: Any) -> None:
    client.post("/login/alice")
    other = app.test_client()
    other.post("/login/bob")
    result = run(app, "revoke-user", "alice")
    assert result.exit_code == 0
    assert "1 session(s) ended" in result.output
    assert client.get("/me").status_code == 401
    assert other.get("/me").status_code == 200


def test_revoke_all_needs_confirmation(app: Flask, client: Any, db_path: Path) -> None:
    client.post("/login/alice")
    app.test_client().post("/login/bob")
    refused = run(app, "revoke-all", input="n\n")
    assert refused.exit_code != 0
    assert count_rows(db_path) == 2
    result = run(app, "revoke-all", "--yes")
    assert result.exit_code == 0
    assert "2 session(s) ended" in result.output
    assert count_rows(db_path) == 0
    assert client.get("/me").status_code == 401


def test_revoke_all_kills_refresh_families(app: Flask, clock: FrozenClock) -> None:
    store = get_state(app).store
    now = clock()
    store.create_family(
        FamilyRecord("fam", "alice", now, now + 1000),
        RefreshRecord("t.1", "fam", "alice", now, now + 1000),
    )
    assert run(app, "revoke-all", "--yes").exit_code == 0
    assert store.get_refresh("t.1") is None
    assert store.access_state("alice", "fam", now + 1).family_revoked
    # The marker lasts as long as an access token could.
    assert not store.access_state("alice", "fam", now + 15 * 60 + 1).family_revoked


def test_purge(app: Flask, client: Any, clock: FrozenClock, db_path: Path) -> None:
    for _ in range(3):
        app.test_client().post("/login/alice")
    clock.advance(31 * 60)
    client.post("/login/bob")
    assert count_rows(db_path) == 4
    result = run(app, "purge", "--batch-size", "2")
    assert result.exit_code == 0
    assert "Purged 3 expired record(s)." in result.output
    assert count_rows(db_path) == 1
    assert client.get("/me").status_code == 200


def test_purge_shows_progress_on_stderr_and_ends_with_a_summary(
    app: Flask, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        app.test_client().post("/login/alice")
    clock.advance(31 * 60)
    monkeypatch.setattr(cli, "PROGRESS_EVERY", 0)  # a line per batch
    result = run(app, "purge", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    # stdout: the summary alone, for scripts and cron mails.
    (summary,) = result.stdout.splitlines()
    pattern = r"Purged 5 expired record\(s\)\. \d+ batch\(es\) in \d+\.\d s\."
    assert re.fullmatch(pattern, summary), summary
    # stderr (not a terminal here): plain lines, each a running total.
    lines = result.stderr.splitlines()
    totals = [int(re.match(r"purge: (\d+) record", line)[1]) for line in lines]  # type: ignore[index]
    assert len(totals) >= 2
    assert totals == sorted(set(totals))
    assert totals[-1] == 5
    assert "\r" not in result.stderr


def test_purge_is_quiet_on_stderr_when_it_is_quick(
    app: Flask, clock: FrozenClock
) -> None:
    app.test_client().post("/login/alice")
    clock.advance(31 * 60)
    result = run(app, "purge")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.startswith("Purged 1 expired record(s). ")


def test_revoke_all_reports_each_step_and_a_summary(
    app: Flask, client: Any, clock: FrozenClock
) -> None:
    client.post("/login/alice")
    app.test_client().post("/login/bob")
    now = clock()
    get_state(app).store.create_family(
        FamilyRecord("fam", "alice", now, now + 1000),
        RefreshRecord("t.1", "fam", "alice", now, now + 1000),
    )
    result = run(app, "revoke-all", "--yes")
    assert result.exit_code == 0, result.output
    (summary,) = result.stdout.splitlines()
    pattern = (
        r"Signed everyone out \(2 session\(s\) ended\)\. 1 refresh family\(ies\) "
        r"revoked, in \d+\.\d s\."
    )
    assert re.fullmatch(pattern, summary), summary
    assert result.stderr.splitlines() == [
        "Revoking every refresh family...",
        "1 refresh family(ies) revoked; ending every session...",
        "2 session(s) ended",
    ]


def test_stats_counts_live_sessions_and_families(
    app: Flask, client: Any, clock: FrozenClock
) -> None:
    assert "live sessions: 0" in run(app, "stats").output
    client.post("/login/alice")
    app.config["TEST_REMEMBER"] = True
    app.test_client().post("/login/bob")
    app.test_client().post("/cart/apple")  # session data, nobody signed in
    now = clock()
    get_state(app).store.create_family(
        FamilyRecord("fam", "alice", now, now + 1000),
        RefreshRecord("t.1", "fam", "alice", now, now + 1000),
    )
    result = run(app, "stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("store: sqlite:///")
    assert lines[1:5] == [
        "live sessions: 3",
        "  remembered: 1",
        "  anonymous: 1",
        "live refresh families: 1",
    ]
    # Past the idle timeout and the family's end: only the remembered one.
    clock.advance(31 * 60)
    result = run(app, "stats", "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["store"].startswith("sqlite:///")
    assert counts["seconds"] >= 0
    del counts["store"], counts["seconds"]
    assert counts == {"sessions": 1, "remembered": 1, "anonymous": 0, "families": 0}


def test_stats_on_a_redis_cluster(
    store_app: Callable[..., Flask], redis_cluster: RedisCluster
) -> None:
    app = store_app(redis_cluster.url)
    for name in ("alice", "bob"):
        app.test_client().post(f"/login/{name}")
    result = run(app, "stats", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sessions"] == 2


def test_stats_of_an_unreachable_store_fail_clearly(
    store_app: Callable[..., Flask],
) -> None:
    app = store_app(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    result = run(app, "stats")
    assert result.exit_code == 1
    assert "Nothing was counted." in result.stderr
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_init_creates_tables(app: Flask, db_path: Path) -> None:
    assert run(app, "init").exit_code == 0
    assert db_path.exists()
    assert count_rows(db_path) == 0


# -- flask signoff check --------------------------------------------------------


def test_check_help_says_what_it_checks(app: Flask) -> None:
    text = run(app, "check", "--help").output
    for what in ("reachable", "maxmemory-policy", "schema", "exit status"):
        assert what in text, what


def test_check_sqlite_asks_for_the_schema_then_passes(
    app: Flask, db_path: Path
) -> None:
    result = run(app, "check")
    assert result.exit_code == 1, result.output
    assert "flask signoff init" in result.output
    assert str(db_path) in result.output
    assert run(app, "init").exit_code == 0
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    assert "schema: present" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("OK")
    # Reported, not failed: the app's import name as issuer and audience.
    assert "SIGNOFF_JWT_AUDIENCE" in result.output


@pytest.fixture
def store_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``store_app(url, **config)``: the test app on another store; closed after."""
    made: list[Flask] = []

    def make(url: str, **config: Any) -> Flask:
        n = next(_namespaces)
        app = make_app(
            tmp_path / "unused.sqlite3",
            FrozenClock(),
            SIGNOFF_STORE_URL=url,
            SIGNOFF_KEY_PREFIX=f"chk{n}:",
            SIGNOFF_TABLE_PREFIX=f"chk{n}_",
            SIGNOFF_STORE_TIMEOUT=1,
            **config,
        )
        made.append(app)
        return app

    try:
        yield make
    finally:
        for app in made:
            get_state(app).store.close()


def test_check_postgresql_schema(
    store_app: Callable[..., Flask], postgres_server: PostgresServer
) -> None:
    app = store_app(postgres_server.url)
    result = run(app, "check")
    assert result.exit_code == 1, result.output
    assert "flask signoff init" in result.output
    assert run(app, "init").exit_code == 0
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    assert "schema: present" in result.output


def test_check_reports_the_policy_of_every_master(
    store_app: Callable[..., Flask], redis_cluster: RedisCluster
) -> None:
    result = run(store_app(redis_cluster.url), "check")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for node in redis_cluster.nodes:
        (line,) = [x for x in lines if f"127.0.0.1:{node.port}:" in x]
        assert "maxmemory-policy noeviction" in line


def test_check_fails_on_an_evicting_policy(
    store_app: Callable[..., Flask], redis_server: RedisServer
) -> None:
    app = store_app(redis_server.url)
    with policy(redis_server, "allkeys-lru"):
        result = run(app, "check")
    assert result.exit_code == 1, result.output
    assert "maxmemory-policy allkeys-lru" in result.output
    assert FIX in result.output
    assert not result.output.rstrip().splitlines()[-1].startswith("OK")


def test_check_with_the_opt_out_passes_with_a_warning(
    store_app: Callable[..., Flask], redis_server: RedisServer
) -> None:
    app = store_app(redis_server.url, **{OPT_OUT: True})
    with policy(redis_server, "allkeys-lru"):
        result = run(app, "check")
    assert result.exit_code == 0, result.output
    assert "warning" in result.output.lower()
    assert OPT_OUT in result.output
    assert "'allkeys-lru'" in result.output


def test_check_an_unreachable_store(store_app: Callable[..., Flask]) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    app = store_app(url)  # starts: checked once Redis answers
    result = run(app, "check")
    assert result.exit_code == 1, result.output
    assert "not reachable" in result.output
    assert "SIGNOFF_STORE_URL" in result.output
    assert "hunter2" not in result.output


def test_an_app_that_refuses_to_start_fails_the_command_with_the_fix(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "FLASK_SECRET_KEY": SECRET_KEY,
        "FLASK_SIGNOFF_STORE_URL": redis_server.url,
        "SIGNOFF_DEMO_INSTANCE_PATH": str(tmp_path),
    }
    with policy(redis_server, "allkeys-lru"):
        command = ["flask", "--app", "examples.demo", "signoff", "check"]
        done = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "ConfigError" in done.stderr
    assert "'allkeys-lru'" in done.stderr
    assert FIX in done.stderr
