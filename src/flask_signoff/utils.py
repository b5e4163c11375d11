"""Flask-Login's ``flask_login.utils``, name for name, for code that imports it.

Nothing is defined here: signing in and out and the current user are in
:mod:`flask_signoff.login`, the login view and redirect targets in
:mod:`flask_signoff.redirects`, Flask-Login's cookie helpers in
:mod:`flask_signoff.compat`. So ``from flask_login.utils import login_url``
becomes ``from flask_signoff.utils import login_url``.
"""

from __future__ import annotations

from .compat import _secret_key as _secret_key
from .compat import decode_cookie as decode_cookie
from .compat import encode_cookie as encode_cookie
from .login import confirm_login as confirm_login
from .login import current_user as current_user
from .login import fresh_login_required as fresh_login_required
from .login import get_user as _get_user
from .login import login_fresh as login_fresh
from .login import login_remembered as login_remembered
from .login import login_required as login_required
from .login import login_user as login_user
from .login import logout_user as logout_user
from .login import user_context_processor as _user_context_processor
from .redirects import expand_login_view as expand_login_view
from .redirects import is_safe_redirect as is_safe_redirect
from .redirects import login_url as login_url
from .redirects import make_next_param as make_next_param
from .redirects import safe_redirect_target as safe_redirect_target
from .redirects import set_login_view as set_login_view

__all__ = [
    "_get_user",
    "_secret_key",
    "_user_context_processor",
    "confirm_login",
    "current_user",
    "decode_cookie",
    "encode_cookie",
    "expand_login_view",
    "fresh_login_required",
    "is_safe_redirect",
    "login_fresh",
    "login_remembered",
    "login_required",
    "login_url",
    "login_user",
    "logout_user",
    "make_next_param",
    "safe_redirect_target",
    "set_login_view",
]
