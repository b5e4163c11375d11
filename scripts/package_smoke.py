"""Smoke test of an installed wheel, run by ``scripts/package_check.sh``.

It runs in a fresh virtualenv, from a directory outside the repository, so
every import comes from the wheel: a module or a data file (a Lua script, a
template) missing from the wheel fails here, where the test suite, run from
the source tree, would not see it.

    python package_smoke.py <expected version> <sqlite path>

The module is also the app for ``flask --app package_smoke signoff --help``
(``SMOKE_DB`` names its SQLite file then).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from importlib import resources
from pathlib import Path

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

import flask_signoff
from flask_signoff import Signoff, UserMixin, current_user, login_user, logout_user


class User(UserMixin):
    def __init__(self, id: str) -> None:
        self.id = id


def create_app(db_path: str | None = None) -> Flask:
    app = Flask(__name__)
    path = db_path or os.environ["SMOKE_DB"]
    app.config.update(
        SECRET_KEY="package-smoke-" + "x" * 32,
        SIGNOFF_STORE_URL=f"sqlite:///{path}",
        # Plain http in the test client; a name so the JWT check stays quiet.
        SIGNOFF_COOKIE_SECURE=False,
        SIGNOFF_JWT_ISSUER="package-smoke",
        SIGNOFF_JWT_AUDIENCE="package-smoke",
    )
    signoff = Signoff(app)

    @signoff.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id == "alice" else None

    @app.post("/login")
    def login() -> ResponseReturnValue:
        return jsonify(ok=login_user(User("alice")))

    @app.post("/logout")
    def logout() -> ResponseReturnValue:
        logout_user()
        return jsonify(ok=True)

    @app.get("/me")
    def me() -> ResponseReturnValue:
        if not current_user.is_authenticated:
            return jsonify(user=None), 401
        return jsonify(user=current_user.get_id())

    return app


def check_installed(version: str) -> None:
    installed = Path(flask_signoff.__file__).resolve()
    assert "site-packages" in installed.parts, f"imported from {installed}"
    assert flask_signoff.__version__ == version, flask_signoff.__version__
    assert importlib.metadata.version("flask-signoff") == version
    package = resources.files("flask_signoff")
    for data in ("py.typed", "static/signoff.js", "templates/signoff/logout.html"):
        assert package.joinpath(data).is_file(), f"{data} is not in the wheel"


def check_sign_in_and_out(db_path: str) -> None:
    app = create_app(db_path)
    client = app.test_client()
    assert client.get("/me").status_code == 401
    assert client.post("/login").get_json() == {"ok": True}
    assert client.get("/me").get_json() == {"user": "alice"}
    cookie = client.get_cookie("session")
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert copy.get("/me").status_code == 200
    client.post("/logout")
    assert client.get("/me").status_code == 401
    # The copied cookie names a session the server has deleted.
    assert copy.get("/me").status_code == 401, "a cookie outlived its logout"


def check_lua_scripts() -> None:
    import redis

    from flask_signoff.stores.redis import lua

    shipped = resources.files("flask_signoff.stores.redis") / "scripts"
    on_disk = {p.name.removesuffix(".lua") for p in shipped.iterdir()}
    expected = {*lua.NAMES, lua.LIBRARY}
    assert on_disk >= expected, f"missing from the wheel: {expected - on_disk}"
    for name in expected:
        assert lua.read(name).strip(), f"{name}.lua is empty"
    # register() reads every script and hashes it; it makes no connection,
    # so no server is needed (nothing listens on port 1).
    scripts = lua.register(redis.Redis(host="127.0.0.1", port=1))
    assert set(scripts) == set(lua.NAMES)
    for name, script in scripts.items():
        assert len(script.sha) == 40, name
        assert lua.read(name) in script.script, name


def main(version: str, db_path: str) -> None:
    check_installed(version)
    check_sign_in_and_out(db_path)
    check_lua_scripts()
    print(f"smoke test of flask-signoff {version}: OK")


if __name__ == "__main__":
    main(*sys.argv[1:3])
else:
    # ``flask --app package_smoke``: Flask finds ``app`` here.
    app = create_app() if "SMOKE_DB" in os.environ else None
