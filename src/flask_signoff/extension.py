"""The Flask extension: :class:`Signoff` (also importable as ``LoginManager``).

``Signoff(app)`` or ``Signoff()`` + ``init_app(app)``. The object holds the
app-independent callbacks (``user_loader`` ...) and Flask-Login's attributes;
everything per app lives in ``app.extensions["signoff"]``
(:class:`SignoffState`), never on ``self``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import typing as t
import unicodedata
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

from .config import Settings, set_defaults
from .core.clock import Clock, system_clock
from .core.records import SessionRecord
from .core.sessions import SessionLifecycle, SessionPolicy
from .core.store import Store
from .core.tokens import RevokeOutcome, TokenPair
from .exceptions import InvalidToken, StoreUnavailable, TokenError, TooManyAttempts
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
from .stores import open_store
from .tokens import TokenService, bearer_token, token_error_response

logger = logging.getLogger("flask_signoff")

F = t.TypeVar("F", bound=Callable[..., t.Any])

LOGIN_MESSAGE = "Please log in to access this page."
LOGIN_MESSAGE_CATEGORY = "message"
REFRESH_MESSAGE = "Please reauthenticate to access this page."
REFRESH_MESSAGE_CATEGORY = "message"
ID_ATTRIBUTE = "get_id"
AUTH_HEADER_NAME = "Authorization"
#: Methods that login_required lets through, as in Flask-Login.
EXEMPT_METHODS = frozenset({"OPTIONS"})

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
        self.lifecycle = SessionLifecycle(
            store,
            SessionPolicy(
                idle_timeout=settings.idle_timeout,
                absolute_timeout=settings.absolute_timeout,
                remember_duration=settings.remember_duration,
                fresh_for=settings.fresh_for,
                touch_interval=settings.touch_interval,
                max_sessions_per_user=settings.max_sessions_per_user,
            ),
            clock,
        )
        self.interface = SignoffSessionInterface(self)
        #: Set by :meth:`Signoff.init_app` once the state is registered.
        self.tokens: TokenService

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
        if request.is_json or AUTH_HEADER_NAME in request.headers:
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
        state = SignoffState(self, settings, store, self._clock or system_clock)
        app.extensions["signoff"] = state
        state.tokens = TokenService(app)
        app.session_interface = state.interface
        # Flask-Login's attribute, which apps and extensions look up.
        app.login_manager = self  # type: ignore[attr-defined]
        app.before_request(self._refuse_if_store_unavailable)
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
            if AUTH_HEADER_NAME in request.headers:
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
        if AUTH_HEADER_NAME in request.headers:
            # Authenticated by the header alone, never by the cookie.
            user = self._load_from_header()
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

    def _load_from_header(self) -> t.Any:
        try:
            token = bearer_token()
            if token is None:  # another scheme: the app's request_loader
                return self._load_from_request()
            lifecycle = get_state().tokens.lifecycle_or_none()
            if lifecycle is None:  # no key yet: nothing can be verified
                raise InvalidToken("This app issues no access tokens.")
            claims = lifecycle.verify(token)
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
        """The live sessions of ``user`` (a user object or an id), newest first."""
        return get_state().lifecycle.sessions_for(self._user_id(user))

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
        """End every session of the user except the current one."""
        from .utils import current_user

        user_id = self._user_id(user if user is not None else current_user)
        current = self.current_session()
        keep = current.key if current is not None else None
        return get_state().lifecycle.revoke_others(user_id, keep)

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

        Call it after a password change (or any credential reset): other
        devices are signed out, every refresh family and access token issued
        before now dies, and the current session moves to a new id, fresh
        (the password was just checked). Returns the number of other
        sessions ended.
        """
        from .utils import confirm_login, current_user

        count = self.revoke_user(
            user if user is not None else current_user, keep_current=True
        )
        confirm_login()
        return count

    # -- throttling of password checks ---------------------------------------

    def _throttle_keys(self, username: str, ip: str | None) -> list[tuple[str, int]]:
        settings = get_state().settings
        keys = []
        if settings.throttle_account_limit is not None:
            # A lone surrogate (JSON can carry "\ud800") is a name to count
            # under too, though strict UTF-8 refuses to encode it.
            name = hashlib.sha256(
                _account_name(username).encode(errors="surrogatepass")
            ).hexdigest()
            keys.append((f"a:{name[:40]}", settings.throttle_account_limit))
        if ip is None and has_request_context():
            ip = request.remote_addr
        if settings.throttle_ip_limit is not None and ip:
            address = hashlib.sha256(ip.encode()).hexdigest()
            keys.append((f"i:{address[:40]}", settings.throttle_ip_limit))
        return keys

    def check_throttle(self, username: str, ip: str | None = None) -> None:
        """Refuse a password check for an account or address over its limit.

        Call before checking a password; count failures with
        :meth:`record_failure`. Successful sign-ins are never counted.

        :raises TooManyAttempts: (429 with ``Retry-After``) when
            ``SIGNOFF_THROTTLE_ACCOUNT_LIMIT`` failures for this account, or
            ``SIGNOFF_THROTTLE_IP_LIMIT`` from this address, fell in the
            current ``SIGNOFF_THROTTLE_WINDOW``.
        """
        state = get_state()
        now = state.clock()
        for key, limit in self._throttle_keys(username, ip):
            attempts, ends = state.store.peek(key, now)
            if attempts >= limit:
                raise TooManyAttempts(ends - now)

    def record_failure(self, username: str, ip: str | None = None) -> None:
        """Count one failed password check for the account and the address."""
        state = get_state()
        now = state.clock()
        for key, _ in self._throttle_keys(username, ip):
            state.store.hit(key, state.settings.throttle_window, now)

    # -- API tokens --------------------------------------------------------

    def issue_tokens(self, user: t.Any, client_id: str = "") -> TokenPair:
        """Start a refresh family for ``user``: an access and a refresh token.

        ``pair.as_dict()`` is the body of an RFC 6749 token response; send it
        with :func:`~flask_signoff.tokens.token_response` (``no-store``).
        """
        return get_state().tokens.lifecycle.issue(self._user_id(user), client_id)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair.

        :raises InvalidGrant: unknown, expired, revoked or spent token; a
            spent one presented after ``SIGNOFF_REFRESH_GRACE`` also revokes
            its whole family (:class:`~flask_signoff.RefreshTokenReused`).
        """
        return get_state().tokens.lifecycle.refresh(refresh_token)

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


def _account_name(username: str) -> str:
    """The form of a username that throttling counts under.

    NFKC and case folding, without surrounding whitespace: every spelling an
    app may take for one account (``ALICE``, ``alice`` in fullwidth letters,
    ``straße``/``STRASSE``) shares one counter, so changing the spelling
    does not buy another round of guesses.
    """
    folded = unicodedata.normalize("NFKC", username).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def _current_path() -> str:
    """The path and query of this request: a local ``next`` target."""
    full = request.full_path
    return full[:-1] if full.endswith("?") else full


def _user_context_processor() -> dict[str, t.Any]:
    from .utils import _get_user

    return {"current_user": _get_user()}
