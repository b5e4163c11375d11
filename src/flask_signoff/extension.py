"""The Flask extension: :class:`Signoff` (also importable as ``LoginManager``).

``Signoff(app)`` or ``Signoff()`` + ``init_app(app)``. The object holds the
app-independent callbacks (``user_loader`` ...) and Flask-Login's attributes;
everything per app lives in ``app.extensions["signoff"]``
(:class:`SignoffState`), never on ``self``.
"""

from __future__ import annotations

import logging
import os
import threading
import typing as t
from collections.abc import Callable

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    request,
    session,
)
from flask import redirect as flask_redirect

from .authorization import AUTH_HEADER_NAME as AUTH_HEADER_NAME
from .authorization import (
    BearerToken,
    MalformedBearer,
    request_authorization,
)
from .config import Settings, set_defaults
from .core.clock import Clock, system_clock
from .core.records import SessionRecord
from .core.sessions import SessionLifecycle
from .core.store import Store
from .core.throttle import Attempt, Outcome, Throttle
from .core.tokens import RevokeOutcome, TokenPair
from .exceptions import (
    ConfigError,
    InvalidToken,
    StoreError,
    StoreUnavailable,
    TokenError,
    TokenRevoked,
    TooManyAttempts,
)
from .mixins import AnonymousUserMixin
from .session_interface import AUTH_KEYS as AUTH_DATA_KEYS
from .session_interface import SignoffSession, SignoffSessionInterface
from .signals import (
    session_revoked,
    session_rotated,
    user_accessed,
    user_loaded_from_request,
    user_needs_refresh,
    user_signed_out_everywhere,
    user_unauthorized,
)
from .stamps import StampBinding
from .stores import open_store
from .tokens import TokenService, token_error_response

logger = logging.getLogger("flask_signoff")

F = t.TypeVar("F", bound=Callable[..., t.Any])

LOGIN_MESSAGE = "Please log in to access this page."
LOGIN_MESSAGE_CATEGORY = "message"
REFRESH_MESSAGE = "Please reauthenticate to access this page."
REFRESH_MESSAGE_CATEGORY = "message"
ID_ATTRIBUTE = "get_id"
#: Methods that login_required lets through, as in Flask-Login.
EXEMPT_METHODS = frozenset({"OPTIONS"})

#: Key on ``flask.g`` of the attempts reserved in this request, each with
#: whether the end of the request settles it (:meth:`Signoff.check_throttle`).
_ATTEMPTS = "_signoff_attempts"

UNAVAILABLE_MESSAGE = (
    "The sign-in service is temporarily unavailable. You have not been signed "
    "out; please try again in a moment."
)


