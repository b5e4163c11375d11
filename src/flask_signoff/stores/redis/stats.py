"""The counts of ``flask signoff stats`` on Redis: a ``SCAN``, bounded.

Redis keeps no index of every session, so counting walks the key space:
``SCAN`` with a ``MATCH`` of one kind of key (``P{????????}:s:*``), on the
server or on every master of a cluster (a cluster's ``SCAN`` sees one node
only), then one pipelined ``HMGET`` per batch of keys for the fields that
decide. It is O(n) in the keys under the prefix, but never holds the server
for long (``SCAN`` returns a few hundred keys a call, where ``KEYS`` would
block it) and keeps at most one batch of names in memory, whatever the size
of the store. ``SCAN`` may return a key twice while the server resizes its
table: the counts are for monitoring, not for accounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from redis.cluster import RedisCluster

from ...core.records import StoreStats
from .connection import Client
from .keys import KeyLayout

#: Keys asked of the server per ``SCAN`` call, and read per pipeline.
BATCH = 500


def count_live(client: Client, keys: KeyLayout, now: float) -> StoreStats:
    """Count the sessions and refresh families alive at ``now``."""
    sessions = remembered = anonymous = families = 0
    for user_id, remember, drop_at in _fields(
        client, keys.pattern("s"), ("user_id", "remember", "drop_at")
    ):
        # A key gone between SCAN and HMGET reads as all None.
        if drop_at is not None and float(drop_at) > now:
            sessions += 1
            remembered += remember == "1"
            anonymous += user_id is None
    for (expires_at,) in _fields(client, keys.pattern("f"), ("expires_at",)):
        if expires_at is not None and float(expires_at) > now:
            families += 1
    return StoreStats(sessions, remembered, anonymous, families)


def _fields(client: Client, match: str, fields: tuple[str, ...]) -> Iterator[list[Any]]:
    """``HMGET fields`` of every hash whose name matches ``match``."""
    found = _scan(client, match)
    while batch := list(islice(found, BATCH)):
        # A cluster pipeline sends each command to its key's node.
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.hmget(name, list(fields))
        yield from pipe.execute()


def _scan(client: Client, match: str) -> Iterator[str]:
    if isinstance(client, RedisCluster):
        return client.scan_iter(
            match=match, count=BATCH, target_nodes=RedisCluster.PRIMARIES
        )
    return client.scan_iter(match=match, count=BATCH)
