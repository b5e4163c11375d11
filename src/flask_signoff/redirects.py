"""Where to send the browser: the login view, ``next``, safe redirect targets.

Flask-Login's helpers (:func:`login_url`, :func:`make_next_param`,
:func:`expand_login_view`, :func:`set_login_view`) and the check every
``next`` parameter must pass before it is followed
(:func:`is_safe_redirect`): only a local path, never another host.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, request, session, url_for

from .compat import USE_SESSION_FOR_NEXT
from .state import get_state


def set_login_view(login_view: str, blueprint: t.Any = None) -> None:
    """Set the login view of the app, or of one blueprint."""
    manager = get_state().manager
    num_login_views = len(manager.blueprint_login_views)
    if blueprint is not None or num_login_views != 0:
        manager.blueprint_login_views[blueprint.name if blueprint else None] = (
            login_view
        )
        if manager.login_view is not None and None not in manager.blueprint_login_views:
            manager.blueprint_login_views[None] = manager.login_view
        manager.login_view = None
    else:
        manager.login_view = login_view


def login_view_for_request() -> str | None:
    """The login view of the current request's blueprint, or the app's."""
    manager = get_state().manager
    return manager.blueprint_login_views.get(request.blueprint, manager.login_view)


def current_path() -> str:
    """The path and query of this request: a local ``next`` target."""
    full = request.full_path
    return full[:-1] if full.endswith("?") else full


def make_next_param(login_url: str, current_url: str) -> str:
    """Shorten ``current_url`` to a path if it is on the login view's host."""
    l_url = urlsplit(login_url)
    c_url = urlsplit(current_url)
    if (not l_url.scheme or l_url.scheme == c_url.scheme) and (
        not l_url.netloc or l_url.netloc == c_url.netloc
    ):
        return urlunsplit(("", "", c_url.path, c_url.query, ""))
    return current_url


def expand_login_view(login_view: str) -> str:
    """An endpoint name or a URL, as a URL."""
    if login_view.startswith(("https://", "http://", "/")):
        return login_view
    return url_for(login_view)


def login_url(
    login_view: str, next_url: str | None = None, next_field: str = "next"
) -> str:
    """The URL of the login view, with ``next`` set to ``next_url``.

    With ``FORCE_HOST_FOR_REDIRECTS`` set, the URL is on that host, as in
    Flask-Login (there too only when there is a ``next_url``).
    """
    base = expand_login_view(login_view)
    if next_url is None:
        return base
    parts = list(urlsplit(base))
    query = dict(parse_qsl(parts[3], keep_blank_values=True))
    query[next_field] = make_next_param(base, next_url)
    parts[3] = urlencode(sorted(query.items()))
    forced_host = current_app.config.get("FORCE_HOST_FOR_REDIRECTS")
    if forced_host:
        parts[1] = forced_host
    return urlunsplit(parts)


def login_redirect_url(login_view: str) -> str:
    """The login view's URL, carrying where to come back to.

    In its ``next`` parameter; or, with ``USE_SESSION_FOR_NEXT``, in
    ``session["next"]``, as Flask-Login does (the URL stays clean, and the
    target never reaches another site's logs through a ``Referer``).
    """
    if current_app.config.get("USE_SESSION_FOR_NEXT", USE_SESSION_FOR_NEXT):
        session["next"] = make_next_param(expand_login_view(login_view), current_path())
        return login_url(login_view)
    return login_url(login_view, next_url=current_path())


def is_safe_redirect(target: str | None) -> bool:
    """Whether ``target`` is a local path that is safe to redirect to.

    Only ``/path`` forms pass: never ``//host``, ``/\\host``, a scheme
    (``https:``, ``javascript:``), control characters or backslashes, which
    browsers read as a different host.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_redirect_target(target: str | None, default: str = "/") -> str:
    """``target`` if :func:`is_safe_redirect`, else ``default``."""
    return target if target is not None and is_safe_redirect(target) else default


__all__ = [
    "current_path",
    "expand_login_view",
    "is_safe_redirect",
    "login_redirect_url",
    "login_url",
    "login_view_for_request",
    "make_next_param",
    "safe_redirect_target",
    "set_login_view",
]
