"""Flask-Login's ``flask_login.login_manager``: :class:`LoginManager`.

``LoginManager`` is :class:`~flask_signoff.extension.Signoff`, defined in
:mod:`flask_signoff.extension`; this module lets
``from flask_login.login_manager import LoginManager`` become
``from flask_signoff.login_manager import LoginManager``.
"""

from __future__ import annotations

from .extension import LoginManager as LoginManager

# Flask-Login imports it into this module too, and code finds it here.
from .login import user_context_processor as _user_context_processor  # noqa: F401

__all__ = ["LoginManager"]
