from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_signoff import ConfigError, Signoff
from flask_signoff.extension import get_state
from flask_signoff.stores import open_store, redact_url
from tests.support import SECRET_KEY


def build(tmp_path: Path, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update({"SECRET_KEY": SECRET_KEY, "TESTING": True, **config})
    Signoff(app)
    return app


def test_defaults(tmp_path: Path) -> None:
    app = build(tmp_path)
    s = get_state(app).settings
    assert s.idle_timeout == 1800
    assert s.absolute_timeout == 12 * 3600
    assert s.remember_duration == 30 * 86400
    assert s.touch_interval == 60
    assert s.cookie_secure is True
    assert s.jwt_issuer == s.jwt_audience == app.import_name
    # In testing mode (as here) the store is a temporary file: see below.
    assert s.store_url.startswith("sqlite:///")
    assert str(tmp_path) not in s.store_url


@pytest.mark.parametrize(
    "value", [5, 5.0, "5", dt.timedelta(seconds=5)], ids=["int", "float", "str", "td"]
)
def test_durations(tmp_path: Path, value: Any) -> None:
    app = build(tmp_path, SIGNOFF_IDLE_TIMEOUT=value)
    assert get_state(app).settings.idle_timeout == 5
    assert get_state(app).settings.touch_interval == 2.5  # capped at idle/2


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SIGNOFF_IDLE_TIMEOUT", "soon", "a duration"),
        ("SIGNOFF_IDLE_TIMEOUT", -1, "a duration"),
        ("SIGNOFF_IDLE_TIMEOUT", 0, "greater than 0"),
        ("SIGNOFF_IDLE_TIMEOUT", True, "a duration"),
        ("SIGNOFF_COOKIE_SECURE", "maybe", "true or false"),
        ("SIGNOFF_MAX_SESSIONS_PER_USER", 0, "a whole number"),
        ("SIGNOFF_TRUSTED_ORIGINS", 5, "a list of strings"),
        ("SIGNOFF_JWT_ALGORITHM", "none", "a signing algorithm"),
        ("SIGNOFF_STORE_URL", "ftp://x", "a URL starting with"),
    ],
)
def test_bad_values_fail_at_init_app_naming_key_and_value(
    tmp_path: Path, key: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, **{key: value})
    message = str(info.value)
    assert key in message
    assert repr(value) in message
    assert expected in message


def test_string_forms_from_the_environment(tmp_path: Path) -> None:
    app = build(
        tmp_path,
        SIGNOFF_COOKIE_SECURE="false",
        SIGNOFF_TRUSTED_ORIGINS="https://a.example, https://b.example",
        SIGNOFF_MAX_SESSIONS_PER_USER="7",
    )
    s = get_state(app).settings
    assert s.cookie_secure is False
    assert s.trusted_origins == ("https://a.example", "https://b.example")
    assert s.max_sessions_per_user == 7


def test_store_url_password_is_not_in_messages() -> None:
    with pytest.raises(ConfigError) as info:
        open_store("ftp://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_in_memory_sqlite_is_refused(tmp_path: Path) -> None:
    from flask_signoff.exceptions import StoreError

    with pytest.raises(StoreError, match="needs a file"):
        build(tmp_path, SIGNOFF_STORE_URL="sqlite://")


def test_insecure_cookie_warns_outside_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "i"))
    app.config.update(SECRET_KEY=SECRET_KEY, SIGNOFF_COOKIE_SECURE=False)
    Signoff(app)
    assert "SIGNOFF_COOKIE_SECURE is off" in caplog.text


def _jwt_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_signoff"
        and r.levelname == "WARNING"
        and "SIGNOFF_JWT_" in r.getMessage()
    ]


def _production_app(tmp_path: Path, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path / "i"))
    app.config.update(SECRET_KEY=SECRET_KEY, **config)
    Signoff(app)
    return app


def test_default_issuer_and_audience_warn_outside_debug_and_testing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two apps named "app" (the usual import name) that share a JWT key
    # would take each other's tokens: iss and aud are what tells them apart.
    app = _production_app(tmp_path)
    (message,) = _jwt_warnings(caplog)
    assert "SIGNOFF_JWT_ISSUER" in message
    assert "SIGNOFF_JWT_AUDIENCE" in message
    assert repr(app.import_name) in message
    assert "accepted by each other" in message


def test_one_default_is_enough_to_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _production_app(tmp_path, SIGNOFF_JWT_ISSUER="https://auth.example")
    (message,) = _jwt_warnings(caplog)
    assert "SIGNOFF_JWT_AUDIENCE" in message
    assert "SIGNOFF_JWT_ISSUER" not in message


@pytest.mark.parametrize(
    "config",
    [
        {
            "SIGNOFF_JWT_ISSUER": "https://auth.example",
            "SIGNOFF_JWT_AUDIENCE": "https://api.example",
        },
        {"TESTING": True},
        {"DEBUG": True},
    ],
    ids=["set", "testing", "debug"],
)
def test_no_issuer_warning_when_set_or_in_testing_or_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, config: dict[str, Any]
) -> None:
    _production_app(tmp_path, **config)
    assert _jwt_warnings(caplog) == []


