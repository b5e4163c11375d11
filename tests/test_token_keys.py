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
