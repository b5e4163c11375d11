"""Reaching Redis: URLs, the redis-py client, and what its errors mean.

URLs
----

``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS) and
``unix:///path/to/redis.sock?db=0`` reach one server (or a proxy).
``redis+cluster://[user:password@]host:port`` (``rediss+cluster://`` with TLS)
reaches a Redis Cluster through any one of its nodes; the client learns the
others from it. A separate scheme, rather than a query flag, makes the choice
visible at a glance and keeps ``redis://`` URLs meaning what redis-py says.

Failures
--------

Socket connect and read timeouts are ``timeout`` seconds. Commands are not
retried by the client: retrying a write after a timeout could apply it twice
(spend a refresh token twice, bump an epoch twice). Any connection, timeout or
cluster-state error, and the replies of a server that is up but refuses
writes (``OOM`` at ``maxmemory`` under ``noeviction``, ``MISCONF``,
``NOREPLICAS``, ``BUSY``, ``READONLY``), becomes
:class:`~flask_signoff.exceptions.StoreUnavailable`; any other Redis error
:class:`~flask_signoff.exceptions.StoreError`. :func:`guarded` is the one
place that says so; both name the backend and the store operation.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from typing import TypeVar

import redis
import redis.exceptions as rexc
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from ...exceptions import StoreError, StoreUnavailable

T = TypeVar("T")

#: A client of one server or of a cluster.
Client = redis.Redis | RedisCluster

#: URL schemes of a Redis Cluster, and what redis-py calls them.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: Errors that mean "Redis is not reachable or not serving", not "wrong call".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.ReadOnlyError,
    rexc.OutOfMemoryError,
    rexc.RedisClusterException,
    OSError,
)

#: Everything redis-py raises (RedisClusterException is no RedisError).
_CAUGHT: tuple[type[BaseException], ...] = (rexc.RedisError, *_UNAVAILABLE)

#: Error replies of a server that is up but not serving writes: failing to
#: persist (``stop-writes-on-bgsave-error``), short of replicas
#: (``min-replicas-to-write``), busy running a script, or without its master.
#: redis-py has no class for them; they are plain ``ResponseError``.
_UNAVAILABLE_REPLIES = ("MISCONF ", "NOREPLICAS ", "BUSY ", "MASTERDOWN ")


class Target:
    """Where a store URL points: one server or a cluster.

    :param url: a store URL (see the module docstring).
    """

    __slots__ = ("backend", "cluster", "url")

    def __init__(self, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        #: True for a Redis Cluster.
        self.cluster = scheme.lower() in CLUSTER_SCHEMES
        #: The URL as redis-py reads it.
        self.url = (
            f"{CLUSTER_SCHEMES[scheme.lower()]}{sep}{rest}" if self.cluster else url
        )
        #: What errors name the store: ``"redis"`` or ``"redis-cluster"``.
        self.backend = "redis-cluster" if self.cluster else "redis"

    def connect(self, timeout: float) -> Client:
        """A new client. It touches the network on its first command only,
        but for a cluster's, which reads the slot map when it is made.

        :param timeout: seconds to connect and to wait for any reply.
        """
        options = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": True,
        }
        if self.cluster:
            return RedisCluster.from_url(self.url, **options)
        return redis.Redis.from_url(self.url, **options)


def read_hash(client: Client, name: str) -> dict[str, str] | list[str]:
    """``HGETALL name``: a mapping, or ``[field, value, ...]`` as the
    protocol's reply has it (:meth:`.codec.HashCodec.decode` takes both).

    On one server, straight on a pooled connection: a session is read on
    every request, and redis-py's per-command machinery (retry wrapper,
    observability hooks, reply callback) costs more than the round trip's
    own work here. Errors are redis-py's, as :func:`guarded` expects; a
    connection that failed mid-reply is closed, never reused.
    """
    if isinstance(client, RedisCluster) or client.connection is not None:
        return t.cast("dict[str, str]", client.hgetall(name))
    pool = client.connection_pool
    try:
        conn = pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants the command's name
        conn = pool.get_connection("HGETALL")
    try:
        conn.send_command("HGETALL", name)  # type: ignore[no-untyped-call]
        reply = conn.read_response()
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)
    return t.cast("dict[str, str] | list[str]", reply)


def is_unavailable_reply(error: BaseException) -> bool:
    """Whether ``error`` is the reply of a server that is up but refuses to
    serve (``MISCONF``, ``NOREPLICAS``, ``BUSY``, ``MASTERDOWN``)."""
    return isinstance(error, rexc.ResponseError) and str(error).startswith(
        _UNAVAILABLE_REPLIES
    )


def store_error(error: BaseException, *, backend: str, operation: str) -> StoreError:
    """The store error that a redis-py error (or an ``OSError``) stands for.

    :class:`~flask_signoff.exceptions.StoreUnavailable` when Redis cannot be
    reached or refuses to serve (callers fail closed), else
    :class:`~flask_signoff.exceptions.StoreError`.

    :param backend: ``"redis"`` or ``"redis-cluster"``.
    :param operation: the store method that failed (``"get_session"``).
    """
    if isinstance(error, _UNAVAILABLE):
        return StoreUnavailable(
            f"The session store is unavailable: {type(error).__name__}",
            backend=backend,
            operation=operation,
        )
    if is_unavailable_reply(error):
        return StoreUnavailable(
            f"The session store is not serving: {str(error).partition(' ')[0]}",
            backend=backend,
            operation=operation,
        )
    return StoreError(f"The session store ({backend} {operation}()) failed: {error}")


def guarded(fn: Callable[[], T], backend: str, operation: str) -> T:
    """Return ``fn()``; a redis-py error leaves as :func:`store_error` says."""
    try:
        return fn()
    except _CAUGHT as e:
        raise store_error(e, backend=backend, operation=operation) from e
