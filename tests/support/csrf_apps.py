"""A small app with app-wide CSRF protection, for the CSRF and sign-out tests."""

from __future__ import annotations

import os
import re
import typing as t

from flask import Flask, render_template_string, session
from flask.testing import FlaskClient

from flask_signoff import FrozenClock, Signoff, UserMixin, login_user
from tests.support import SECRET_KEY
from tests.support.backends import count_rows


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def make_app(
    instance_path: str | os.PathLike[str], **config: t.Any
) -> tuple[Flask, Signoff, FrozenClock]:
    """An app whose views exercise the binding.

    ``GET /form`` shows the CSRF token; ``POST /login/<id>`` signs in;
    ``POST /act`` changes nothing but needs the app-wide check (on by
    default here); ``POST /rotate`` rotates the session id.
    """
    app = Flask(__name__, instance_path=str(instance_path))
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, SIGNOFF_CSRF_PROTECT=True)
    # Where count_sessions reads it (testing mode's default is a temporary file).
    store = os.path.join(instance_path, "signoff.sqlite3")
    app.config["SIGNOFF_STORE_URL"] = f"sqlite:///{store}"
    app.config.update(config)
    clock = FrozenClock()
    signoff = Signoff(app, clock=clock)
    signoff.user_loader(User)

    @app.get("/form")
    def form() -> str:
        return render_template_string("{{ csrf_token() }}")

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        login_user(User(user_id))
        return "signed in"

    @app.post("/act")
    def act() -> str:
        return "done"

    @app.post("/data")
    def data() -> str:
        session["cart"] = "3 apples"
        return "stored"

    @app.post("/rotate")
    def rotate() -> str:
        return "rotated" if signoff.rotate() else "no session"

    @app.get("/whoami")
    def whoami() -> str:
        from flask_signoff import current_user

        return str(current_user.get_id())

    return app, signoff, clock


def token_of(client: FlaskClient, path: str = "/form") -> str:
    """The CSRF token a page shows: the body of /form, or a form's field."""
    text = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    return match.group(1) if match else text.strip()


def count_sessions(instance_path: str | os.PathLike[str]) -> int:
    """Rows in the session table of the app's store (all sessions, any state)."""
    return count_rows(os.path.join(instance_path, "signoff.sqlite3"))
