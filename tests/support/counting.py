"""A real store that counts the calls made to it, and can slip in a step.

Tests of the hot paths count store calls (one read per request, no write
on an unmodified one); race tests run something of their own right before
or right after one store method. Both wrap a real store, never a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: The contract's methods that only read.
READS = ("get_session", "list_sessions", "get_epoch", "get_refresh", "access_state")


class CountingStore:
    """Wraps ``inner`` and records each method called on it, by name.

    :param before: ``{method name: callable}``, each run right before that
        method (with no arguments).
    :param after: the same, run right after the method returns.
    """

    READS = READS

    def __init__(
        self,
        inner: Any,
        *,
        before: Mapping[str, Callable[[], object]] | None = None,
        after: Mapping[str, Callable[[], object]] | None = None,
    ) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.before = dict(before or {})
        self.after = dict(after or {})

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr
        before, after = self.before.get(name), self.after.get(name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if before is not None:
                before()
            result = attr(*args, **kwargs)
            if after is not None:
                after()
            return result

        return counted

    @property
    def reads(self) -> int:
        """How many calls only read."""
        return sum(c in READS for c in self.calls)

    @property
    def writes(self) -> int:
        """How many calls may have written (all but reads and ``close``)."""
        return sum(c not in READS and c != "close" for c in self.calls)
