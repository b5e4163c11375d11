"""Redis store on redis-py: a standalone server or a Redis Cluster.

:class:`RedisStore` serves both: a ``redis://`` (``rediss://``, ``unix://``)
URL reaches one server, a ``redis+cluster://`` (``rediss+cluster://``) URL a
cluster. The package, in the order a newcomer would read it:

.. code-block:: text

    redis/
    ├── __init__.py     this map; what the package exports
    ├── store.py        RedisStore: the store contract, one method each
    ├── keys.py         the key layout (hash tags per user) and its table
    ├── codec.py        records to Redis hashes and back
    ├── lua.py          loads scripts/*.lua, registers them once per client;
    │                   why atomic operations are scripts
    ├── scripts/        one .lua file per atomic operation (lib.lua: shared
    │                   functions), each stating its KEYS, ARGV and guarantee
    ├── connection.py   URLs, the client (standalone or cluster), timeouts;
    │                   redis-py errors to StoreUnavailable / StoreError
    ├── checks.py       the start-up check: maxmemory-policy must not evict
    └── stats.py        the counts of `flask signoff stats`: a bounded SCAN

Everything the rest of Flask-Signoff needs is exported here; the modules
beside it are this backend's own.
"""

from __future__ import annotations

from .checks import ALLOW_EVICTION_SETTING as ALLOW_EVICTION_SETTING
from .checks import EvictionPolicy as EvictionPolicy
from .store import RedisStore as RedisStore

__all__ = ["ALLOW_EVICTION_SETTING", "EvictionPolicy", "RedisStore"]
