"""Flask-Login's API on Flask-Signoff: migrating is an import change."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import logging
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

import flask_login
import pytest
from flask import Blueprint, Flask, get_flashed_messages, jsonify, session

import flask_signoff
from flask_signoff import (
    AnonymousUserMixin,
    ConfigError,
    FlaskLoginClient,
    FrozenClock,
    LoginManager,
    Signoff,
    UserMixin,
    confirm_login,
    current_user,
    decode_cookie,
    encode_cookie,
    login_fresh,
    login_remembered,
    login_required,
    login_url,
    login_user,
    make_next_param,
    set_login_view,
    user_accessed,
    user_logged_in,
    user_logged_out,
    user_login_confirmed,
    user_needs_refresh,
    user_unauthorized,
)
from tests.support import SECRET_KEY
from tests.support.apps import User, make_app
from tests.support.backends import count_rows

#: Flask-Login 0.6's public names, from the release itself.
FLASK_LOGIN_06_NAMES = set(flask_login.__all__) - {"__version__"}

#: Private names of ``flask_login.utils`` that code imports all the same.
FLASK_LOGIN_06_PRIVATE = {
    "utils": {"_get_user", "_secret_key", "_user_context_processor"},
}


def _defined_names(module: ModuleType) -> set[str]:
    """The public names ``module`` defines itself (not those it imports)."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def _flask_login_submodules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules(flask_login.__path__)
        if not info.name.startswith("_")
    )


def test_flask_login_submodules_are_there() -> None:
    # Replacing "flask_login" with "flask_signoff" must be the whole change,
    # "from flask_login.login_manager import LoginManager" included.
    assert _flask_login_submodules() == [
        "config",
        "login_manager",
        "mixins",
        "signals",
        "test_client",
        "utils",
    ]
    for name in _flask_login_submodules():
        theirs = importlib.import_module(f"flask_login.{name}")
        ours = importlib.import_module(f"flask_signoff.{name}")
        wanted = _defined_names(theirs) | FLASK_LOGIN_06_PRIVATE.get(name, set())
        missing = {n for n in wanted if not hasattr(ours, n)}
        assert not missing, f"flask_signoff.{name} lacks {sorted(missing)}"


def test_flask_login_constants_keep_their_values() -> None:
    import flask_login.config

    import flask_signoff.config

    for name in _defined_names(flask_login.config):
        assert getattr(flask_signoff.config, name) == getattr(
            flask_login.config, name
        ), name


def test_config_module_still_reads_settings() -> None:
    # flask_signoff.config is also the settings module: both live in it.
    import flask_signoff.config

    assert flask_signoff.config.Settings is not None
    assert "SIGNOFF_REMEMBER_DURATION" in flask_signoff.config.DEFAULTS
    assert "USE_SESSION_FOR_NEXT" not in flask_signoff.config.DEFAULTS


def test_every_flask_login_name_is_importable() -> None:
    missing = {n for n in FLASK_LOGIN_06_NAMES if not hasattr(flask_signoff, n)}
    assert not missing


def test_all_is_sorted_and_complete() -> None:
    # isort-style, as ruff keeps it: CONSTANTS, then Classes, then functions.
    def kind(name: str) -> tuple[int, str]:
        rank = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return rank, name

    assert flask_signoff.__all__ == sorted(flask_signoff.__all__, key=kind)
    public = {
        name
        for name, value in vars(flask_signoff).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("flask_signoff")
    }
    assert public <= set(flask_signoff.__all__)
    assert set(flask_signoff.__all__) >= FLASK_LOGIN_06_NAMES


def test_login_manager_is_signoff() -> None:
    assert LoginManager is Signoff
    manager = LoginManager()
    for attribute in (
        "login_view",
        "blueprint_login_views",
        "login_message",
        "login_message_category",
        "refresh_view",
        "needs_refresh_message",
        "anonymous_user",
        "session_protection",
        "localize_callback",
    ):
        assert hasattr(manager, attribute), attribute


