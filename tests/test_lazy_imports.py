"""Heavy and optional packages are loaded only by the apps that use them.

Each check runs in a fresh interpreter: this one has loaded everything.
Every module loaded stays in each worker's memory for its whole life, so
an eager import anywhere in the package is a cost to every app.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

#: Packages no app needs merely to import Flask-Signoff.
HEAVY = ("sqlalchemy", "redis", "psycopg", "jwt", "cryptography", "argon2")


def _loaded(code: str, cwd: Path) -> list[str]:
    """The :data:`HEAVY` packages loaded after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return _strings(json.loads(result.stdout.strip().splitlines()[-1]))


def _strings(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(v) for v in value]


def test_import_loads_no_store_driver_nor_pyjwt(tmp_path: Path) -> None:
    assert _loaded("import flask_signoff", tmp_path) == []


_COOKIE_APP = """
    import logging
    from flask import Flask
    import flask_signoff as fs

    logging.disable(logging.WARNING)

    class User(fs.UserMixin):
        id = "1"

    app = Flask("probe")
    app.config.update(
        SECRET_KEY="probe-secret-key-0123456789abcdef",
        SIGNOFF_STORE_URL="sqlite:///{path}",
        SIGNOFF_COOKIE_SECURE=False,
    )
    signoff = fs.Signoff(app)
    signoff.user_loader(lambda user_id: User() if user_id == "1" else None)

    @app.post("/login")
    def login():
        fs.login_user(User())
        return "ok"

    @app.get("/me")
    @fs.login_required
    def me():
        return fs.current_user.get_id()

    client = app.test_client()
    {steps}
"""


def test_cookie_app_loads_no_pyjwt(tmp_path: Path) -> None:
    """Signing in and using a session cookie never loads PyJWT (nor the
    ``cryptography`` package it loads when installed)."""
    steps = """
    assert client.post("/login").status_code == 200
    assert client.get("/me").get_data(as_text=True) == "1"
    """
    code = _COOKIE_APP.format(path=tmp_path / "s.sqlite3", steps=steps)
    loaded = _loaded(code, tmp_path)
    assert "jwt" not in loaded
    assert "cryptography" not in loaded


_SERVE_LATER = """
    import sqlite3, time
    later = time.time() + 120
    app.extensions["signoff"].lifecycle.clock = lambda: later
    client.set_cookie("session", COOKIE)
    assert client.get("/me").get_data(as_text=True) == "1"
    seen = sqlite3.connect(PATH).execute(
        "SELECT last_seen_at FROM signoff_sessions"
    ).fetchone()[0]
    assert seen == later, (seen, later)
"""


def test_cookie_requests_on_sqlite_load_no_sqlalchemy(tmp_path: Path) -> None:
    """A worker that serves signed-in requests on SQLite, touches included,
    reads and writes through ``sqlite3`` alone; signing in may load
    SQLAlchemy, in another worker."""
    path = tmp_path / "s.sqlite3"
    sign_in = """
    response = client.post("/login")
    assert response.status_code == 200
    print(response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1])
    """
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_COOKIE_APP.format(path=path, steps=sign_in)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cookie = result.stdout.strip().splitlines()[-1]
    # Two minutes later: the session is due a touch.
    serve = _SERVE_LATER.replace("COOKIE", repr(cookie)).replace(
        "PATH", repr(str(path))
    )
    loaded = _loaded(_COOKIE_APP.format(path=path, steps=serve), tmp_path)
    assert "sqlalchemy" not in loaded
    assert "jwt" not in loaded
