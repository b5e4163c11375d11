"""Signing in and out, and who the request's user is: Flask-Login's API.

The names and signatures are Flask-Login 0.6's, so migrating is an import
change (differences that safety demands are listed in ``docs/migration.md``).

Who the user is, is decided once per request, on first use, by
:func:`get_user`, and kept in the request's
:class:`~flask_signoff.request.RequestState`:

1. a ``Bearer`` header: the token alone decides, never the cookie. One of
   our access tokens is verified (then the user must exist with the stamp
   the token was bound to); any other value goes to the app's
   ``request_loader``; else the request is anonymous and the token's error
   is kept for the 401;
2. else a session cookie whose record names a user: the ``user_loader``'s
   user, if it still has the stamp the session was bound to; otherwise the
   session ends;
3. else (no user yet, or no ``user_loader``) the ``request_loader``, if the
   app has one;
4. else the anonymous user.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import typing as t
from collections.abc import Callable

from flask import current_app, has_request_context, request, session
from werkzeug.local import LocalProxy

from .authorization import BearerToken, MalformedBearer
from .compat import EXEMPT_METHODS
from .core.records import ProviderLink
from .exceptions import InvalidToken, TokenError, TokenRevoked
from .request import Credential, RequestState, client_info, request_state
from .session_interface import SignoffSession
from .signals import (
    session_rotated,
    user_accessed,
    user_loaded_from_request,
    user_logged_in,
    user_logged_out,
    user_login_confirmed,
    user_signed_out_everywhere,
)
from .state import SignoffState, get_state

F = t.TypeVar("F", bound=Callable[..., t.Any])

#: The signed-in user of this request, or the anonymous user.
current_user: t.Any = LocalProxy(lambda: get_user())


def signoff_session() -> SignoffSession:
    """``flask.session``, which Flask-Signoff keeps server-side."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession):
        raise RuntimeError("The session is not a Flask-Signoff session.")
    return sess


def user_id_of(user: t.Any) -> str:
    """The id of ``user`` (a user object, or an id as ``str`` or ``int``).

    :raises ValueError: for a user without an id (the anonymous user).
    """
    if isinstance(user, (str, int)):
        return str(user)
    user = _unproxied(user)
    user_id = getattr(user, get_state().manager.id_attribute)()
    if user_id is None:
        raise ValueError("This user has no id (is it the anonymous user?).")
    return str(user_id)


def _unproxied(user: t.Any) -> t.Any:
    return user._get_current_object() if hasattr(user, "_get_current_object") else user


def _user_loader() -> Callable[[str], t.Any]:
    callback = get_state().manager.user_callback
    if callback is None:
        raise RuntimeError(
            "Flask-Signoff needs a user loader: decorate a function with "
            "@signoff.user_loader."
        )
    return callback


# -- who the user is -----------------------------------------------------------


def get_user() -> t.Any:
    """The request's user (looked up on first use), or ``None`` outside a
    request."""
    if not has_request_context():
        return None
    state = request_state()
    if state.credential is None:
        _load_user(state)
    return state.user


def _load_user(state: RequestState) -> None:
    """Find the request's user and how (see the module's docstring)."""
    manager = get_state().manager
    if manager.user_callback is None and manager.request_callback is None:
        # Nobody could ever be signed in: a setup error, not an anonymous
        # request (Flask-Login raises the same).
        raise RuntimeError(
            "Missing user_loader or request_loader: decorate a function "
            "with @login_manager.user_loader (or .request_loader) to load "
            "users."
        )
    user = None
    credential = Credential.NONE
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if state.bearer is not None:
        user, credential = _load_from_header(state, state.bearer)
    elif isinstance(sess, SignoffSession) and sess.user_id is not None:
        signoff = get_state()
        if signoff.manager.user_callback is not None:
            user = _load_from_session(sess, signoff)
            credential = Credential.COOKIE
        if user is None:
            # No user from the session (the app has no user_loader, or the
            # user is gone and the session with it): the request loader
            # decides, as in Flask-Login, rather than a 500.
            user = _load_from_request()
            credential = Credential.REQUEST_LOADER
    else:
        user = _load_from_request()
        credential = Credential.REQUEST_LOADER
    if user is None:
        user = get_state().manager.anonymous_user()
        credential = Credential.NONE
    state.user, state.credential = user, credential
    if user_accessed.receivers:  # the sender is looked up only for them
        user_accessed.send(current_app._get_current_object())  # type: ignore[attr-defined]


def _load_from_session(sess: SignoffSession, signoff: SignoffState) -> t.Any:
    record = sess.record
    assert record is not None
    assert record.user_id is not None
    user = _user_loader()(record.user_id)
    if user is not None and not signoff.stamps.matches(
        record.auth_stamp, record.user_id, user
    ):
        # Signed in with credentials that have changed since (the password,
        # a factor): the session ends, as for a user who is gone.
        user = None
    if user is None:
        # The account is gone or disabled: the session ends with it.
        signoff.lifecycle.end(record.key)
        sess.end()
    return user


def _load_from_header(
    state: RequestState, bearer: BearerToken | MalformedBearer
) -> tuple[t.Any, Credential]:
    try:
        if isinstance(bearer, MalformedBearer):
            raise InvalidToken(bearer.description)
        if not bearer.ours:
            # Not one of our access tokens (an API key of the app's own,
            # say): the app's request_loader decides, else it is refused.
            if get_state().manager.request_callback is not None:
                return _load_from_request(), Credential.REQUEST_LOADER
            raise InvalidToken("The token is not an access token.")
        lifecycle = get_state().tokens.lifecycle_or_none()
        if lifecycle is None:  # no key yet: nothing can be verified
            raise InvalidToken("This app issues no access tokens.")
        claims = lifecycle.verify(bearer.token)
        user = _user_loader()(claims.subject)
        if user is None:
            raise InvalidToken("The token's user is gone.")
        if not get_state().stamps.matches(claims.auth_stamp, claims.subject, user):
            raise TokenRevoked(
                "The token was revoked: the user's credentials have changed."
            )
    except TokenError as error:
        state.token_error = error
        return None, Credential.NONE
    state.claims = claims
    user_loaded_from_request.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user=user,
    )
    return user, Credential.ACCESS_TOKEN


def _load_from_request() -> t.Any:
    callback = get_state().manager.request_callback
    if callback is None:
        return None
    user = callback(request)
    if user is not None:
        user_loaded_from_request.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
        )
    return user


def user_context_processor() -> dict[str, t.Any]:
    """``current_user`` in templates."""
    return {"current_user": get_user()}


# -- signing in and out --------------------------------------------------------


def _seconds(duration: dt.timedelta | float | int | None) -> float | None:
    if duration is None:
        return None
    if isinstance(duration, dt.timedelta):
        return duration.total_seconds()
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        return float(duration)
    # Not float(duration): "123" would pass for seconds. Flask-Login's words.
    raise TypeError(
        f"duration must be a datetime.timedelta, instead got: {duration} "
        f"({type(duration).__name__}; a number of seconds works too)"
    )


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
    return sign_in(user, remember, duration, force, fresh)


def sign_in(
    user: t.Any,
    remember: bool = False,
    duration: dt.timedelta | float | None = None,
    force: bool = False,
    fresh: bool = True,
    link: ProviderLink | None = None,
) -> bool:
    """:func:`login_user`, and the session records the OpenID Connect
    provider session ``link`` it came from (see :mod:`flask_signoff.oidc`)."""
    if not force and not user.is_active:
        return False
    seconds = _seconds(duration)
    state = get_state()
    sess = signoff_session()
    id_attribute = state.manager.id_attribute
    user_id = getattr(user, id_attribute)()
    if user_id is None or str(user_id) == "":
        # An empty id would be one identity shared by every such sign-in.
        raise ValueError(
            f"Cannot log in a user whose {id_attribute}() returned "
            f"{user_id!r}: it must return the user's id, a non-empty string."
        )
    # The data kept moves to the new record without the old tokens.
    sess.drop_auth_keys()
    old_key = sess.record.key if sess.record is not None else None
    secret, record = state.lifecycle.sign_in(
        str(user_id),
        data=state.interface.encode(sess),
        replace_key=old_key,
        remember=remember,
        duration=seconds,
        fresh=fresh,
        auth_stamp=state.stamps.digest(str(user_id), user),
        link=link,
        **client_info(),
    )
    sess.move_to(secret, record)
    sess.modified = False  # written by sign_in
    current = request_state()
    current.user, current.credential = user, Credential.COOKIE
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
    sess = signoff_session()
    user = get_user()
    current = request_state()
    # A Bearer request is authenticated by its token alone: a session cookie
    # that rides along is another sign-in (maybe of another user), which this
    # sign-out neither ends nor takes its user from.
    record = None if current.by_bearer else sess.record
    user_id = record.user_id if record is not None else None
    if user_id is None and user is not None and user.is_authenticated:
        user_id = user_id_of(user)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if current.claims is not None and not everywhere:
        # Signed in by an access token: its whole family ends, refresh included.
        state.tokens.lifecycle.revoke_family_of_access(current.claims)
        current.claims = None
    if everywhere and user_id is not None:
        state.lifecycle.revoke_user(str(user_id))
        user_signed_out_everywhere.send(app, user_id=str(user_id))
    elif record is not None and record.user_id is not None:
        state.lifecycle.end(record.key)
    if not current.by_bearer:
        if record is not None and record.user_id is not None:
            sess.end()
        if clear:
            sess.clear()
        sess.drop_auth_keys()
    current.user = state.manager.anonymous_user()
    current.credential = Credential.NONE
    user_logged_out.send(app, user=user)
    return True


def provider_link(user_id: str) -> ProviderLink | None:
    """The provider session of the request's cookie session, if that session
    signed ``user_id`` in through one (never on a request authenticated by a
    Bearer token, whose cookie riding along is another sign-in)."""
    if not has_request_context():
        return None
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if request_state().by_bearer or not isinstance(sess, SignoffSession):
        return None
    record = sess.record
    if record is None or record.user_id != user_id or not record.oidc_iss:
        return None
    return ProviderLink(record.oidc_iss, record.oidc_sid, record.oidc_sub)


def confirm_login() -> None:
    """Mark the current login fresh again (after re-checking the password).

    The session moves to a new id, as on any change of privilege.
    """
    confirm_session()


def confirm_session(auth_stamp: str | None = None) -> bool:
    """:func:`confirm_login`, binding the session to ``auth_stamp`` if given.

    Returns ``False`` if there was no signed-in session to confirm, or it
    ended meanwhile (it is then dropped, never revived).
    """
    sess = signoff_session()
    if sess.record is None or sess.record.user_id is None:
        return False
    rotated = get_state().lifecycle.rotate(
        sess.record, fresh=True, auth_stamp=auth_stamp
    )
    if rotated is None:
        sess.end()
        return False
    sess.move_to(*rotated)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    session_rotated.send(app, user_id=rotated[1].user_id, reason="confirm")
    user_login_confirmed.send(app)
    return True


def login_fresh() -> bool:
    """Whether the current login is fresh (password checked within
    ``SIGNOFF_FRESH_FOR``, and not a remembered session back from idle).

    A request authenticated by its ``Bearer`` header is never fresh: no
    password was seen, whatever the cookie riding along says.
    """
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession) or sess.record is None:
        return False
    current = request_state()
    if sess.record.user_id is None or current.by_bearer:
        return False
    if current.credential is Credential.REQUEST_LOADER:
        # The request loader's user, not the session's: no password seen.
        return False
    return get_state().lifecycle.is_fresh(sess.record)


def login_remembered() -> bool:
    """Whether the current session is a remembered (persistent) one."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession) or sess.record is None:
        return False
    return sess.record.user_id is not None and sess.record.remember


# -- protecting views ------------------------------------------------------------


def _protect(func: F, *, fresh: bool) -> F:
    # Asked once, not on every request: Flask's ensure_sync returns a plain
    # function as it is, and only wraps a coroutine function.
    is_async = inspect.iscoroutinefunction(func)

    @functools.wraps(func)
    def decorated_view(*args: t.Any, **kwargs: t.Any) -> t.Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if request.method in EXEMPT_METHODS or app.config.get("LOGIN_DISABLED"):
            pass
        elif not get_user().is_authenticated:
            return get_state(app).manager.unauthorized()
        elif fresh and not login_fresh():
            return get_state(app).manager.needs_refresh()
        if is_async:
            return app.ensure_sync(func)(*args, **kwargs)
        return func(*args, **kwargs)

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


__all__ = [
    "confirm_login",
    "current_user",
    "fresh_login_required",
    "get_user",
    "login_fresh",
    "login_remembered",
    "login_required",
    "login_user",
    "logout_user",
]
