"""A ready sign-out view, and the cross-tab sign-out script.

Register it with ``app.register_blueprint(logout_blueprint())``:

``GET /logout``
    A confirm page with a POST form. Changes nothing, so a link or an
    ``<img src=/logout>`` on another site cannot sign anyone out.
``POST /logout``
    Checks the CSRF token and the origin, signs out with
    :func:`~flask_signoff.logout_user`, and answers with
    :func:`logout_response`: ``303`` to a safe local ``next`` or
    ``SIGNOFF_LOGOUT_REDIRECT``, with ``Clear-Site-Data``.
``/_signoff/signoff.js``
    The cross-tab script: when a tab signs out, the other open tabs of the
    app go to the login page. Include it in every page with
    ``{{ signoff_script() }}``; it needs no inline script, so it works under
    a strict Content-Security-Policy (``script-src 'self'``).

The confirm page renders ``signoff/logout.html``; an app overrides it by
putting its own template at that path.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint, current_app, redirect, render_template, request
from flask import url_for as flask_url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from .csrf import csrf_protect
from .login import current_user, logout_user
from .redirects import (
    expand_login_view,
    is_safe_redirect,
    login_view_for_request,
    safe_redirect_target,
)
from .state import get_state

#: The short-lived cookie that tells the next page to announce the sign-out to
#: the other tabs. It holds no secret, so the script may read it. With Secure
#: cookies it is sent as ``__Host-signoff_signed_out``, so that neither a
#: sibling subdomain nor a plain-http response can plant it.
SIGNED_OUT_COOKIE = "signoff_signed_out"
#: How long the announcement cookie lives, in seconds.
SIGNED_OUT_MAX_AGE = 30


def logout_response(target: str | None = None) -> Response:
    """The response to send after :func:`~flask_signoff.logout_user`.

    A ``303 See Other`` to ``target`` if it is a local path
    (:func:`~flask_signoff.is_safe_redirect`), else to
    ``SIGNOFF_LOGOUT_REDIRECT`` (a path or an endpoint name); with
    ``Clear-Site-Data`` from ``SIGNOFF_CLEAR_SITE_DATA``, and the cookie that
    makes the next page tell the other tabs. Apps with their own sign-out
    view return it too.
    """
    state = get_state()
    default = _expand(state.settings.logout_redirect)
    response = redirect(safe_redirect_target(target, default), 303)
    if state.settings.clear_site_data:
        response.headers["Clear-Site-Data"] = state.settings.clear_site_data
    secure = state.interface.get_cookie_secure(current_app)
    response.set_cookie(
        f"__Host-{SIGNED_OUT_COOKIE}" if secure else SIGNED_OUT_COOKIE,
        "1",
        max_age=SIGNED_OUT_MAX_AGE,
        path="/",
        secure=secure,
        httponly=False,
        samesite="Lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _expand(target: str) -> str:
    return target if target.startswith("/") else expand_login_view(target)


def _login_page() -> str:
    view = login_view_for_request()
    return expand_login_view(view) if view else "/"


def signoff_script() -> Markup:
    """The ``<script>`` tag of the cross-tab script, for every page.

    It carries the login page's URL and whether this page was rendered for a
    signed-in user (only such pages leave when another tab signs out).
    """
    return Markup(
        '<script src="{}" data-login-url="{}" data-signed-in="{}" defer></script>'
    ).format(
        flask_url_for("signoff.static", filename="signoff.js"),
        _login_page(),
        "1" if current_user.is_authenticated else "0",
    )


def logout_blueprint(
    name: str = "signoff",
    *,
    url: str = "/logout",
    template: str = "signoff/logout.html",
) -> Blueprint:
    """Return a blueprint with the sign-out view and the cross-tab script.

    :param name: the blueprint's name; ``signoff_script()`` needs the
        default one.
    :param url: where the sign-out view lives.
    :param template: the confirm page's template; it gets ``next`` (a safe
        target or ``None``).
    """
    bp = Blueprint(
        name,
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/_signoff",
    )

    @bp.route(url, methods=["GET", "POST"], endpoint="logout")
    @csrf_protect
    def logout() -> t.Any:
        if request.method == "POST":
            logout_user()
            return logout_response(request.form.get("next"))
        target = request.args.get("next")
        return render_template(
            template, next=target if is_safe_redirect(target) else None
        )

    bp.add_app_template_global(signoff_script, "signoff_script")
    return bp


__all__ = [
    "SIGNED_OUT_COOKIE",
    "logout_blueprint",
    "logout_response",
    "signoff_script",
]