class SignoffState:
    """Everything Flask-Signoff keeps for one app."""

    def __init__(
        self,
        manager: Signoff,
        settings: Settings,
        store: Store,
        clock: Clock,
    ) -> None:
        self.manager = manager
        self.settings = settings
        self.store = store
        self.clock = clock
        self.lifecycle = SessionLifecycle(store, settings.session_policy, clock)
        self.throttle = Throttle(store, settings.throttle_policy, clock)
        self.interface = SignoffSessionInterface(self)
        #: Set by :meth:`Signoff.init_app` once the state is registered.
        self.tokens: TokenService
        #: Digests of users' security stamps; set by :meth:`Signoff.init_app`.
        self.stamps: StampBinding
        #: Whether the store passed its ``check_config``; until it has, every
        #: request gets 503 (:meth:`check_store`).
        self.store_checked = False
        self._check_lock = threading.Lock()
        self._check_refused: str | None = None

    def check_store(self) -> None:
        """Run the store's check now if it has not passed yet.

        For a store that was down at start-up: the first request that finds
        it up runs the check; no request is served before it has passed.

        :raises StoreUnavailable: the check has not passed: the store is
            still down, another request is running the check, or the store's
            configuration is refused (logged as an error, once per message).
        """
        if self.store_checked:
            return
        # Without waiting: requests behind a slow check get 503 at once
        # rather than queueing for a worker each.
        if not self._check_lock.acquire(blocking=False):
            raise StoreUnavailable("The session store is being checked.")
        try:
            if self.store_checked:
                return
            try:
                warnings = self.store.check_config()
            except ConfigError as e:
                if str(e) != self._check_refused:
                    self._check_refused = str(e)
                    logger.error(
                        "The session store is refused; every request gets 503 "
                        "until this is fixed. %s",
                        e,
                    )
                raise StoreUnavailable(
                    "The session store's configuration is refused."
                ) from e
            for warning in warnings:
                logger.warning(warning)
            self.store_checked = True
            logger.info("The session store passed its check; serving requests.")
        finally:
            self._check_lock.release()

    @staticmethod
    def client_info() -> dict[str, str | None]:
        """IP and user agent of the current request, for the session list."""
        if not has_request_context():
            return {"ip": None, "user_agent": None}
        return {
            "ip": request.remote_addr,
            "user_agent": request.headers.get("User-Agent"),
        }

    @staticmethod
    def wants_json() -> bool:
        # A Bearer client is an API client; a browser sends Basic (or
        # Negotiate ...) credentials on every request and still wants HTML.
        if request.is_json or request_authorization().by_bearer:
            return True
        best = request.accept_mimetypes.best_match(["text/html", "application/json"])
        return best == "application/json"

    def unavailable_response(self) -> Response:
        """503 with a clear body (JSON or HTML) and no traceback."""
        response = current_app.response_class()
        self.replace_with_unavailable(response)
        return response

    def replace_with_unavailable(self, response: Response) -> None:
        """Turn ``response`` into the 503 answer, in place."""
        if has_request_context() and self.wants_json():
            response.set_data(
                current_app.json.dumps(
                    {"error": "store_unavailable", "message": UNAVAILABLE_MESSAGE}
                )
            )
            response.mimetype = "application/json"
        else:
            response.set_data(
                "<!doctype html><title>Service unavailable</title>"
                f"<h1>Service unavailable</h1><p>{UNAVAILABLE_MESSAGE}</p>"
            )
            response.mimetype = "text/html"
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        response.headers["Cache-Control"] = "no-store"
        # Never touch the session cookie during an outage.
        response.headers.pop("Set-Cookie", None)


def get_state(app: Flask | None = None) -> SignoffState:
    """Return the :class:`SignoffState` of ``app`` (default: the current app)."""
    app = app if app is not None else current_app
    try:
        return t.cast(SignoffState, app.extensions["signoff"])
    except KeyError:
        raise RuntimeError(
            "Flask-Signoff is not set up on this app: call Signoff(app) or "
            "signoff.init_app(app) first."
        ) from None


