"""Which key signs access tokens, and how keys rotate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask, jsonify

from flask_signoff import FrozenClock, Signoff, current_user, login_required
from flask_signoff.extension import get_state
from tests.support import SECRET_KEY
from tests.support.apps import User, make_app


def private_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(private: str) -> str:
    key = serialization.load_pem_private_key(private.encode(), None)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def issue(app: Flask, user: str = "alice") -> str:
    with app.test_request_context():
        token: str = app.login_manager.issue_tokens(User(user)).access_token  # type: ignore[attr-defined]
    return token


def status(app: Flask, token: str) -> int:
    r = app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_default_key_is_a_subkey_of_secret_key(
    db_path: Path, clock: FrozenClock
) -> None:
    app = make_app(db_path, clock)
    token = issue(app)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET_KEY, algorithms=["HS256"], audience=app.import_name)
    assert status(app, token) == 200


def test_secret_key_fallbacks_rotate_the_jwt_key(
    db_path: Path, clock: FrozenClock
) -> None:
    old_app = make_app(db_path, clock)
    old_token = issue(old_app)
    new_secret = "a brand new secret key, long enough for anyone"
    rotated = make_app(
        db_path, clock, SECRET_KEY=new_secret, SECRET_KEY_FALLBACKS=[SECRET_KEY]
    )
    assert status(rotated, old_token) == 200
    new_token = issue(rotated)
    assert (
        jwt.get_unverified_header(new_token)["kid"]
        != (jwt.get_unverified_header(old_token)["kid"])
    )
    retired = make_app(db_path, clock, SECRET_KEY=new_secret)
    assert status(retired, old_token) == 401
    assert status(retired, new_token) == 200


def test_explicit_hmac_key_and_its_fallbacks(db_path: Path, clock: FrozenClock) -> None:
    first, second = "k" * 32, "m" * 32
    app = make_app(db_path, clock, SIGNOFF_JWT_SECRET_KEY=first)
    token = issue(app)
    jwt.decode(token, first, algorithms=["HS256"], audience=app.import_name)
    rotated = make_app(
        db_path,
        clock,
        SIGNOFF_JWT_SECRET_KEY=second,
        SIGNOFF_JWT_SECRET_KEY_FALLBACKS=[first],
    )
    assert status(rotated, token) == 200
    assert status(make_app(db_path, clock, SIGNOFF_JWT_SECRET_KEY=second), token) == 401


def test_short_explicit_key_is_refused_without_showing_it(
    db_path: Path, clock: FrozenClock
) -> None:
    from flask_signoff import ConfigError

    with pytest.raises(ConfigError) as info:
        make_app(db_path, clock, SIGNOFF_JWT_SECRET_KEY="short-key")
    assert "short-key" not in str(info.value)


def test_asymmetric_keys_and_rotation(db_path: Path, clock: FrozenClock) -> None:
    old_private = private_pem()
    app = make_app(
        db_path,
        clock,
        SIGNOFF_JWT_ALGORITHM="EdDSA",
        SIGNOFF_JWT_PRIVATE_KEY=old_private,
    )
    token = issue(app)
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert status(app, token) == 200
    new_private = private_pem()
    rotated = make_app(
        db_path,
        clock,
        SIGNOFF_JWT_ALGORITHM="EdDSA",
        SIGNOFF_JWT_PRIVATE_KEY=new_private,
        SIGNOFF_JWT_PUBLIC_KEYS=[public_pem(old_private)],
    )
    assert status(rotated, token) == 200
    without_old = make_app(
        db_path,
        clock,
        SIGNOFF_JWT_ALGORITHM="EdDSA",
        SIGNOFF_JWT_PRIVATE_KEY=new_private,
    )
    assert status(without_old, token) == 401


def test_secret_key_set_after_init_app(tmp_path: Path, clock: FrozenClock) -> None:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SIGNOFF_STORE_URL=f"sqlite:///{tmp_path}/s.db",
        SIGNOFF_COOKIE_SECURE=False,
    )
    signoff = Signoff(app, clock=clock)
    signoff.user_loader(User)

    @app.get("/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.get_id())

    # No key yet: a Bearer token cannot be checked, and is refused, not a 500.
    assert status(app, "a.b.c") == 401
    with app.test_request_context(), pytest.raises(RuntimeError, match="SECRET_KEY"):
        signoff.issue_tokens(User("alice"))
    app.secret_key = SECRET_KEY
    assert get_state(app).tokens.lifecycle_or_none() is not None
    assert status(app, issue(app)) == 200


# -- keys from the environment, read once ---------------------------------------


def _env_app(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Flask:
    """An app configured as a deployment is: ``from_prefixed_env()``."""
    for key, value in env.items():
        monkeypatch.setenv(f"FLASK_{key}", value)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SIGNOFF_STORE_URL=f"sqlite:///{tmp_path}/s.db",
        SIGNOFF_COOKIE_SECURE=False,
    )
    app.config.from_prefixed_env()
    signoff = Signoff(app, clock=clock)
    signoff.user_loader(User)

    @app.get("/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.get_id())

    return app


def test_jwt_key_fallbacks_from_the_environment_are_a_list(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FLASK_SIGNOFF_JWT_SECRET_KEY_FALLBACKS=<key>,<key> is not JSON, so it
    # arrives as one string: a list of keys, never a list of characters.
    first, second, third = "k" * 32, "m" * 32, "n" * 32
    old = _env_app(tmp_path, clock, monkeypatch, SIGNOFF_JWT_SECRET_KEY=first)
    token = issue(old)
    rotated = _env_app(
        tmp_path,
        clock,
        monkeypatch,
        SIGNOFF_JWT_SECRET_KEY=third,
        SIGNOFF_JWT_SECRET_KEY_FALLBACKS=f"{first}, {second}",
    )
    assert status(rotated, token) == 200
    assert status(rotated, issue(rotated)) == 200


def test_jwt_public_keys_from_the_environment_are_whole_pems(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PEM has spaces and newlines: split into words it is no key at all.
    first, second, newest = private_pem(), private_pem(), private_pem()
    tokens = []
    for private in (first, second):
        monkeypatch.setenv("FLASK_SIGNOFF_JWT_PUBLIC_KEYS", "[]")
        app = _env_app(
            tmp_path,
            clock,
            monkeypatch,
            SIGNOFF_JWT_ALGORITHM="EdDSA",
            SIGNOFF_JWT_PRIVATE_KEY=private,
        )
        tokens.append(issue(app))
    one = _env_app(
        tmp_path,
        clock,
        monkeypatch,
        SIGNOFF_JWT_ALGORITHM="EdDSA",
        SIGNOFF_JWT_PRIVATE_KEY=newest,
        SIGNOFF_JWT_PUBLIC_KEYS=public_pem(second),
    )
    assert [status(one, token) for token in tokens] == [401, 200]
    both = _env_app(
        tmp_path,
        clock,
        monkeypatch,
        SIGNOFF_JWT_ALGORITHM="EdDSA",
        SIGNOFF_JWT_PRIVATE_KEY=newest,
        SIGNOFF_JWT_PUBLIC_KEYS=public_pem(first) + public_pem(second),
    )
    assert [status(both, token) for token in tokens] == [200, 200]


def test_the_key_set_is_read_once(db_path: Path, clock: FrozenClock) -> None:
    # Keys are read at init_app (or at the first token once SECRET_KEY is
    # set): changing the config of a running app does not change them, and
    # no request pays for comparing the config with what was read.
    app = make_app(db_path, clock)
    token = issue(app)
    assert status(app, token) == 200
    app.config["SECRET_KEY"] = "a brand new secret key, long enough for anyone"
    assert status(app, token) == 200
    later = issue(app)
    assert (
        jwt.get_unverified_header(later)["kid"]
        == (jwt.get_unverified_header(token)["kid"])
    )
    assert status(app, later) == 200
