"""Flask-Signoff: login sessions and API tokens for Flask that really end.

The public API is Flask-Login's, so migrating is an import change::

    from flask_signoff import LoginManager, login_user, logout_user, current_user
"""

from __future__ import annotations

from .authorization import AUTH_HEADER_NAME as AUTH_HEADER_NAME
from .compat import COOKIE_DURATION as COOKIE_DURATION
from .compat import COOKIE_HTTPONLY as COOKIE_HTTPONLY
from .compat import COOKIE_NAME as COOKIE_NAME
from .compat import COOKIE_SECURE as COOKIE_SECURE
from .compat import ID_ATTRIBUTE as ID_ATTRIBUTE
from .compat import LOGIN_MESSAGE as LOGIN_MESSAGE
from .compat import LOGIN_MESSAGE_CATEGORY as LOGIN_MESSAGE_CATEGORY
from .compat import REFRESH_MESSAGE as REFRESH_MESSAGE
from .compat import REFRESH_MESSAGE_CATEGORY as REFRESH_MESSAGE_CATEGORY
from .compat import decode_cookie as decode_cookie
from .compat import encode_cookie as encode_cookie
from .core.clock import FrozenClock as FrozenClock
from .csrf import csrf_exempt as csrf_exempt
from .csrf import csrf_protect as csrf_protect
from .csrf import generate_csrf as generate_csrf
from .csrf import validate_csrf as validate_csrf
from .devices import device_label as device_label
from .exceptions import ConfigError as ConfigError
from .exceptions import CrossSiteRequest as CrossSiteRequest
from .exceptions import CSRFError as CSRFError
from .exceptions import InvalidGrant as InvalidGrant
from .exceptions import InvalidLogoutToken as InvalidLogoutToken
from .exceptions import InvalidRequest as InvalidRequest
from .exceptions import InvalidToken as InvalidToken
from .exceptions import ProviderUnavailable as ProviderUnavailable
from .exceptions import RefreshTokenReused as RefreshTokenReused
from .exceptions import RequestRefused as RequestRefused
from .exceptions import SignoffError as SignoffError
from .exceptions import StoreError as StoreError
from .exceptions import StoreUnavailable as StoreUnavailable
from .exceptions import TokenError as TokenError
from .exceptions import TokenExpired as TokenExpired
from .exceptions import TokenRevoked as TokenRevoked
from .exceptions import TooManyAttempts as TooManyAttempts
from .extension import LoginManager as LoginManager
from .extension import Signoff as Signoff
from .login import confirm_login as confirm_login
from .login import current_user as current_user
from .login import fresh_login_required as fresh_login_required
from .login import login_fresh as login_fresh
from .login import login_remembered as login_remembered
from .login import login_required as login_required
from .login import login_user as login_user
from .login import logout_user as logout_user
from .mixins import AnonymousUserMixin as AnonymousUserMixin
from .mixins import UserMixin as UserMixin
from .redirects import is_safe_redirect as is_safe_redirect
from .redirects import login_url as login_url
from .redirects import make_next_param as make_next_param
from .redirects import safe_redirect_target as safe_redirect_target
from .redirects import set_login_view as set_login_view
from .signals import session_protected as session_protected
from .signals import session_revoked as session_revoked
from .signals import session_rotated as session_rotated
from .signals import user_accessed as user_accessed
from .signals import user_loaded_from_cookie as user_loaded_from_cookie
from .signals import user_loaded_from_request as user_loaded_from_request
from .signals import user_logged_in as user_logged_in
from .signals import user_logged_out as user_logged_out
from .signals import user_login_confirmed as user_login_confirmed
from .signals import user_needs_refresh as user_needs_refresh
from .signals import user_signed_out_everywhere as user_signed_out_everywhere
from .signals import user_unauthorized as user_unauthorized
from .testing import FlaskLoginClient as FlaskLoginClient
from .views import logout_blueprint as logout_blueprint
from .views import logout_response as logout_response

__version__ = "0.1.0.dev0"

__all__ = [
    "AUTH_HEADER_NAME",
    "COOKIE_DURATION",
    "COOKIE_HTTPONLY",
    "COOKIE_NAME",
    "COOKIE_SECURE",
    "ID_ATTRIBUTE",
    "LOGIN_MESSAGE",
    "LOGIN_MESSAGE_CATEGORY",
    "REFRESH_MESSAGE",
    "REFRESH_MESSAGE_CATEGORY",
    "AnonymousUserMixin",
    "CSRFError",
    "ConfigError",
    "CrossSiteRequest",
    "FlaskLoginClient",
    "FrozenClock",
    "InvalidGrant",
    "InvalidLogoutToken",
    "InvalidRequest",
    "InvalidToken",
    "LoginManager",
    "ProviderUnavailable",
    "RefreshTokenReused",
    "RequestRefused",
    "Signoff",
    "SignoffError",
    "StoreError",
    "StoreUnavailable",
    "TokenError",
    "TokenExpired",
    "TokenRevoked",
    "TooManyAttempts",
    "UserMixin",
    "__version__",
    "confirm_login",
    "csrf_exempt",
    "csrf_protect",
    "current_user",
    "decode_cookie",
    "device_label",
    "encode_cookie",
    "fresh_login_required",
    "generate_csrf",
    "is_safe_redirect",
    "login_fresh",
    "login_remembered",
    "login_required",
    "login_url",
    "login_user",
    "logout_blueprint",
    "logout_response",
    "logout_user",
    "make_next_param",
    "safe_redirect_target",
    "session_protected",
    "session_revoked",
    "session_rotated",
    "set_login_view",
    "user_accessed",
    "user_loaded_from_cookie",
    "user_loaded_from_request",
    "user_logged_in",
    "user_logged_out",
    "user_login_confirmed",
    "user_needs_refresh",
    "user_signed_out_everywhere",
    "user_unauthorized",
    "validate_csrf",
]
