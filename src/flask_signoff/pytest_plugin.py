"""pytest fixtures for apps that use Flask-Signoff.

Registered through the ``pytest11`` entry point, so they are available as
soon as flask-signoff is installed:

- ``signoff_clock``: a :class:`~flask_signoff.core.clock.FrozenClock` to pass
  as ``Signoff(app, clock=signoff_clock)``; move time with ``.advance(s)``.
- ``signoff_login``: ``signoff_login(client, user)`` signs ``user`` in on a
  test client through a real server-side session and returns the cookie
  value (to replay it, as an attacker would, after sign-out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from .core.clock import FrozenClock
from .testing import sign_in_client


@pytest.fixture
def signoff_clock() -> FrozenClock:
    """A frozen clock to pass to ``Signoff(app, clock=...)``."""
    return FrozenClock()


@pytest.fixture
def signoff_login() -> Callable[..., str]:
    """Sign a user in on a test client: ``signoff_login(client, user)``."""

    def login(client: FlaskClient, user: Any, **kwargs: Any) -> str:
        return sign_in_client(client, user, **kwargs)

    return login
