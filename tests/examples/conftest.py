"""Fixtures for the tests of the migration examples under ``examples/``.

Each example is one app twice, on the extension it moves from (``before``)
and on Flask-Signoff (``after``). ``version`` runs a test once per app, and
``place`` once per place where the app keeps its state:

- ``local``: what needs no server (Flask-Session's cachelib file cache, a
  SQLite store), so the fast run covers the examples too;
- ``redis_server``: the tests' real Redis server, what the examples use by
  default and what most Flask-Session and Flask-JWT-Extended apps run on
  (a test there is ``slow``, marked by ``tests/conftest.py``). Each test
  gets key prefixes of its own.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_signoff.state import get_state

_counter = itertools.count()


@dataclasses.dataclass
class Place:
    """Where a test's apps keep their state."""

    name: str
    tmp_path: Path
    #: The Redis server's URL, or ``None`` for the local place.
    redis_url: str | None = None
    #: The key prefix of this test on the Redis server.
    prefix: str = ""

    def redis(self) -> Any:
        """A client of our own on the Redis server."""
        import redis

        assert self.redis_url is not None
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


@pytest.fixture(params=["local", "redis_server"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "local":
        return Place("local", tmp_path)
    server = request.getfixturevalue("redis_server")
    return Place("redis", tmp_path, server.url, f"x{next(_counter)}:")


@pytest.fixture(params=["before", "after"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def close_app(app: Flask) -> None:
    """Close the connections an example app opened."""
    if "signoff" in app.extensions:
        get_state(app).store.close()
    for client in (
        app.config.get("SESSION_REDIS"),
        app.extensions.get("jwt_blocklist"),
    ):
        if client is not None:
            client.close()


@pytest.fixture
def open_apps() -> Iterator[Callable[[Flask], Flask]]:
    """``keep(app)``: close ``app``'s connections after the test."""
    apps: list[Flask] = []

    def keep(app: Flask) -> Flask:
        apps.append(app)
        return app

    yield keep
    for app in apps:
        close_app(app)