class Signoff:
    """Server-side login sessions and revocable tokens for a Flask app.

    :param app: the app to set up now, or ``None`` to call :meth:`init_app`
        later.
    :param add_context_processor: make ``current_user`` available in
        templates (as Flask-Login does).
    :param clock: where time comes from; tests pass a
        :class:`~flask_signoff.core.clock.FrozenClock`.
    :param store: a ready store instead of one built from
        ``SIGNOFF_STORE_URL``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        add_context_processor: bool = True,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
    ) -> None:
        #: The class of the user object of anonymous requests.
        self.anonymous_user: Callable[[], t.Any] = AnonymousUserMixin
        #: Endpoint (or URL) to redirect anonymous users to; ``None``: 401.
        self.login_view: str | None = None
        #: Per-blueprint login views: ``{blueprint name: endpoint}``.
        self.blueprint_login_views: dict[str | None, str] = {}
        #: Flashed when redirecting to the login view; ``None`` flashes nothing
        #: (and so keeps anonymous visitors from creating session records).
        self.login_message: str | None = LOGIN_MESSAGE
        self.login_message_category = LOGIN_MESSAGE_CATEGORY
        #: Endpoint to send users to when their login is not fresh.
        self.refresh_view: str | None = None
        self.needs_refresh_message: str | None = REFRESH_MESSAGE
        self.needs_refresh_message_category = REFRESH_MESSAGE_CATEGORY
        #: Accepted for Flask-Login compatibility and ignored: a copied session
        #: id is dealt with by revocation, not by hashing the client's IP.
        self.session_protection: str | None = "basic"
        self.localize_callback: Callable[[str], str] | None = None
        self.unauthorized_callback: Callable[[], t.Any] | None = None
        self.needs_refresh_callback: Callable[[], t.Any] | None = None
        self.id_attribute = ID_ATTRIBUTE
        self._user_callback: Callable[[str], t.Any] | None = None
        self._request_callback: Callable[[t.Any], t.Any] | None = None
        self._clock = clock
        self._store = store
        self._add_context_processor = add_context_processor
        if app is not None:
            self.init_app(app, add_context_processor)

    # -- set-up ----------------------------------------------------------

    def init_app(self, app: Flask, add_context_processor: bool = True) -> None:
        """Set up ``app``: config defaults, the store, the session interface."""
        set_defaults(app.config)
        default_url = "sqlite:///" + os.path.join(app.instance_path, "signoff.sqlite3")
        settings = Settings.from_config(
            app.config, default_store_url=default_url, import_name=app.import_name
        )
        store = self._store or open_store(settings.store_url, settings.store_options)
        checked = _check_at_start(store, close=self._store is None)
        state = SignoffState(self, settings, store, self._clock or system_clock)
        state.store_checked = checked
        app.extensions["signoff"] = state
        state.stamps = StampBinding(app.config)
        state.tokens = TokenService(app)
        app.session_interface = state.interface
        # Flask-Login's attribute, which apps and extensions look up.
        app.login_manager = self  # type: ignore[attr-defined]
        app.before_request(self._refuse_if_store_unavailable)
        app.after_request(self._settle_attempts)
        app.register_error_handler(StoreUnavailable, self._store_unavailable)
        app.register_error_handler(TokenError, token_error_response)
        app.register_error_handler(TooManyAttempts, self._too_many_attempts)
        if add_context_processor:
            app.context_processor(_user_context_processor)
        from .cli import signoff_cli
        from .csrf import init_csrf

        app.cli.add_command(signoff_cli)
        init_csrf(app)
        if not settings.cookie_secure and not app.debug and not app.testing:
            logger.warning(
                "SIGNOFF_COOKIE_SECURE is off: the session cookie will be sent "
                "over plain http. Only do this for local development."
            )
        unnamed = settings.jwt_names_defaulted
        if unnamed and not app.debug and not app.testing:
            keys = " and ".join(unnamed)
            logger.warning(
                "%s %s not set: access tokens carry the app's import name %r "
                "as their %s, so the tokens of two apps with that import name "
                "and a shared signing key would be accepted by each other. "
                "Set %s to a name of this deployment (its URL, say).",
                keys,
                "are" if len(unnamed) > 1 else "is",
                app.import_name,
                " and ".join(unnamed.values()),
                keys,
            )

    @staticmethod
    def _refuse_if_store_unavailable() -> Response | None:
        sess = session._get_current_object()  # type: ignore[attr-defined]
        if isinstance(sess, SignoffSession) and sess.unavailable:
            return get_state().unavailable_response()
        return None

    @staticmethod
    def _store_unavailable(error: StoreUnavailable) -> Response:
        logger.warning("Session store unavailable: %s", error)
        sess = session._get_current_object()  # type: ignore[attr-defined]
        if isinstance(sess, SignoffSession):
            sess.unavailable = True
        return get_state().unavailable_response()

    @staticmethod
    def _too_many_attempts(error: TooManyAttempts) -> Response:
        state = get_state()
        response = current_app.response_class(status=429)
        if state.wants_json():
            response.set_data(
                current_app.json.dumps(
                    {"error": "too_many_attempts", "message": error.description}
                )
            )
            response.mimetype = "application/json"
        else:
            response.set_data(
                "<!doctype html><title>Too many attempts</title>"
                f"<h1>Too many attempts</h1><p>{error.description}</p>"
            )
            response.mimetype = "text/html"
        response.headers["Retry-After"] = str(error.retry_after)
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- callbacks (Flask-Login API) ---------------------------------------

    def user_loader(self, callback: F) -> F:
        """Register ``callback(user_id: str)`` returning the user or ``None``."""
        self._user_callback = callback
        return callback

    @property
    def user_callback(self) -> Callable[[str], t.Any] | None:
        return self._user_callback

    def request_loader(self, callback: F) -> F:
        """Register ``callback(request)`` for requests without a session user."""
        self._request_callback = callback
        return callback

    @property
    def request_callback(self) -> Callable[[t.Any], t.Any] | None:
        return self._request_callback

    def unauthorized_handler(self, callback: F) -> F:
        """Register what to return when an anonymous user hits a protected view."""
        self.unauthorized_callback = callback
        return callback

    def needs_refresh_handler(self, callback: F) -> F:
        """Register what to return when a view needs a fresh login."""
        self.needs_refresh_callback = callback
        return callback

    # -- answers -----------------------------------------------------------

    def _flash(self, message: str | None, category: str) -> None:
        if not message:
            return
        if self.localize_callback is not None:
            message = self.localize_callback(message)
        flash(message, category=category)

    def unauthorized(self) -> t.Any:
        """What anonymous users get from a protected view.

        The registered handler if any; else a 401 JSON body for API clients;
        else a redirect to the login view with ``next``; else 401.
        """
        user_unauthorized.send(current_app._get_current_object())  # type: ignore[attr-defined]
        token_error = g.get("_signoff_token_error")
        if token_error is not None:
            # A refused Bearer token gets its RFC 6750 answer, whatever the
            # app's handler would do for a visitor who is simply signed out.
            return token_error_response(token_error)
        if self.unauthorized_callback is not None:
            return self.unauthorized_callback()
        state = get_state()
        if state.wants_json():
            response = current_app.json.response(
                {"error": "unauthorized", "message": "Sign-in required."}
            )
            response.status_code = 401
            if request_authorization().by_bearer:
                response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        login_view = self.blueprint_login_views.get(request.blueprint, self.login_view)
        if not login_view:
            abort(401)
        self._flash(self.login_message, self.login_message_category)
        from .utils import login_url

        return flask_redirect(login_url(login_view, next_url=_current_path()))

    def needs_refresh(self) -> t.Any:
        """What a stale login gets from a view that needs a fresh one."""
        user_needs_refresh.send(current_app._get_current_object())  # type: ignore[attr-defined]
        if self.needs_refresh_callback is not None:
            return self.needs_refresh_callback()
        if not self.refresh_view:
            abort(401)
        self._flash(self.needs_refresh_message, self.needs_refresh_message_category)
        from .utils import login_url

        return flask_redirect(login_url(self.refresh_view, next_url=_current_path()))

    # -- loading the user ----------------------------------------------------

    def _load_user(self) -> t.Any:
        """Find the request's user once and keep it in ``g._login_user``."""
        user = None
        sess = session._get_current_object()  # type: ignore[attr-defined]
        auth = request_authorization()
        if isinstance(auth, (BearerToken, MalformedBearer)):
            # Authenticated by the Bearer header alone, never by the cookie.
            # Other schemes (Basic from a staging gate ...) leave the cookie
            # session in charge.
            user = self._load_from_header(auth)
        elif isinstance(sess, SignoffSession) and sess.user_id is not None:
            user = self._load_from_session(sess)
        else:
            user = self._load_from_request()
        if user is None:
            user = self.anonymous_user()
        g._login_user = user
        user_accessed.send(current_app._get_current_object())  # type: ignore[attr-defined]
        return user

    def _load_from_session(self, sess: SignoffSession) -> t.Any:
        if self._user_callback is None:
            raise RuntimeError(
                "Flask-Signoff needs a user loader: decorate a function with "
                "@signoff.user_loader."
            )
        assert sess.record is not None
        assert sess.user_id is not None
        user = self._user_callback(sess.user_id)
        if user is not None and not get_state().stamps.matches(
            sess.record.auth_stamp, sess.user_id, user
        ):
            # Signed in with credentials that have changed since (the
            # password, a factor): the session ends, as for a user who is gone.
            user = None
        if user is None:
            # The account is gone or disabled: the session ends with it.
            get_state().lifecycle.end(sess.record.key)
            sess.record = None
            sess.new_secret = None
            sess.drop_cookie = True
            for key in list(sess):
                if key in AUTH_DATA_KEYS:
                    sess.pop(key)
        return user

    def _load_from_header(self, auth: BearerToken | MalformedBearer) -> t.Any:
        try:
            if isinstance(auth, MalformedBearer):
                raise InvalidToken(auth.description)
            if not auth.ours:
                # Not one of our access tokens (an API key of the app's own,
                # say): the app's request_loader decides, else it is refused.
                if self._request_callback is not None:
                    return self._load_from_request()
                raise InvalidToken("The token is not an access token.")
            lifecycle = get_state().tokens.lifecycle_or_none()
            if lifecycle is None:  # no key yet: nothing can be verified
                raise InvalidToken("This app issues no access tokens.")
            claims = lifecycle.verify(auth.token)
        except TokenError as error:
            g._signoff_token_error = error
            return None
        if self._user_callback is None:
            raise RuntimeError(
                "Flask-Signoff needs a user loader: decorate a function with "
                "@signoff.user_loader."
            )
        user = self._user_callback(claims.subject)
        if user is None:
            g._signoff_token_error = InvalidToken("The token's user is gone.")
            return None
        if not get_state().stamps.matches(claims.auth_stamp, claims.subject, user):
            g._signoff_token_error = TokenRevoked(
                "The token was revoked: the user's credentials have changed."
            )
            return None
        g._signoff_claims = claims
        user_loaded_from_request.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
        )
        return user

    def _load_from_request(self) -> t.Any:
        if self._request_callback is None:
            return None
        user = self._request_callback(request)
        if user is not None:
            g._signoff_request_user = True
            user_loaded_from_request.send(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                user=user,
            )
        return user

    # -- session management ----------------------------------------------

    def rotate(self, *, reason: str = "privilege") -> bool:
        """Move the current session to a new id (call on privilege change).

        Returns ``False`` if there was no live session to rotate (it was
        revoked meanwhile: it is then dropped, never revived).
        """
        sess = session._get_current_object()  # type: ignore[attr-defined]
        if not isinstance(sess, SignoffSession) or sess.record is None:
            return False
        old = sess.record
        rotated = get_state().lifecycle.rotate(old)
        if rotated is None:
            sess.record = None
            sess.drop_cookie = True
            return False
        sess.new_secret, sess.record = rotated
        for key in AUTH_DATA_KEYS:
            sess.pop(key, None)
        session_rotated.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user_id=old.user_id,
            reason=reason,
        )
        return True

    def sessions_for(self, user: t.Any) -> list[SessionRecord]:
        """The live sessions of ``user`` (a user object or an id), newest first.

        Given a user object, sessions bound to credentials the user no
        longer has (see :meth:`~flask_signoff.UserMixin.get_security_stamp`)
        are left out: they end at their next request.
        """
        state = get_state()
        user_id = self._user_id(user)
        records = state.lifecycle.sessions_for(user_id)
        if isinstance(user, (str, int)):
            return records
        return [r for r in records if state.stamps.matches(r.auth_stamp, user_id, user)]

    def current_session(self) -> SessionRecord | None:
        """The record of the current request's session, if any."""
        sess = session._get_current_object()  # type: ignore[attr-defined]
        return sess.record if isinstance(sess, SignoffSession) else None

    def revoke_session(self, user: t.Any, public_id: str) -> bool:
        """End one session of ``user`` by its public id; ``False`` if unknown.

        Another user's public id is treated exactly like an unknown one.
        """
        user_id = self._user_id(user)
        record = get_state().lifecycle.revoke(user_id, public_id)
        if record is None:
            return False
        session_revoked.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user_id=user_id,
            public_id=public_id,
        )
        current = self.current_session()
        if current is not None and current.key == record.key:
            # Signed out here, as by logout_user: the data kept moves to a
            # new id, without the tokens of the signed-in pages.
            sess = session._get_current_object()  # type: ignore[attr-defined]
            sess.record = None
            sess.new_secret = None
            sess.drop_cookie = True
            for key in AUTH_DATA_KEYS:
                sess.pop(key, None)
        return True

    def revoke_other_sessions(self, user: t.Any | None = None) -> int:
        """Sign the user out of every other client: what people expect of
        "sign out all other sessions".

        Every other session, every refresh family and every access token
        issued before now ends (:meth:`revoke_user` with the current session
        kept, so :data:`~flask_signoff.signals.user_signed_out_everywhere`
        is sent); API clients must sign in again. The current session then
        moves to a new id, so a copy of its cookie taken earlier ends too.
        It is kept only if it is the user's and authenticated this request:
        on a Bearer request, every session and token of the user ends, the
        caller's included. Returns the number of sessions ended.
        """
        from .utils import current_user

        user_id = self._user_id(user if user is not None else current_user)
        current = self.current_session()
        keep = (
            current is not None
            and current.user_id == user_id
            and not request_authorization().by_bearer
        )
        count = self.revoke_user(user_id, keep_current=keep)
        if keep:
            self.rotate(reason="revoke_others")
        return count

    def revoke_user(self, user: t.Any, *, keep_current: bool = False) -> int:
        """Sign ``user`` out everywhere: every session, refresh family and
        access token issued before now. The call for disabling an account.

        :param keep_current: spare the current request's session (after a
            password change, say); rotate it afterwards with :meth:`rotate`.
        """
        user_id = self._user_id(user)
        current = self.current_session() if keep_current else None
        keep = current.key if current is not None else None
        count = get_state().lifecycle.revoke_user(user_id, keep_key=keep)
        user_signed_out_everywhere.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user_id=user_id,
        )
        return count

    def password_changed(self, user: t.Any | None = None) -> int:
        """End every other session and every token of the user; keep this one.

        Call it after a password change (or any credential reset), once the
        change is saved: other devices are signed out, every refresh family
        and access token issued before now dies, and the current session
        moves to a new id, fresh (the password was just checked) and bound
        to the user's new security stamp. The user is loaded again through
        the ``user_loader`` for that stamp, so ``user`` may be the object
        loaded before the change. Returns the number of other sessions
        ended.

        Sessions and families of a sign-in that checked the old password
        while this ran, and committed after it, are bound to the old stamp:
        they end at their next use.
        """
        from .utils import _rebind_current_session, current_user

        user_id = self._user_id(user if user is not None else current_user)
        count = self.revoke_user(user_id, keep_current=True)
        if self._user_callback is not None:
            reloaded = self._user_callback(user_id)
        else:
            reloaded = _unproxied(user if user is not None else current_user)
        _rebind_current_session(user_id, reloaded)
        return count

    # -- throttling of password checks ---------------------------------------

    def reserve_attempt(self, username: str, ip: str | None = None) -> Attempt:
        """Reserve one password check for ``username``; call it first.

        ::

            attempt = signoff.reserve_attempt(username)  # 429 when over the limit
            user = check_password(username, password)
            if user is None:
                return "Wrong username or password.", 401
            attempt.succeeded()                           # not counted
            login_user(user)

        The attempt is counted against the account and the address (``ip``,
        by default the request's ``remote_addr``) in one atomic store step
        *before* the password is checked, so a burst of parallel guesses
        gets no more checks than the limits allow. Until
        :meth:`~flask_signoff.core.throttle.Attempt.succeeded` is called it
        counts as a failure. A success gives back its own attempt only: the
        failures before it stay counted.

        :raises TooManyAttempts: (429 with ``Retry-After``, and no password
            check) when ``SIGNOFF_THROTTLE_ACCOUNT_LIMIT`` attempts for this
            account, or ``SIGNOFF_THROTTLE_IP_LIMIT`` from this address, are
            counted in the current ``SIGNOFF_THROTTLE_WINDOW``.

        .. versionadded:: 0.1
        """
        return self._reserve(username, ip, settle=False)

    @staticmethod
    def _reserve(username: str, ip: str | None, *, settle: bool) -> Attempt:
        if ip is None and has_request_context():
            ip = request.remote_addr
        attempt = get_state().throttle.reserve(username, ip)
        if has_request_context():
            # Remembered so that record_failure() finds it instead of counting
            # the failure a second time.
            g.setdefault(_ATTEMPTS, []).append((attempt, settle))
        return attempt

    def check_throttle(self, username: str, ip: str | None = None) -> None:
        """Reserve one password check, to be settled at the end of the request.

        The older form of :meth:`reserve_attempt`, for code that calls
        ``check_throttle`` before the check and :meth:`record_failure` after
        a wrong password. It now *reserves* the attempt (counted at once,
        atomically) rather than only looking at the count, so parallel
        requests can no longer all pass it. At the end of the request the
        attempt is given back if :meth:`record_failure` was not called for it
        and the response is not an error (status below 400): that is a
        successful sign-in, which is not counted. Otherwise it stays counted,
        once: :meth:`record_failure` does not count it again.

        Must be called during a request. New code should use
        :meth:`reserve_attempt`, which does not guess the outcome.

        :raises TooManyAttempts: as :meth:`reserve_attempt`.

        .. versionchanged:: 0.1
           Reserves the attempt before the check instead of reading the
           count.
        """
        if not has_request_context():
            raise RuntimeError(
                "check_throttle() is settled at the end of a request; outside "
                "one, use reserve_attempt() and report the outcome."
            )
        self._reserve(username, ip, settle=True)

    def record_failure(self, username: str, ip: str | None = None) -> None:
        """Count one failed password check for the account and the address.

        An attempt reserved in this request for the same account and address
        (by :meth:`check_throttle` or :meth:`reserve_attempt`) and not yet
        reported is marked failed: it is already counted. Without one, a
        failure is counted now.
        """
        if ip is None and has_request_context():
            ip = request.remote_addr
        throttle = get_state().throttle
        keys = tuple(key for key, _ in throttle.keys(username, ip))
        for attempt, _ in g.get(_ATTEMPTS, ()) if has_request_context() else ():
            if attempt.outcome is Outcome.PENDING and attempt.keys == keys:
                attempt.failed()
                return
        throttle.count_failure(username, ip)

    @staticmethod
    def _settle_attempts(response: Response) -> Response:
        """Give back the attempts of :meth:`check_throttle` that succeeded."""
        for attempt, settle in g.pop(_ATTEMPTS, ()):
            if not settle or attempt.outcome is not Outcome.PENDING:
                continue
            if response.status_code >= 400:
                attempt.failed()
                continue
            try:
                attempt.succeeded()
            except StoreError as e:
                # The sign-in happened; its attempt merely stays counted.
                logger.warning("Could not give back a sign-in attempt: %s", e)
        return response

    # -- API tokens --------------------------------------------------------

    def issue_tokens(self, user: t.Any, client_id: str = "") -> TokenPair:
        """Start a refresh family for ``user``: an access and a refresh token.

        Pass the user object whose password was just checked: the family is
        bound to its security stamp. (Given only an id, the user is loaded
        through the ``user_loader`` for it.)

        ``pair.as_dict()`` is the body of an RFC 6749 token response; send it
        with :func:`~flask_signoff.tokens.token_response` (``no-store``).
        """
        state = get_state()
        user_id = self._user_id(user)
        if isinstance(user, (str, int)):
            user = self._user_callback(user_id) if self._user_callback else None
        auth_stamp = state.stamps.digest(user_id, user) if user is not None else ""
        return state.tokens.lifecycle.issue(user_id, client_id, auth_stamp=auth_stamp)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair.

        The family's user is loaded through the ``user_loader``: if it is
        gone, or its security stamp changed since the sign-in, the family is
        revoked.

        :raises InvalidGrant: unknown, expired, revoked or spent token, or a
            user gone or with changed credentials; a spent one presented
            after ``SIGNOFF_REFRESH_GRACE`` also revokes its whole family
            (:class:`~flask_signoff.RefreshTokenReused`).
        """
        return get_state().tokens.lifecycle.refresh(
            refresh_token, check_user=self._family_user_matches
        )

    def _family_user_matches(self, user_id: str, auth_stamp: str) -> bool:
        """Whether a family's user still exists with the stamp it was bound to."""
        if self._user_callback is None:
            raise RuntimeError(
                "Flask-Signoff needs a user loader: decorate a function with "
                "@signoff.user_loader."
            )
        user = self._user_callback(user_id)
        return user is not None and get_state().stamps.matches(
            auth_stamp, user_id, user
        )

    def revoke_token(
        self, token: str, token_type_hint: str | None = None
    ) -> RevokeOutcome:
        """RFC 7009: revoke the family of a refresh or access token.

        Both kinds are tried whatever the hint. An access token revokes only
        if its signature verifies. Never raises for an invalid token.
        """
        return get_state().tokens.lifecycle.revoke(token, token_type_hint)

    def _user_id(self, user: t.Any) -> str:
        if isinstance(user, (str, int)):
            return str(user)
        if hasattr(user, "_get_current_object"):
            user = user._get_current_object()
        user_id = getattr(user, self.id_attribute)()
        if user_id is None:
            raise ValueError("This user has no id (is it the anonymous user?).")
        return str(user_id)


#: Flask-Login's name for the extension.
LoginManager = Signoff


def _unproxied(user: t.Any) -> t.Any:
    return user._get_current_object() if hasattr(user, "_get_current_object") else user


def _check_at_start(store: Store, *, close: bool) -> bool:
    """Run the store's check at ``init_app``; whether it passed.

    A refused configuration stops the app (:class:`ConfigError`). A store
    that cannot be reached does not: the app starts, answers 503, and runs
    the check on the first request that finds the store up
    (:meth:`SignoffState.check_store`), so an outage at deploy time does not
    turn into an app that cannot start.
    """
    try:
        warnings = store.check_config()
    except StoreUnavailable as e:
        logger.warning(
            "The session store cannot be reached at start-up (%s). Its "
            "configuration will be checked when it answers; until then every "
            "request gets 503.",
            e,
        )
        return False
    except ConfigError:
        if close:
            store.close()
        raise
    for warning in warnings:
        logger.warning(warning)
    return True


def _current_path() -> str:
    """The path and query of this request: a local ``next`` target."""
    full = request.full_path
    return full[:-1] if full.endswith("?") else full


def _user_context_processor() -> dict[str, t.Any]:
    from .utils import _get_user

    return {"current_user": _get_user()}
