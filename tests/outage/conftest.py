"""Servers of our own for the outage tests, which stop and freeze them.

The session-wide servers of ``tests/conftest.py`` are shared with the rest of
the suite, so these tests start their own: a Redis that keeps its data on
disk across a restart (append-only file, synced on every write) and a
PostgreSQL cluster. Both are stopped at the end whatever happened, frozen or
not.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.support.servers import PostgresServer, RedisServer, started

#: ``SIGNOFF_STORE_TIMEOUT`` in these tests, in seconds.
STORE_TIMEOUT = 1.0


@pytest.fixture(scope="package")
def outage_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = str(tmp_path_factory.mktemp("redis"))
    with started(lambda: RedisServer(directory, persistent=True)) as server:
        yield server


@pytest.fixture(scope="package")
def outage_postgres() -> Iterator[PostgresServer]:
    with started(lambda: PostgresServer(tempfile.mkdtemp(prefix="signoff-pg-"))) as pg:
        yield pg
