"""Helpers shared by the tests (importable: ``tests`` is on the path)."""

from __future__ import annotations

from typing import Any

#: The ``SECRET_KEY`` of every test app (32 bytes and more, as HMAC wants):
#: use this one, not a key of your own, unless the test is about a second key.
SECRET_KEY = "test secret key of the application, not the JWT key"
ISSUER = "https://app.example"
AUDIENCE = "app.example"


class CountingStore:
    """Wraps a real store and counts the calls made to it, by method name."""

    READS = ("get_session", "list_sessions", "get_epoch", "get_refresh", "access_state")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted

    @property
    def reads(self) -> int:
        return sum(c in self.READS for c in self.calls)

    @property
    def writes(self) -> int:
        return sum(c not in self.READS and c != "close" for c in self.calls)