def test_init_app_later_and_login_manager_attribute(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SIGNOFF_STORE_URL=f"sqlite:///{tmp_path}/s.db",
        TESTING=True,
    )
    manager = LoginManager()
    manager.init_app(app)
    assert app.login_manager is manager  # type: ignore[attr-defined]
    assert app.extensions["signoff"].manager is manager
    assert not hasattr(manager, "app")


@pytest.mark.parametrize("user_id", ["", None], ids=["empty", "none"])
def test_login_user_refuses_an_empty_or_missing_id(
    app: Flask, db_path: Path, user_id: str | None
) -> None:
    # An empty id would sign in as "": a user_loader that looks "" up may
    # find an account, and every such sign-in would share one identity.
    class NoId(User):
        def get_id(self) -> str | None:
            return user_id

    with (
        app.test_request_context("/"),
        pytest.raises(ValueError, match=r"get_id\(\)") as refused,
    ):
        login_user(NoId("x"))
    assert repr(user_id) in str(refused.value)
    assert count_rows(db_path) == 0


def test_mixins() -> None:
    a1, a2, b = User("a"), User("a"), User("b")
    assert a1 == a2
    assert a1 != b
    assert a1.is_authenticated
    assert not a1.is_anonymous
    anon = AnonymousUserMixin()
    assert not anon.is_authenticated
    assert anon.is_anonymous
    assert anon.get_id() is None

    class NoId(UserMixin):
        pass

    with pytest.raises(NotImplementedError):
        NoId().get_id()


