"""The reference app (``examples.demo``) as the tests build and inspect it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from examples.demo import create_app
from flask_signoff import FrozenClock
from flask_signoff.extension import get_state
from tests.support import SECRET_KEY

#: The password of every user the demo tests register.
PASSWORD = "correct horse battery"
#: ``DEMO_ARGON2_PARAMETERS`` of the tests: real argon2id hashes, as cheap as
#: argon2 allows (one lane, 8 KiB), since the tests sign in hundreds of times.
#: The defaults (64 MiB, four lanes) would cost more than the rest of a test.
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def open_demo(instance: Path, clock: FrozenClock, **config: Any) -> Flask:
    """The demo with its files in ``instance``, on ``clock``.

    ``config`` adds to or overrides the test settings, e.g.
    ``**backend.config`` to put its store on a backend. Close it with
    :func:`close_demo`.
    """
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": SECRET_KEY,
            "SIGNOFF_TEST_CLOCK": clock,
            "DEMO_ARGON2_PARAMETERS": CHEAP_ARGON2,
            **config,
        }
    )


def close_demo(app: Flask) -> None:
    """Close the connections of an app made by :func:`open_demo`.

    Its tables or keys stay behind (the servers are thrown away at the end
    of the session).
    """
    get_state(app).store.close()
    app.extensions["demo_users"].engine.dispose()
