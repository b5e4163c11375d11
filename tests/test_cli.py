from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from apps import count_rows
from flask_signoff import FrozenClock
from flask_signoff.core.records import FamilyRecord, RefreshRecord
from flask_signoff.extension import get_state


def run(app: Flask, *args: str, **kwargs: Any) -> Any:
    return app.test_cli_runner().invoke(args=["signoff", *args], **kwargs)


def test_every_command_has_help(app: Flask) -> None:
    for command in ("sessions", "revoke-user", "revoke-all", "purge", "init"):
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


def test_init_creates_tables(app: Flask, db_path: Path) -> None:
    assert run(app, "init").exit_code == 0
    assert db_path.exists()
    assert count_rows(db_path) == 0
