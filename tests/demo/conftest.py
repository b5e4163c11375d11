"""Fixtures for the demo's HTTP tests: a fresh app, clients, a frozen clock."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from examples.demo import create_app
from flask_signoff import FrozenClock

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def app(instance: Path, clock: FrozenClock) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "demo-test-secret-0123456789",
            "SIGNOFF_TEST_CLOCK": clock,
            # Cheap hashes: the tests sign in hundreds of times.
            "DEMO_ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024},
        }
    )


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The csrf_token of the first form on ``path``."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, f"no csrf_token on {path}"
    return match.group(1)


def post_form(client: FlaskClient, path: str, **fields: str) -> TestResponse:
    """POST ``fields`` to ``path`` with the csrf_token its own form shows."""
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, path)})


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
