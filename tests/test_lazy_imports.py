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