@pytest.mark.parametrize(
    ("url", "driver", "extra"),
    [
        ("redis://:hunter2@127.0.0.1:6379/0", "redis", "redis"),
        ("redis+cluster://127.0.0.1:7000", "redis", "redis"),
        ("unix:///run/redis.sock", "redis", "redis"),
        ("postgresql://app:hunter2@127.0.0.1/app", "psycopg", "postgres"),
    ],
)
def test_missing_driver_fails_at_init_app_with_the_pip_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    driver: str,
    extra: str,
) -> None:
    # None in sys.modules makes `import <driver>` raise ImportError, as on a
    # machine without the package.
    monkeypatch.setitem(sys.modules, driver, None)
    with pytest.raises(ImportError):
        __import__(driver)
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, SIGNOFF_STORE_URL=url)
    signoff = Signoff()
    with pytest.raises(ConfigError) as info:
        signoff.init_app(app)
    message = str(info.value)
    assert f"pip install 'flask-signoff[{extra}]'" in message
    assert "SIGNOFF_STORE_URL" in message
    assert f"the {driver} package" in message
    assert "hunter2" not in message
    assert "signoff" not in app.extensions


def test_unknown_store_scheme_fails_at_init_app_listing_the_known_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, SIGNOFF_STORE_URL="mysql://app:hunter2@db/app")
    message = str(info.value)
    assert "'mysql://app:***@db/app' is not valid" in message
    for scheme in ("sqlite://", "postgresql://", "redis://", "redis+cluster://"):
        assert scheme in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SIGNOFF_JWT_SECRET_KEY_FALLBACKS", 5, "a list of keys"),
        ("SIGNOFF_JWT_PUBLIC_KEYS", 5, "a list of keys"),
        ("SIGNOFF_JWT_SECRET_KEY", 5, "a string or bytes"),
    ],
)
def test_jwt_key_settings_are_checked_at_init_app(
    tmp_path: Path, key: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, **{key: value})
    assert key in str(info.value)
    assert expected in str(info.value)


def test_jwt_keys_stay_out_of_the_settings_repr(tmp_path: Path) -> None:
    key, old = "k" * 32 + "-current", "m" * 32 + "-old"
    app = build(
        tmp_path, SIGNOFF_JWT_SECRET_KEY=key, SIGNOFF_JWT_SECRET_KEY_FALLBACKS=[old]
    )
    shown = repr(get_state(app).settings)
    assert key not in shown
    assert old not in shown


# -- the default store: the instance folder, or a temporary file in tests ------


def _write_a_session(app: Flask) -> Path:
    """Store one session record; return the SQLite file it went to."""
    get_state(app).lifecycle.start_anonymous('{"x": 1}')
    path = Path(get_state(app).settings.store_url.removeprefix("sqlite:///"))
    assert path.is_file()
    return path


def test_outside_testing_mode_the_store_is_in_the_instance_folder(
    tmp_path: Path,
) -> None:
    app = build(tmp_path, TESTING=False)
    path = _write_a_session(app)
    assert path == tmp_path / "instance" / "signoff.sqlite3"


def test_testing_mode_leaves_nothing_in_the_instance_folder(tmp_path: Path) -> None:
    first, second = build(tmp_path), build(tmp_path)
    paths = {_write_a_session(first), _write_a_session(second)}
    # Each app starts empty, in a folder of its own that only it uses.
    assert len(paths) == 2
    for path in paths:
        assert not path.is_relative_to(tmp_path)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not (tmp_path / "instance").exists()


def test_an_explicit_store_url_wins_in_testing_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_temporary_folder(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("a temporary folder was made")

    monkeypatch.setattr("flask_signoff.stores.tempfile.mkdtemp", no_temporary_folder)
    url = f"sqlite:///{tmp_path}/mine.sqlite3"
    app = build(tmp_path, SIGNOFF_STORE_URL=url)
    assert _write_a_session(app) == tmp_path / "mine.sqlite3"


def test_testing_set_after_init_app_keeps_the_instance_folder(tmp_path: Path) -> None:
    # The store is chosen once, at init_app.
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY=SECRET_KEY)
    Signoff(app)
    app.config["TESTING"] = True
    assert _write_a_session(app) == tmp_path / "instance" / "signoff.sqlite3"


@pytest.mark.slow
def test_the_temporary_store_is_removed_when_the_process_exits(
    tmp_path: Path,
) -> None:
    script = (
        "import sys\n"
        "from flask import Flask\n"
        "from flask_signoff import Signoff\n"
        "from flask_signoff.extension import get_state\n"
        f"app = Flask('app', instance_path={str(tmp_path / 'instance')!r})\n"
        "app.config.update(SECRET_KEY='k', TESTING=True)\n"
        "Signoff(app)\n"
        "get_state(app).lifecycle.start_anonymous('{}')\n"
        "print(get_state(app).settings.store_url)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    url = done.stdout.strip().splitlines()[-1]
    path = Path(url.removeprefix("sqlite:///"))
    assert path.name == "signoff.sqlite3"
    assert path.parent.name.startswith("flask-signoff-")
    assert not path.parent.exists()
    assert not (tmp_path / "instance").exists()
