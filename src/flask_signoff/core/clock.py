"""Time, injected: every lifecycle function takes ``now`` or a :data:`Clock`."""

from __future__ import annotations

import time
from collections.abc import Callable

#: A clock returns the current time as Unix seconds.
Clock = Callable[[], float]

system_clock: Clock = time.time


class FrozenClock:
    """A clock that only moves when told to; for tests and simulations.

    :param now: the starting time in Unix seconds; by default the current
        whole second, so that stores with native expiry (Redis TTLs) agree
        with it and JWT times (whole seconds) line up with it.
    """

    def __init__(self, now: float | None = None) -> None:
        self.now = float(int(time.time())) if now is None else float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds
