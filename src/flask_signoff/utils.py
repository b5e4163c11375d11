"""Flask-Login's functions, on server-side sessions that really end.

The names and signatures are Flask-Login 0.6's, so migrating is an import
change. Differences that safety demands are listed in ``docs/migration.md``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import typing as t
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, g, has_request_context, request, session, url_for
from werkzeug.local import LocalProxy

from .authorization import request_authorization
from .extension import EXEMPT_METHODS, Signoff, get_state
from .session_interface import AUTH_KEYS as AUTH_DATA_KEYS
from .session_interface import SignoffSession
from .signals import (
    session_rotated,
    user_logged_in,
    user_logged_out,
    user_login_confirmed,
    user_signed_out_everywhere,
)

F = t.TypeVar("F", bound=Callable[..., t.Any])

#: The signed-in user of this request, or the anonymous user.
current_user: t.Any = LocalProxy(lambda: _get_user())


def _manager() -> Signoff:
    return get_state().manager


def _session() -> SignoffSession:
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession):
        raise RuntimeError("The session is not a Flask-Signoff session.")
    return sess


_MISSING = object()


def _get_user() -> t.Any:
    if not has_request_context():
        return None
    user = g.get("_login_user", _MISSING)
    if user is _MISSING:
        _manager()._load_user()
        user = g._login_user
    return user


def _seconds(duration: dt.timedelta | float | int | None) -> float | None:
    if duration is None:
        return None
    if isinstance(duration, dt.timedelta):
        return duration.total_seconds()
    return float(duration)


def login_user(
    user: t.Any,
    remember: bool = False,
    duration: dt.timedelta | float | None = None,
    force: bool = False,
    fresh: bool = True,
) -> bool:
    """Sign ``user`` in: a new session id, the old one deleted with it.

    :param remember: keep the session across browser restarts, for
        ``duration`` or ``SIGNOFF_REMEMBER_DURATION``. It is still a server
        record: sign-out, revocation and sign-out-everywhere end it.
    :param force: sign in even if ``user.is_active`` is false.
    :param fresh: whether the login counts as fresh (``False`` for a login
        that did not check a password).
    :returns: ``False`` if the user is inactive and ``force`` is not set.

    The session is bound to ``user.get_security_stamp()``: pass the user
    object whose password was checked, so that a password changed meanwhile
    ends this session at its next request.
    """
    if not force and not user.is_active:
        return False
    manager = _manager()
    state = get_state()
    sess = _session()
    user_id = getattr(user, manager.id_attribute)()
    if user_id is None or str(user_id) == "":
        # An empty id would be one identity shared by every such sign-in.
        raise ValueError(
            f"Cannot log in a user whose {manager.id_attribute}() returned "
            f"{user_id!r}: it must return the user's id, a non-empty string."
        )
    for key in AUTH_DATA_KEYS:
        sess.pop(key, None)
    old_key = sess.record.key if sess.record is not None else None
    secret, record = state.lifecycle.sign_in(
        str(user_id),
        data=state.interface.encode(sess),
        replace_key=old_key,
        remember=remember,
        duration=_seconds(duration),
        fresh=fresh,
        auth_stamp=state.stamps.digest(str(user_id), user),
        **state.client_info(),
    )
    sess.record = record
    sess.new_secret = secret
    sess.drop_cookie = False
    sess.modified = False
    g._login_user = user
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    session_rotated.send(app, user_id=str(user_id), reason="login")
    user_logged_in.send(app, user=user)
    return True


def logout_user(*, clear: bool = False, everywhere: bool = False) -> bool:
    """Sign the current user out; the session record is deleted now.

    A copy of the old cookie is dead from here on. Non-authentication data in
    ``flask.session`` survives under a new id unless ``clear`` is true.

    On a request with a ``Bearer`` token, the user is the token's: its
    family ends (or, with ``everywhere``, all of its user's sessions and
    tokens), and a session cookie sent along is left as it is. Other schemes
    (``Basic`` from a staging site's gate ...) authenticate nothing here: the
    cookie session is the one signed out.

    :param clear: drop all session data too.
    :param everywhere: end every session and token of the user, on every
        device (and bump their epoch, which kills access tokens).
    """
    state = get_state()
    sess = _session()
    user = _get_user()
    # A Bearer request is authenticated by its token alone: a session cookie
    # that rides along is another sign-in (maybe of another user), which this
    # sign-out neither ends nor takes its user from.
    by_header = request_authorization().by_bearer
    record = None if by_header else sess.record
    user_id = record.user_id if record is not None else None
    if user_id is None and user is not None and user.is_authenticated:
        user_id = getattr(user, _manager().id_attribute)()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    claims = g.get("_signoff_claims")
    if claims is not None and not everywhere:
        # Signed in by an access token: its whole family ends, refresh included.
        state.tokens.lifecycle.revoke_family_of_access(claims)
        g.pop("_signoff_claims")
    if everywhere and user_id is not None:
        state.lifecycle.revoke_user(str(user_id))
        user_signed_out_everywhere.send(app, user_id=str(user_id))
    elif record is not None and record.user_id is not None:
        state.lifecycle.end(record.key)
    if record is not None and record.user_id is not None:
        sess.record = None
        sess.new_secret = None
        sess.drop_cookie = True
        # The data kept gets a new id at the end of the request.
        sess.modified = True
    if not by_header:
        if clear:
            sess.clear()
        for key in AUTH_DATA_KEYS:
            sess.pop(key, None)
    g._login_user = _manager().anonymous_user()
    user_logged_out.send(app, user=user)
    return True


def confirm_login() -> None:
    """Mark the current login fresh again (after re-checking the password).

    The session moves to a new id, as on any change of privilege.
    """
    _confirm()


def _confirm(auth_stamp: str | None = None) -> None:
    """:func:`confirm_login`, binding the session to ``auth_stamp`` if given."""
    sess = _session()
    if sess.record is None or sess.record.user_id is None:
        return
    rotated = get_state().lifecycle.rotate(
        sess.record, fresh=True, auth_stamp=auth_stamp
    )
    if rotated is None:
        sess.record = None
        sess.drop_cookie = True
        return
    sess.new_secret, sess.record = rotated
    for key in AUTH_DATA_KEYS:
        sess.pop(key, None)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    session_rotated.send(app, user_id=sess.record.user_id, reason="confirm")
    user_login_confirmed.send(app)


def _rebind_current_session(user_id: str, user: t.Any) -> None:
    """After ``user_id``'s credentials changed: their current session moves
    to a new id, fresh and bound to ``user``'s new stamp (``user`` as loaded
    after the change); it ends if ``user`` is ``None`` (gone).

    Another user's session (an administrator who reset this user's
    password) is only confirmed, as before.
    """
    sess = _session()
    record = sess.record
    if record is None or record.user_id != user_id:
        confirm_login()
        return
    if user is None:
        get_state().lifecycle.end(record.key)
        sess.record = None
        sess.new_secret = None
        sess.drop_cookie = True
        for key in AUTH_DATA_KEYS:
            sess.pop(key, None)
        g._login_user = _manager().anonymous_user()
        return
    _confirm(get_state().stamps.digest(user_id, user))
    if sess.record is not None:
        g._login_user = user


def login_fresh() -> bool:
    """Whether the current login is fresh (password checked within
    ``SIGNOFF_FRESH_FOR``, and not a remembered session back from idle)."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession) or sess.record is None:
        return False
    if sess.record.user_id is None or g.get("_signoff_claims") is not None:
        return False  # a Bearer request is never fresh: no password was seen
    return get_state().lifecycle.is_fresh(sess.record)


def login_remembered() -> bool:
    """Whether the current session is a remembered (persistent) one."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession) or sess.record is None:
        return False
    return sess.record.user_id is not None and sess.record.remember


def _protect(func: F, *, fresh: bool) -> F:
    @functools.wraps(func)
    def decorated_view(*args: t.Any, **kwargs: t.Any) -> t.Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if request.method in EXEMPT_METHODS or app.config.get("LOGIN_DISABLED"):
            pass
        elif not _get_user().is_authenticated:
            return _manager().unauthorized()
        elif fresh and not login_fresh():
            return _manager().needs_refresh()
        return app.ensure_sync(func)(*args, **kwargs)

    return t.cast(F, decorated_view)


def login_required(func: F) -> F:
    """Refuse anonymous requests to the view (``unauthorized()``).

    Works on async views too. ``LOGIN_DISABLED`` turns it off, and
    ``OPTIONS`` requests pass, as in Flask-Login.
    """
    return _protect(func, fresh=False)


def fresh_login_required(func: F) -> F:
    """Like :func:`login_required`, and the login must be fresh
    (else ``needs_refresh()``)."""
    return _protect(func, fresh=True)


def set_login_view(login_view: str, blueprint: t.Any = None) -> None:
    """Set the login view of the app, or of one blueprint."""
    manager = _manager()
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
    """The URL of the login view, with ``next`` set to ``next_url``."""
    base = expand_login_view(login_view)
    if next_url is None:
        return base
    parts = list(urlsplit(base))
    query = dict(parse_qsl(parts[3], keep_blank_values=True))
    query[next_field] = make_next_param(base, next_url)
    parts[3] = urlencode(sorted(query.items()))
    return urlunsplit(parts)


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


def _cookie_digest(payload: str, key: str | bytes | None = None) -> str:
    if key is None:
        key = current_app.config["SECRET_KEY"]
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha512).hexdigest()


def encode_cookie(payload: str, key: str | bytes | None = None) -> str:
    """Sign ``payload`` (Flask-Login's helper, kept for code that uses it)."""
    return f"{payload}|{_cookie_digest(payload, key=key)}"


def decode_cookie(cookie: str, key: str | bytes | None = None) -> str | None:
    """Return the payload of :func:`encode_cookie` output if the digest matches."""
    try:
        payload, digest = cookie.rsplit("|", 1)
    except ValueError:
        return None
    if hmac.compare_digest(_cookie_digest(payload, key=key), digest):
        return payload
    return None
