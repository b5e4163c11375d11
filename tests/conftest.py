from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from apps import make_app
from flask_signoff import FrozenClock
from flask_signoff.core.sessions import SessionLifecycle, SessionPolicy
from flask_signoff.stores.sql import SQLStore


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "signoff.sqlite3"


@pytest.fixture
def sql_store(db_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{db_path}")
    yield store
    store.close()


@pytest.fixture
def lifecycle(sql_store: SQLStore, clock: FrozenClock) -> SessionLifecycle:
    return SessionLifecycle(sql_store, SessionPolicy(), clock)


@pytest.fixture
def app(db_path: Path, clock: FrozenClock) -> Flask:
    return make_app(db_path, clock)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()
