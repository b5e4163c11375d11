"""The reference app of Flask-Signoff: sign up, sign in, see and end sessions.

Run it from the repository root::

    flask --app examples.demo run                 # development, plain http
    gunicorn 'examples.demo:create_app()'         # Secure cookies: behind https

Configuration comes from the environment through
``app.config.from_prefixed_env()``: ``FLASK_SIGNOFF_IDLE_TIMEOUT=2``,
``FLASK_SIGNOFF_STORE_URL=redis://127.0.0.1:6379/0``, ``FLASK_SECRET_KEY=...``.
Without ``FLASK_SECRET_KEY`` a key is generated once into the instance folder
(file mode 0600). ``SIGNOFF_DEMO_INSTANCE_PATH`` moves the instance folder.

Sign-in through an OpenID Connect provider, with single sign-out both ways,
is on when ``FLASK_DEMO_OIDC_ISSUER``, ``FLASK_DEMO_OIDC_CLIENT_ID`` and
``FLASK_DEMO_OIDC_CLIENT_SECRET`` are set (:mod:`examples.demo.oidc`).

Cookies on plain http: the session cookie is ``Secure`` (``__Host-session``)
by default, which browsers do not reliably keep over ``http://``. Under the
``flask`` command (the development server) or in debug mode the demo turns
``SIGNOFF_COOKIE_SECURE`` off unless it is set explicitly, so the development
command works as is; under gunicorn it stays on (serve it behind https, or
set ``FLASK_SIGNOFF_COOKIE_SECURE=false`` for a local try).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import typing as t
from collections.abc import Mapping

from flask import Flask, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from flask_signoff import (
    Signoff,
    confirm_login,
    current_user,
    device_label,
    is_safe_redirect,
    login_fresh,
    login_required,
    login_user,
    logout_blueprint,
    safe_redirect_target,
)

from . import api_tokens
from .users import DuplicateUser, User, UserStore

#: Longest username accepted.
MAX_USERNAME = 64
#: Longest password accepted (argon2 copes, but a megabyte form is abuse).
MAX_PASSWORD = 1024

#: The Content-Security-Policy, directive by directive. No inline script
#: anywhere: the cross-tab script is a file of our own.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}
#: The settings that turn sign-in through an OpenID Connect provider on
#: (:mod:`examples.demo.oidc`); all three are needed.
OIDC_SETTINGS = ("DEMO_OIDC_ISSUER", "DEMO_OIDC_CLIENT_ID", "DEMO_OIDC_CLIENT_SECRET")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(test_config: Mapping[str, t.Any] | None = None) -> Flask:
    """Build the demo app.

    :param test_config: config that wins over the environment. Two keys are
        the demo's own: ``INSTANCE_PATH`` (where the instance folder is) and
        ``SIGNOFF_TEST_CLOCK`` (a clock passed to ``Signoff(app, clock=...)``,
        e.g. a :class:`~flask_signoff.FrozenClock`).
    """
    config = dict(test_config or {})
    instance_path = config.pop("INSTANCE_PATH", None) or os.environ.get(
        "SIGNOFF_DEMO_INSTANCE_PATH"
    )
    clock = config.pop("SIGNOFF_TEST_CLOCK", None)
    app = Flask(__name__, instance_path=instance_path)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_prefixed_env()
    app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(app.instance_path)
    if "SIGNOFF_COOKIE_SECURE" not in app.config:
        app.config["SIGNOFF_COOKIE_SECURE"] = not _plain_http_development(app)
    app.config.setdefault("SIGNOFF_CSRF_PROTECT", True)
    app.config.setdefault("SIGNOFF_LOGOUT_REDIRECT", "/login")
    app.config.setdefault("DEMO_MIN_PASSWORD_LENGTH", 8)
    database_url = app.config.get("DEMO_DATABASE_URL") or "sqlite:///" + os.path.join(
        app.instance_path, "demo-users.sqlite3"
    )
    users = UserStore(database_url, app.config.get("DEMO_ARGON2_PARAMETERS"))
    app.extensions["demo_users"] = users

    signoff = Signoff(app, clock=clock)
    signoff.login_view = "login"
    # A flashed message would put data in the session of every anonymous
    # visitor sent to the login page, and so a record in the store.
    signoff.login_message = None
    signoff.user_loader(users.get)

    @signoff.unauthorized_handler
    def unauthorized() -> Response:
        if request.path.startswith("/api/"):
            response = jsonify(error="unauthorized", message="Sign-in required.")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return redirect(url_for("login", next=_here()))

    app.register_blueprint(logout_blueprint())
    app.register_blueprint(api_tokens.bp)
    app.extensions["demo_csp"] = dict(CONTENT_SECURITY_POLICY)
    if all(app.config.get(key) for key in OIDC_SETTINGS):
        # Imported only then: Authlib serves nothing else.
        from .oidc import init_oidc

        init_oidc(app, signoff, users)
    _add_views(app, signoff, users)
    headers = {
        "Content-Security-Policy": "; ".join(
            f"{name} {value}" for name, value in app.extensions["demo_csp"].items()
        ),
        **SECURITY_HEADERS,
    }

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    return app


def _plain_http_development(app: Flask) -> bool:
    """Whether the app runs under the development server (``flask run``)."""
    return app.debug or os.environ.get("FLASK_RUN_FROM_CLI") == "true"


def _instance_secret_key(instance_path: str) -> str:
    """Read the key from ``instance/secret_key``, creating it (0600) once.

    Created through a temporary file and a hard link, which fails if the
    file exists: several workers starting at once all end up with one key.
    """
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path) as f:
        return f.read().strip()


def _here() -> str:
    full = request.full_path
    return full[:-1] if full.endswith("?") else full


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(
        timespec="seconds"
    )


def _when(timestamp: float) -> str:
    """A time for people: minutes are enough to recognise a session."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"
    )


