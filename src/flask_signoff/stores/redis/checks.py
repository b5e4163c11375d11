"""The start-up check: a Redis that may evict keys is refused.

Revocation markers and epochs are ordinary keys. A Redis that evicts keys
when it reaches ``maxmemory`` (any ``maxmemory-policy`` but ``noeviction``,
common on a server shared with a cache) may drop them, and a revoked token
then works again. :func:`eviction_policies` reads the policy of the server,
or of every master of a cluster, and :func:`check_policies` refuses anything
else unless the store was made with ``allow_eviction``
(:data:`ALLOW_EVICTION_SETTING`): the extension runs the check, through
:meth:`RedisStore.check_config <flask_signoff.stores.redis.RedisStore.check_config>`,
before serving anything. Under ``noeviction`` a full Redis refuses writes
with ``OOM``, which fails closed (:mod:`.connection`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import redis.exceptions as rexc
from redis.cluster import RedisCluster

from ...exceptions import ConfigError
from .connection import Client, is_unavailable_reply

#: The setting that lets a store start on a Redis that may evict keys.
ALLOW_EVICTION_SETTING = "SIGNOFF_REDIS_ALLOW_EVICTION"

_NOEVICTION = "noeviction"
_FIX = (
    "run `CONFIG SET maxmemory-policy noeviction` on it and put "
    "`maxmemory-policy noeviction` in its redis.conf (or your service's "
    "parameters), so that it survives a restart"
)
_OPT_OUT = (
    "If your service does not let you check or change it, set "
    f"{ALLOW_EVICTION_SETTING} = True: you then guarantee yourself that this "
    "Redis never evicts keys (maxmemory-policy noeviction in the service's "
    "settings)."
)


class EvictionPolicy(NamedTuple):
    """The ``maxmemory-policy`` of one Redis server (a master of a cluster)."""

    #: ``host:port`` (or the socket path) of the server.
    node: str
    #: The policy, or ``None`` if it could not be read.
    policy: str | None
    #: Why it could not be read (the server's error reply).
    error: str | None = None

    def __str__(self) -> str:
        if self.policy is not None:
            return f"Redis {self.node} has maxmemory-policy {self.policy!r}"
        return (
            f"the maxmemory-policy of Redis {self.node} could not be read "
            f"({self.error})"
        )


def eviction_policies(client: Client) -> list[EvictionPolicy]:
    """Read ``maxmemory-policy`` on the server, or on every cluster master.

    A refused ``CONFIG GET`` (renamed away, no ACL permission) gives a
    policy of ``None`` with the server's reply. Any other redis-py error
    propagates, for the store to translate.
    """
    if isinstance(client, RedisCluster):
        masters: list[Any] = client.get_primaries()  # type: ignore[no-untyped-call]
        return [_policy(str(node.name), client, target_nodes=node) for node in masters]
    kwargs = client.connection_pool.connection_kwargs
    node = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    return [_policy(str(node), client)]


def _policy(node: str, client: Any, **target: Any) -> EvictionPolicy:
    try:
        found = client.config_get("maxmemory-policy", **target)
    except rexc.ResponseError as e:
        if is_unavailable_reply(e):
            raise
        return EvictionPolicy(node, None, str(e).strip()[:120])
    value = found.get("maxmemory-policy") if isinstance(found, dict) else None
    if not value:
        # A proxy that answers CONFIG GET but knows no such parameter.
        return EvictionPolicy(node, None, "no value in the reply")
    return EvictionPolicy(node, str(value))


def check_policies(found: list[EvictionPolicy], allow_eviction: bool) -> list[str]:
    """Refuse policies that may evict revocation markers or epochs.

    Every server (every master of a cluster) must have
    ``maxmemory-policy noeviction``; with ``allow_eviction`` anything is
    accepted, and what could not be vouched for comes back as warnings.

    :raises ConfigError: a policy evicts, or could not be read.
    """
    evicting = [p for p in found if p.policy not in (None, _NOEVICTION)]
    unread = [p for p in found if p.policy is None]
    if allow_eviction:
        return [
            f"{ALLOW_EVICTION_SETTING} is on and {p}: revocation "
            "markers and epochs may be evicted when it reaches maxmemory, "
            "and revoked tokens would then work again. Make sure that it "
            "never evicts keys (maxmemory-policy noeviction)."
            for p in evicting + unread
        ]
    if evicting:
        nodes = ", ".join(str(p) for p in evicting)
        raise ConfigError(
            "maxmemory-policy",
            evicting[0].policy,
            _NOEVICTION,
            message=(
                f"Redis maxmemory-policy must be 'noeviction', but {nodes}. "
                "A Redis that evicts keys when it reaches maxmemory may "
                "drop revocation markers and epochs, and revoked tokens "
                f"would work again. To fix it, {_FIX}; or give "
                f"Flask-Signoff a Redis of its own. {_OPT_OUT}"
            ),
        )
    if unread:
        nodes = "; ".join(f"{p.node}: {p.error}" for p in unread)
        raise ConfigError(
            "maxmemory-policy",
            None,
            _NOEVICTION,
            message=(
                "Redis maxmemory-policy could not be read, CONFIG GET was "
                f"refused ({nodes}). Flask-Signoff needs 'noeviction' so "
                "that revocation markers and epochs are never evicted: "
                "allow CONFIG GET to this client (or use a user with that "
                f"permission) and, if it is not 'noeviction', {_FIX}. "
                f"{_OPT_OUT}"
            ),
        )
    return []
