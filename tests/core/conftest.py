"""Fixtures of the core tests: a real SQLite store, keys, tokens.

The core runs on SQLite here (``store`` overrides the backend-parametrized
fixture of ``tests/conftest.py``); ``clock`` is the shared frozen clock of
``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.keys import JWTKey, KeySet
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.core.tokens import TokenLifecycle, TokenPolicy
from flask_signoff.stores.sql import SQLStore
from tests.support import AUDIENCE, ISSUER, SECRET_KEY
from tests.support.counting import CountingStore


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'signoff.sqlite3'}"


@pytest.fixture
def store(db_url: str) -> Iterator[SQLStore]:
    s = SQLStore(db_url)
    yield s
    s.close()


@pytest.fixture
def keys() -> KeySet:
    return KeySet([JWTKey.from_secret_key(SECRET_KEY)])


@pytest.fixture
def policy() -> TokenPolicy:
    return TokenPolicy(issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def tokens(
    store: SQLStore, keys: KeySet, policy: TokenPolicy, clock: FrozenClock
) -> TokenLifecycle:
    return TokenLifecycle(store, keys, policy, clock)


@pytest.fixture
def sessions(store: SQLStore, clock: FrozenClock) -> SessionLifecycle:
    return SessionLifecycle(store, SessionPolicy(), clock)


@pytest.fixture
def counting(store: SQLStore) -> CountingStore:
    return CountingStore(store)


@pytest.fixture(scope="session")
def rsa_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed25519_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate()
