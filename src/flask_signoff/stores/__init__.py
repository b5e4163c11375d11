"""Store backends, chosen by the scheme of ``SIGNOFF_STORE_URL``.

Each backend lives in its own module and imports its driver lazily, so an
app on SQLite never needs redis-py or psycopg installed.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..core.store import Store
from ..exceptions import ConfigError

#: URL scheme -> (module, factory, pip extra that brings its driver).
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("flask_signoff.stores.sql", "SQLStore", None),
    "postgresql": ("flask_signoff.stores.sql", "SQLStore", "postgres"),
    "postgresql+psycopg": ("flask_signoff.stores.sql", "SQLStore", "postgres"),
    "postgres": ("flask_signoff.stores.sql", "SQLStore", "postgres"),
    "redis": ("flask_signoff.stores.redis", "RedisStore", "redis"),
    "rediss": ("flask_signoff.stores.redis", "RedisStore", "redis"),
    "unix": ("flask_signoff.stores.redis", "RedisStore", "redis"),
    "redis+cluster": ("flask_signoff.stores.redis", "RedisStore", "redis"),
    "rediss+cluster": ("flask_signoff.stores.redis", "RedisStore", "redis"),
}

#: Python modules each extra must make importable.
_DRIVERS = {"postgres": "psycopg", "redis": "redis"}


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def default_store_url(instance_path: str, *, testing: bool = False) -> str:
    """The store of an app that sets no ``SIGNOFF_STORE_URL``: SQLite.

    The file ``signoff.sqlite3`` in the instance folder; in testing mode
    (``TESTING`` set when ``init_app`` runs) a file in a temporary folder of
    its own, removed when the process exits, so that test runs start empty
    and leave no file behind.
    """
    if not testing:
        return "sqlite:///" + os.path.join(instance_path, "signoff.sqlite3")
    folder = tempfile.mkdtemp(prefix="flask-signoff-")
    atexit.register(_remove_temporary, folder, os.getpid())
    return "sqlite:///" + os.path.join(folder, "signoff.sqlite3")


def _remove_temporary(folder: str, pid: int) -> None:
    # In the process that made it only: a forked worker exiting must not
    # take the store of its siblings with it.
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


def open_store(url: str, options: Mapping[str, Any] | None = None) -> Store:
    """Return a store for ``url``; fail with an actionable message if we can't.

    :param url: e.g. ``sqlite:////var/lib/app/signoff.sqlite3``,
        ``redis://127.0.0.1:6379/0``, ``redis+cluster://10.0.0.1:7000`` (a
        Redis Cluster, through any of its nodes), ``postgresql://user@host/db``.
    :param options: backend keyword arguments (``key_prefix``, timeouts).
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    shown = redact_url(url)
    try:
        module_name, factory_name, extra = BACKENDS[scheme]
    except KeyError:
        known = ", ".join(sorted(f"{s}://" for s in BACKENDS))
        raise ConfigError(
            "SIGNOFF_STORE_URL", shown, f"a URL starting with one of {known}"
        ) from None
    if extra is not None:
        driver = _DRIVERS[extra]
        try:
            importlib.import_module(driver)
        except ImportError:
            install = f"pip install 'flask-signoff[{extra}]'"
            raise ConfigError(
                "SIGNOFF_STORE_URL",
                shown,
                f"the {driver} package: run `{install}`",
                message=(
                    f"SIGNOFF_STORE_URL = {shown!r} needs the {driver} package, "
                    f"which is not installed: run `{install}`."
                ),
            ) from None
    factory = getattr(importlib.import_module(module_name), factory_name)
    store: Store = factory(url, **dict(options or {}))
    return store


__all__ = ["BACKENDS", "default_store_url", "open_store", "redact_url"]
