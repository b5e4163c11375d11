"""Fixtures shared by the whole test suite: the real servers.

Each server is started once per test session, on a free loopback port, and
stopped at the end even when tests fail. See :mod:`tests.servers`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.servers import (
    PostgresServer,
    RedisCluster,
    RedisServer,
    ServerMissing,
    missing,
    running,
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone ``redis-server``."""
    try:
        server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    except ServerMissing as e:
        missing(str(e))
    with running(server):
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters."""
    try:
        cluster = RedisCluster(str(tmp_path_factory.mktemp("redis-cluster")))
    except ServerMissing as e:
        missing(str(e))
    with running(cluster):
        yield cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server with an empty database ``signoff``."""
    try:
        # mkdtemp, not tmp_path: the server runs as another user and pytest's
        # folders are 0700 root.
        server = PostgresServer(tempfile.mkdtemp(prefix="signoff-pg-"))
    except ServerMissing as e:
        missing(str(e))
    with running(server):
        yield server