def test_login_view_redirects_with_next_and_flashes(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(db_path, clock)

    @app.get("/login")
    def login_page() -> Any:
        return jsonify(messages=get_flashed_messages())

    app.login_manager.login_view = "login_page"  # type: ignore[attr-defined]
    client = app.test_client()
    r = client.get("/me?x=1")
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=%2Fme%3Fx%3D1"
    assert client.get("/login").json == {"messages": [flask_signoff.LOGIN_MESSAGE]}


def test_json_clients_get_401_json(app: Flask) -> None:
    app.login_manager.login_view = "somewhere"  # type: ignore[attr-defined]
    r = app.test_client().get("/me", headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.json == {"error": "unauthorized", "message": "Sign-in required."}


def test_no_login_view_is_401(client: Any) -> None:
    assert client.get("/me").status_code == 401


def test_unauthorized_handler_and_signal(app: Flask, client: Any) -> None:
    seen: list[Any] = []
    app.login_manager.unauthorized_handler(lambda: ("go away", 418))  # type: ignore[attr-defined]
    with user_unauthorized.connected_to(lambda sender: seen.append(sender)):
        assert client.get("/me").status_code == 418
    assert seen == [app]


def test_blueprint_login_views(db_path: Path, clock: FrozenClock) -> None:
    app = make_app(db_path, clock)
    bp = Blueprint("admin", __name__)

    @bp.get("/admin")
    @login_required
    def admin() -> str:
        return "admin"

    app.register_blueprint(bp)

    @app.get("/admin-login")
    def admin_login() -> str:
        return "login"

    with app.test_request_context():
        set_login_view("admin_login", blueprint=bp)
    r = app.test_client().get("/admin")
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/admin-login?next=")


def test_login_disabled(db_path: Path, clock: FrozenClock) -> None:
    app = make_app(db_path, clock, LOGIN_DISABLED=True)
    assert app.test_client().get("/me").status_code == 200


def test_login_required_on_async_views(app: Flask, client: Any) -> None:
    @app.get("/async")
    @login_required
    async def async_view() -> Any:
        return jsonify(user=current_user.get_id())

    assert client.get("/async").status_code == 401
    client.post("/login/alice")
    assert client.get("/async").json == {"user": "alice"}


def test_fresh_login_required_and_confirm_login(
    app: Flask, client: Any, clock: FrozenClock
) -> None:
    calls: list[str] = []

    @app.post("/confirm")
    def confirm() -> Any:
        confirm_login()
        return jsonify(fresh=login_fresh())

    client.post("/login/alice")
    assert client.get("/fresh").status_code == 200
    clock.advance(11 * 60)
    with user_needs_refresh.connected_to(lambda s: calls.append("refresh")):
        assert client.get("/fresh").status_code == 401
    assert calls == ["refresh"]
    old = client.get_cookie("session").value
    with user_login_confirmed.connected_to(lambda s: calls.append("confirmed")):
        assert client.post("/confirm").json == {"fresh": True}
    assert calls == ["refresh", "confirmed"]
    assert client.get_cookie("session").value != old  # confirm rotates the id
    assert client.get("/fresh").status_code == 200


def test_login_remembered(app: Flask) -> None:
    with app.test_request_context():
        users = app.extensions["test_users"]
        assert login_remembered() is False
        login_user(users["alice"], remember=True)
        assert login_remembered() is True
        login_user(users["alice"])
        assert login_remembered() is False


def test_signals_on_login_and_logout(app: Flask, client: Any) -> None:
    events: list[tuple[str, Any]] = []

    def on_in(sender: Any, user: Any) -> None:
        events.append(("in", user.get_id()))

    def on_out(sender: Any, user: Any) -> None:
        events.append(("out", user.get_id()))

    with user_logged_in.connected_to(on_in), user_logged_out.connected_to(on_out):
        client.post("/login/alice")
        client.post("/logout")
    assert events == [("in", "alice"), ("out", "alice")]


def test_user_loader_called_once_per_request(app: Flask, client: Any) -> None:
    loads: list[str] = []
    original = app.login_manager._user_callback  # type: ignore[attr-defined]

    def counting(user_id: str) -> Any:
        loads.append(user_id)
        return original(user_id)

    app.login_manager._user_callback = counting  # type: ignore[attr-defined]

    @app.get("/twice")
    def twice() -> Any:
        return jsonify(a=current_user.get_id(), b=current_user.is_authenticated)

    client.post("/login/alice")
    accessed: list[Any] = []
    with user_accessed.connected_to(lambda s: accessed.append(s)):
        assert client.get("/twice").json == {"a": "alice", "b": True}
    assert loads == ["alice"]
    assert len(accessed) == 1


def test_request_loader(app: Flask) -> None:
    @app.login_manager.request_loader  # type: ignore[attr-defined]
    def from_api_key(request: Any) -> Any:
        key = request.args.get("api_key")
        return User("robot") if key == "k" else None

    client = app.test_client()
    assert client.get("/me?api_key=k").json == {"user": "robot"}
    assert client.get("/me?api_key=bad").status_code == 401


def test_flask_login_client(app: Flask) -> None:
    app.test_client_class = FlaskLoginClient
    client = app.test_client(user=User("alice"))
    assert client.get("/me").json == {"user": "alice"}
    stale = app.test_client(user=User("alice"), fresh_login=False)
    assert stale.get("/fresh").status_code == 401


def test_url_helpers(app: Flask) -> None:
    assert make_next_param("/login", "http://localhost/a?b=1") == "/a?b=1"
    assert (
        make_next_param("https://sso.example/login", "http://localhost/a")
        == "http://localhost/a"
    )
    with app.test_request_context():
        assert login_url("/login", "/x") == "/login?next=%2Fx"
        assert login_url("/login?lang=fr", "/x") == "/login?lang=fr&next=%2Fx"
        assert login_url("public") == "/public"


def test_encode_decode_cookie(app: Flask) -> None:
    with app.app_context():
        signed = encode_cookie("alice")
        assert decode_cookie(signed) == "alice"
        assert decode_cookie(signed.replace("alice", "admin")) is None
        assert decode_cookie("no-digest") is None


def test_current_user_outside_a_request_is_none() -> None:
    assert current_user._get_current_object() is None


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/", True),
        ("/sessions?x=1", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("javascript:alert(1)", False),
        ("/\tevil", False),
        ("", False),
        (None, False),
        ("evil", False),
        ("/%2F%2Fevil", True),
    ],
)
def test_is_safe_redirect(target: str | None, safe: bool) -> None:
    assert flask_signoff.is_safe_redirect(target) is safe
    assert flask_signoff.safe_redirect_target(target, "/home") == (
        target if safe else "/home"
    )


def test_flask_login_utils_names_are_in_utils(app: Flask) -> None:
    import flask_signoff.utils as utils

    assert utils.current_user is current_user
    assert utils.login_user is login_user
    with app.test_request_context():
        assert utils._get_user() is current_user._get_current_object()
        assert utils._secret_key() == SECRET_KEY.encode()
        assert utils._secret_key("k") == b"k"
        assert utils._user_context_processor() == {
            "current_user": current_user._get_current_object()
        }


def _login_page(app: Flask) -> None:
    @app.get("/login")
    def login_page() -> Any:
        return jsonify(next=session.get("next"))


def test_use_session_for_next_keeps_next_out_of_the_url(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(db_path, clock, USE_SESSION_FOR_NEXT=True)
    _login_page(app)
    app.login_manager.login_view = "login_page"  # type: ignore[attr-defined]
    app.login_manager.refresh_view = "login_page"  # type: ignore[attr-defined]
    client = app.test_client()
    r = client.get("/me?x=1")
    assert r.status_code == 302
    assert r.headers["Location"] == "/login"
    assert client.get("/login").json == {"next": "/me?x=1"}
    client.post("/login/alice")
    clock.advance(11 * 60)
    r = client.get("/fresh")
    assert r.headers["Location"] == "/login"
    assert client.get("/login").json == {"next": "/fresh"}


@pytest.mark.parametrize(
    ("view", "next_url"),
    [
        ("/login", "/x?y=1"),
        ("/login", "http://localhost/x"),
        ("/login?lang=fr", "/x"),
        ("https://sso.example/login", "http://localhost/x"),
        ("public", None),
    ],
)
def test_login_url_honours_force_host_for_redirects(
    app: Flask, view: str, next_url: str | None
) -> None:
    app.config["FORCE_HOST_FOR_REDIRECTS"] = "app.example"
    with app.test_request_context():
        expected = flask_login.login_url(view, next_url)
        assert login_url(view, next_url) == expected
    if next_url is not None:
        assert "app.example" in expected


def test_request_loader_alone_after_a_session_exists(app: Flask) -> None:
    # An app that authenticates by request_loader only, yet signs a user in
    # (or whose session carries a user from before): Flask-Login falls back
    # to the request loader, it must not be a 500.
    manager = app.login_manager  # type: ignore[attr-defined]
    manager._user_callback = None

    @manager.request_loader
    def from_api_key(request: Any) -> Any:
        return User("robot") if request.args.get("api_key") == "k" else None

    client = app.test_client()
    assert client.post("/login/alice").json == {"ok": True}
    assert client.get("/me?api_key=k").json == {"user": "robot"}
    assert client.get("/me").status_code == 401
    # The session's freshness is alice's password check, not the robot's.
    assert client.get("/fresh?api_key=k").status_code == 401


def test_request_loader_when_the_session_user_is_gone(app: Flask) -> None:
    @app.login_manager.request_loader  # type: ignore[attr-defined]
    def from_api_key(request: Any) -> Any:
        return User("robot") if request.args.get("api_key") == "k" else None

    client = app.test_client()
    client.post("/login/alice")
    del app.extensions["test_users"]["alice"]
    assert client.get("/me?api_key=k").json == {"user": "robot"}
    assert client.get("/me").status_code == 401


def test_remember_cookie_duration_sets_the_remember_duration(
    db_path: Path, clock: FrozenClock
) -> None:
    from flask_signoff.state import get_state

    app = make_app(db_path, clock, REMEMBER_COOKIE_DURATION=dt.timedelta(days=2))
    assert get_state(app).settings.remember_duration == 2 * 86400
    app = make_app(db_path, clock, REMEMBER_COOKIE_DURATION=3600)
    assert get_state(app).settings.remember_duration == 3600
    app = make_app(
        db_path,
        clock,
        REMEMBER_COOKIE_DURATION=3600,
        SIGNOFF_REMEMBER_DURATION=7200,
    )
    assert get_state(app).settings.remember_duration == 7200
    with pytest.raises(ConfigError, match="REMEMBER_COOKIE_DURATION"):
        make_app(db_path, clock, REMEMBER_COOKIE_DURATION="a year")


def test_one_warning_names_the_flask_login_settings_ignored(
    db_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_signoff"):
        make_app(
            db_path,
            clock,
            REMEMBER_COOKIE_NAME="rt",
            REMEMBER_COOKIE_DOMAIN=".example",
            SESSION_PROTECTION="strong",
            REMEMBER_COOKIE_DURATION=60,
            USE_SESSION_FOR_NEXT=True,
        )
    found = [r.getMessage() for r in caplog.records if "Flask-Login" in r.getMessage()]
    assert len(found) == 1
    for name in (
        "REMEMBER_COOKIE_NAME",
        "REMEMBER_COOKIE_DOMAIN",
        "SESSION_PROTECTION",
    ):
        assert name in found[0]
    # Those honoured are not named.
    assert "REMEMBER_COOKIE_DURATION" not in found[0]
    assert "USE_SESSION_FOR_NEXT" not in found[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flask_signoff"):
        make_app(db_path, clock)
    assert not [r for r in caplog.records if "Flask-Login" in r.getMessage()]


def test_a_str_secret_key_signs_as_in_flask_login(app: Flask) -> None:
    # Flask-Login encodes a str SECRET_KEY as Latin-1: values it signed with
    # a key of such characters must still decode, and sign alike.
    import flask_login.utils

    from flask_signoff import utils

    key = "cl\xe9\x9e\x8f\x14"
    assert utils._secret_key(key) == b"cl\xe9\x9e\x8f\x14"
    app.config["SECRET_KEY"] = key
    with app.app_context():
        assert utils._secret_key() == flask_login.utils._secret_key()
        theirs = flask_login.utils.encode_cookie("alice")
        assert encode_cookie("alice") == theirs
        assert decode_cookie(theirs) == "alice"
    # Beyond Latin-1, where Flask-Login fails, the key is UTF-8.
    cyrillic = "\u043a\u043b\u044e\u0447"
    assert utils._secret_key(cyrillic) == cyrillic.encode("utf-8")


def test_no_loader_at_all_is_an_error_not_an_anonymous_user(tmp_path: Path) -> None:
    # Without a user_loader or a request_loader nobody can ever be signed
    # in: say so, as Flask-Login does, rather than serve everyone as
    # anonymous.
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SIGNOFF_STORE_URL=f"sqlite:///{tmp_path}/s.db",
        TESTING=True,
    )
    LoginManager(app)
    missing = "Missing user_loader or request_loader"
    with app.test_request_context(), pytest.raises(RuntimeError, match=missing):
        current_user.is_authenticated  # noqa: B018


@pytest.mark.parametrize("duration", ["123", True, [60]])
def test_login_user_refuses_a_duration_that_is_not_one(
    app: Flask, db_path: Path, duration: Any
) -> None:
    # Flask-Login takes a timedelta only; numbers of seconds are ours. A
    # string is neither, whatever it holds.
    with app.test_request_context():
        with pytest.raises(TypeError, match=r"duration must be a datetime\.timedelta"):
            login_user(User("alice"), remember=True, duration=duration)
        assert not current_user.is_authenticated
    assert count_rows(db_path) == 0


@pytest.mark.parametrize("duration", [dt.timedelta(hours=7), 7 * 3600, 7 * 3600.0])
def test_login_user_takes_a_timedelta_or_seconds(app: Flask, duration: Any) -> None:
    with app.test_request_context():
        assert login_user(User("alice"), remember=True, duration=duration)
        record = flask_signoff.login.signoff_session().record
        assert record is not None
        assert record.expires_at - record.created_at == pytest.approx(7 * 3600)
