"""Fixtures for the demo's HTTP tests: a fresh app, clients, users.

The ``app`` fixture runs every test that uses it once per store backend
(the ``backend`` fixture of ``tests/conftest.py``): SQLite (the default, a
file in the instance folder), Redis, a Redis Cluster and PostgreSQL. The
servers are started once per test session; each test gets a namespace of
its own (a new key prefix on Redis, a new table prefix on PostgreSQL), so
no test sees another's records and no server is restarted or flushed
between tests. The helpers (``PASSWORD``, ``csrf_token``, ``post_form``,
``count_sessions``...) are in :mod:`tests.support.demo` and
:mod:`tests.support.forms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_signoff import FrozenClock
from tests.support.backends import Backend
from tests.support.demo import PASSWORD, close_demo, open_demo
from tests.support.forms import csrf_token, post_form


@pytest.fixture
def app(instance: Path, clock: FrozenClock, backend: Backend) -> Iterator[Flask]:
    """The demo on ``backend``, closed after the test."""
    app = open_demo(instance, clock, **backend.config)
    yield app
    close_demo(app)


@pytest.fixture
def register(app: Flask) -> Callable[[str], None]:
    def register(username: str, password: str = PASSWORD) -> None:
        response = post_form(
            app.test_client(), "/register", username=username, password=password
        )
        assert response.status_code == 303

    return register


@pytest.fixture
def login(app: Flask, register: Callable[[str], None]) -> Callable[..., FlaskClient]:
    """``login("alice")``: a new client signed in as alice (registered once)."""
    known: set[str] = set()

    def login(
        username: str = "alice", *, remember: bool = False, user_agent: str = "Werkzeug"
    ) -> FlaskClient:
        if username not in known:
            register(username)
            known.add(username)
        client = app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = user_agent
        data = {
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_token(client),
        }
        if remember:
            data["remember"] = "1"
        response = client.post("/login", data=data)
        assert response.status_code == 303
        return client

    return login