def _add_views(app: Flask, signoff: Signoff, users: UserStore) -> None:
    def valid_password(password: str) -> bool:
        minimum = int(app.config["DEMO_MIN_PASSWORD_LENGTH"])
        return minimum <= len(password) <= MAX_PASSWORD

    def password_ok(form_field: str = "password") -> bool:
        """The signed-in user's password, if the request brings it right.

        Throttled like sign-in: a stolen session must not become a way to
        guess the password.
        """
        password = request.form.get(form_field, "")
        attempt = signoff.reserve_attempt(current_user.username)
        if password and users.check_password(current_user, password):
            attempt.succeeded()
            return True
        return False

    app.add_template_filter(_iso, "iso")
    app.add_template_filter(_when, "when")
    app.add_template_filter(device_label, "device")

    @app.route("/register", methods=["GET", "POST"])
    def register() -> t.Any:
        if request.method == "GET":
            return render_template("register.html")
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username or len(username) > MAX_USERNAME:
            error = f"Choose a username of 1 to {MAX_USERNAME} characters."
            return render_template("register.html", error=error), 400
        if not valid_password(password):
            minimum = app.config["DEMO_MIN_PASSWORD_LENGTH"]
            error = f"Choose a password of at least {minimum} characters."
            return render_template("register.html", error=error, username=username), 400
        try:
            users.create(username, password)
        except DuplicateUser:
            error = "That username is taken."
            return render_template("register.html", error=error, username=username), 409
        return redirect(url_for("login"), 303)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> t.Any:
        next_url = request.values.get("next")
        next_url = next_url if is_safe_redirect(next_url) else None
        if request.method == "GET":
            # Back from the provider's end-session endpoint, with our state.
            provider = app.extensions.get("demo_oidc")
            signed_out = provider is not None and provider.check_logout_state()
            return render_template(
                "login.html", next=next_url, signed_out_at_provider=signed_out
            )
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        # Reserved before the password is checked (429 when none is left):
        # parallel guesses cannot all slip in before one of them is counted.
        attempt = signoff.reserve_attempt(username)
        user = None
        if username and password and len(password) <= MAX_PASSWORD:
            user = users.authenticate(username, password)
        if user is None:
            error = "Wrong username or password."
            return render_template(
                "login.html", error=error, username=username, next=next_url
            ), 401
        attempt.succeeded()
        login_user(user, remember=request.form.get("remember") == "1")
        return redirect(safe_redirect_target(next_url, url_for("index")), 303)

    @app.get("/")
    @login_required
    def index() -> str:
        return render_template("index.html")

    def sessions_page(status: int = 200, error: str | None = None) -> t.Any:
        current = signoff.current_session()
        rows = signoff.sessions_for(current_user)
        return render_template(
            "sessions.html",
            sessions=rows,
            current_id=current.public_id if current is not None else None,
            fresh=login_fresh(),
            error=error,
        ), status

    def confirm_if_stale() -> t.Any:
        """``None`` if the login is fresh or the password is right; else 403."""
        if login_fresh():
            return None
        if not password_ok():
            return sessions_page(403, "Enter your password to confirm.")
        # Fresh again, under a new id, so the next action needs no password.
        confirm_login()
        return None

    @app.get("/sessions")
    @login_required
    def sessions() -> t.Any:
        return sessions_page()

    @app.post("/sessions/<public_id>/revoke")
    @login_required
    def revoke_session(public_id: str) -> t.Any:
        refused = confirm_if_stale()
        if refused is not None:
            return refused
        current = signoff.current_session()
        is_current = current is not None and current.public_id == public_id
        # Another user's session id is exactly like an unknown one: 404.
        if not signoff.revoke_session(current_user, public_id):
            abort(404)
        if is_current:
            return redirect(url_for("login"), 303)
        return redirect(url_for("sessions"), 303)

    @app.post("/sessions/revoke-others")
    @login_required
    def revoke_others() -> t.Any:
        refused = confirm_if_stale()
        if refused is not None:
            return refused
        signoff.revoke_other_sessions()
        return redirect(url_for("sessions"), 303)

    @app.route("/password", methods=["GET", "POST"])
    @login_required
    def password() -> t.Any:
        if request.method == "GET":
            return render_template("password.html")
        if not password_ok("current"):
            error = "Your current password is not right."
            return render_template("password.html", error=error), 403
        new = request.form.get("new", "")
        if not valid_password(new):
            minimum = app.config["DEMO_MIN_PASSWORD_LENGTH"]
            error = f"Choose a new password of at least {minimum} characters."
            return render_template("password.html", error=error), 400
        user: User = current_user._get_current_object()
        users.set_password(user.id, new)
        # Every other session and token ends; this one moves to a new id
        # (and is fresh: the password was just checked), bound to the new
        # hash (password_changed loads the user again: `user` has the old).
        signoff.password_changed(user)
        return redirect(url_for("sessions"), 303)

    @app.get("/api/me")
    @login_required
    def api_me() -> Response:
        return jsonify(user=current_user.username)

    @app.get("/api/sessions")
    @login_required
    def api_sessions() -> Response:
        current = signoff.current_session()
        current_id = current.public_id if current is not None else None
        return jsonify(
            [
                {
                    "id": record.public_id,
                    "created_at": _iso(record.created_at),
                    "last_seen_at": _iso(record.last_seen_at),
                    "ip": record.ip,
                    "user_agent": record.user_agent,
                    "device": device_label(record.user_agent),
                    "current": record.public_id == current_id,
                }
                for record in signoff.sessions_for(current_user)
            ]
        )
