"""SQLAlchemy, imported when the store first needs it.

An app on SQLite reads its sessions straight through the standard
``sqlite3`` (:mod:`.fast`): a worker that only serves signed-in requests
never needs SQLAlchemy, which would add some 14 MiB to it. The modules of
this package name SQLAlchemy at module level through :class:`LazyModule`,
which imports it on the first attribute looked up (a sign-in, a schema to
create, a PostgreSQL engine), and otherwise never.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """A module imported on first attribute access.

    :param name: the module's full name (``"sqlalchemy.exc"``).

    Unlike :class:`importlib.util.LazyLoader` it never stands in for the
    module in :data:`sys.modules`: other code importing it gets the real
    module, and the import runs under the interpreter's import lock.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<LazyModule {self._name!r}>"
