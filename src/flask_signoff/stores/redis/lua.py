"""The Lua scripts: source files in ``scripts/``, registered once per client.

Atomicity
---------

Every operation that must be atomic (conditional save and touch, rotation,
creation with cap eviction, spending a refresh token, adding one to a live
family, revocations, throttle windows) is one Lua script. Lua rather than
WATCH/MULTI/EXEC: a script runs in one round trip and cannot lose a race,
where an optimistic transaction costs at least three round trips and must be
retried under contention (eight clients spending one refresh token would
mostly retry); scripts also work the same on a cluster, while redis-py's
cluster pipelines support transactions only in recent versions. Single-key
operations (reads, ``INCR`` of an epoch) are plain commands.

Files
-----

Each script is ``scripts/<name>.lua``, named after the store operation it
serves; its header comment states its ``KEYS``, its ``ARGV``, what it
returns and what it guarantees. ``scripts/lib.lua`` holds the functions they
share and is put in front of each, so a script's source as Redis sees it is
``lib.lua`` followed by its own file. The files ship as package data and are
read once per process (:func:`source`). :func:`register` registers every
one on a client (``register_script``: no round trip, only the SHA1 that
EVALSHA sends; redis-py sends the source itself the first time a server does
not know it), once, when the store makes its client.
"""

from __future__ import annotations

import functools
from importlib import resources

from redis.commands.core import Script

from .connection import Client

#: The file of the functions every script shares.
LIBRARY = "lib"

_PACKAGE = __name__.rpartition(".")[0]


@functools.cache
def read(name: str) -> str:
    """The text of ``scripts/<name>.lua``, as shipped in the package."""
    path = resources.files(_PACKAGE) / "scripts" / f"{name}.lua"
    return path.read_text(encoding="utf-8")


@functools.cache
def source(name: str) -> str:
    """Script ``name`` as Redis runs it: ``lib.lua``, then ``<name>.lua``."""
    return f"{read(LIBRARY)}\n{read(name)}"


#: Every script, named after the store operation it serves (but
#: ``routing_key``, for :meth:`~flask_signoff.core.store.Store.load_routing_key`,
#: and ``provider_add`` and ``provider_claim``, the two sides of
#: :meth:`~flask_signoff.core.store.Store.end_provider_sessions`;
#: ``update_session`` serves ``touch_session`` too): ``scripts/<name>.lua``.
NAMES = (
    "create_session",
    "rotate_session",
    "update_session",
    "delete_session",
    "list_sessions",
    "delete_session_by_public_id",
    "delete_user_sessions",
    "create_family",
    "add_refresh",
    "spend_refresh",
    "revoke_family",
    "revoke_user_families",
    "routing_key",
    "reserve",
    "release",
    "provider_add",
    "provider_claim",
)


def register(client: Client) -> dict[str, Script]:
    """Every script of :data:`NAMES`, registered on ``client``, by name.

    No round trip: the first call of each script on a server loads it there.
    """
    return {name: client.register_script(source(name)) for name in NAMES}
