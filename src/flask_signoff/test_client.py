"""Flask-Login's ``flask_login.test_client``: :class:`FlaskLoginClient`.

Defined in :mod:`flask_signoff.testing`; this module lets
``from flask_login.test_client import FlaskLoginClient`` become
``from flask_signoff.test_client import FlaskLoginClient``.
"""

from __future__ import annotations

from .testing import FlaskLoginClient as FlaskLoginClient

__all__ = ["FlaskLoginClient"]
