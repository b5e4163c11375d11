"""The extension object: :class:`Signoff` (also importable as ``LoginManager``).

``Signoff(app)`` or ``Signoff()`` + ``init_app(app)``. A thin facade: it
wires an app up (:meth:`Signoff.init_app`), holds the app-independent
callbacks and Flask-Login's attributes (``user_loader``, ``login_view`` ...),
and hands every operation to the module that does it:

- per-app state: :mod:`flask_signoff.state` (``app.extensions["signoff"]``,
  never ``self``);
- who the user is, signing in and out: :mod:`flask_signoff.login`;
- a user's sessions: :mod:`flask_signoff.session_management`;
- throttling: :mod:`flask_signoff.core.throttle`;
- API tokens: the state's :class:`~flask_signoff.state.TokenService`;
- every error response: :mod:`flask_signoff.responses`.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Callable

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    has_request_context,
    request,
)
from flask import redirect as flask_redirect

from . import attempts, session_management
from .cli import signoff_cli
from .compat import (
    ID_ATTRIBUTE,
    LOGIN_MESSAGE,
    LOGIN_MESSAGE_CATEGORY,
    REFRESH_MESSAGE,
    REFRESH_MESSAGE_CATEGORY,
)
from .config import Settings, set_defaults
from .core.clock import Clock, system_clock
from .core.records import SessionRecord
from .core.store import Store
from .core.throttle import Attempt
from .core.tokens import RevokeOutcome, TokenPair
from .csrf import finish_response, init_csrf, protect_app
from .exceptions import ConfigError, StoreUnavailable, TokenError, TooManyAttempts
from .login import provider_link, user_context_processor, user_id_of
from .mixins import AnonymousUserMixin
from .redirects import login_redirect_url, login_view_for_request
from .request import peek_request_state, request_state
from .responses import (
    token_error_response,
    too_many_attempts_response,
    unauthorized_response,
    wants_json,
)
from .session_interface import (
    SignoffSessionInterface,
    refuse_if_store_unavailable,
    store_unavailable_response,
)
from .signals import user_needs_refresh, user_unauthorized
from .stamps import StampBinding
from .state import SignoffState, check_store_at_start

# Also importable from here, where apps and tests have long found it.
from .state import get_state as get_state
from .stores import default_store_url, open_store

logger = logging.getLogger("flask_signoff")

F = t.TypeVar("F", bound=Callable[..., t.Any])
P = t.TypeVar("P")


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
        #: The OpenID Connect providers given to :meth:`register_provider`.
        self.providers: list[t.Any] = []
        if app is not None:
            self.init_app(app, add_context_processor)

    # -- set-up ----------------------------------------------------------

    def init_app(self, app: Flask, add_context_processor: bool = True) -> None:
        """Set up ``app``: config defaults, the store, the session interface."""
        set_defaults(app.config)
        default_url = ""
        if not app.config["SIGNOFF_STORE_URL"]:
            default_url = default_store_url(app.instance_path, testing=app.testing)
        settings = Settings.from_config(
            app.config, default_store_url=default_url, import_name=app.import_name
        )
        store = self._store or open_store(settings.store_url, settings.store_options)
        try:
            checked = check_store_at_start(store)
            state = SignoffState(
                self,
                settings,
                store,
                self._clock or system_clock,
                stamps=StampBinding(app.config),
                config=app.config,
            )
        except ConfigError:
            if self._store is None:
                store.close()
            raise
        state.store_checked = checked
        state.interface = SignoffSessionInterface(state)
        app.extensions["signoff"] = state
        app.session_interface = state.interface
        # Flask-Login's attribute, which apps and extensions look up.
        app.login_manager = self  # type: ignore[attr-defined]
        app.before_request(_before_request)
        app.after_request(_after_request)
        app.register_error_handler(StoreUnavailable, store_unavailable_response)
        app.register_error_handler(TokenError, token_error_response)
        app.register_error_handler(TooManyAttempts, too_many_attempts_response)
        if add_context_processor:
            app.context_processor(user_context_processor)
        app.cli.add_command(signoff_cli)
        init_csrf(app)
        ignored = Settings.flask_login_ignored(app.config)
        if ignored is not None:
            # In every mode: a setting that does nothing is a mistake to fix
            # in development first.
            logger.warning(ignored)
        if not app.debug and not app.testing:
            for warning in settings.warnings(app.import_name):
                logger.warning(warning)

    def register_provider(self, provider: P) -> P:
        """Keep an :class:`~flask_signoff.oidc.OIDCProvider` in :attr:`providers`."""
        self.providers.append(provider)
        return provider

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
        token_error = request_state().token_error
        if token_error is not None:
            # A refused Bearer token gets its RFC 6750 answer, whatever the
            # app's handler would do for a visitor who is simply signed out.
            return token_error_response(token_error)
        if self.unauthorized_callback is not None:
            return self.unauthorized_callback()
        if wants_json():
            return unauthorized_response()
        login_view = login_view_for_request()
        if not login_view:
            abort(401)
        self._flash(self.login_message, self.login_message_category)
        return flask_redirect(login_redirect_url(login_view))

    def needs_refresh(self) -> t.Any:
        """What a stale login gets from a view that needs a fresh one
        (re-authentication, as Flask-Login means "refresh")."""
        user_needs_refresh.send(current_app._get_current_object())  # type: ignore[attr-defined]
        if self.needs_refresh_callback is not None:
            return self.needs_refresh_callback()
        if not self.refresh_view:
            abort(401)
        self._flash(self.needs_refresh_message, self.needs_refresh_message_category)
        return flask_redirect(login_redirect_url(self.refresh_view))

    # -- session management ----------------------------------------------

    def rotate(self, *, reason: str = "privilege") -> bool:
        """Move the current session to a new id (call on privilege change).

        Returns ``False`` if there was no live session to rotate (it was
        revoked meanwhile: it is then dropped, never revived).
        """
        return session_management.rotate(reason=reason)

    def sessions_for(self, user: t.Any) -> list[SessionRecord]:
        """The live sessions of ``user`` (a user object or an id), newest first.

        Given a user object, sessions bound to credentials the user no
        longer has (see :meth:`~flask_signoff.UserMixin.get_security_stamp`)
        are left out: they end at their next request.
        """
        return session_management.sessions_for(user)

    def current_session(self) -> SessionRecord | None:
        """The record of the current request's session, if any."""
        return session_management.current_session()

    def revoke_session(self, user: t.Any, public_id: str) -> bool:
        """End one session of ``user`` by its public id; ``False`` if unknown.

        Another user's public id is treated exactly like an unknown one.
        """
        return session_management.revoke_session(user, public_id)

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
        return session_management.revoke_other_sessions(user)

    def revoke_user(self, user: t.Any, *, keep_current: bool = False) -> int:
        """Sign ``user`` out everywhere: every session, refresh family and
        access token issued before now. The call for disabling an account.

        :param keep_current: spare the current request's session (after a
            password change, say); rotate it afterwards with :meth:`rotate`.
        """
        return session_management.revoke_user(user, keep_current=keep_current)

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
        return session_management.password_changed(user)

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
        return attempts.reserve(username, ip, settle=False)

    def check_throttle(self, username: str, ip: str | None = None) -> None:
        """Reserve one password check, to be settled at the end of the request.

        The older form of :meth:`reserve_attempt`, for code that calls
        ``check_throttle`` before the check and :meth:`record_failure` after
        a wrong password. It *reserves* the attempt (counted at once,
        atomically) rather than only looking at the count, so parallel
        requests cannot all pass it. At the end of the request the attempt
        is given back if :meth:`record_failure` was not called for it and
        the response is not an error (status below 400): that is a
        successful sign-in, which is not counted. Otherwise it stays
        counted, once: :meth:`record_failure` does not count it again.

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
        attempts.reserve(username, ip, settle=True)

    def record_failure(self, username: str, ip: str | None = None) -> None:
        """Count one failed password check for the account and the address.

        An attempt reserved in this request for the same account and address
        (by :meth:`check_throttle` or :meth:`reserve_attempt`) and not yet
        reported is marked failed: it is already counted. Without one, a
        failure is counted now.
        """
        if ip is None and has_request_context():
            ip = request.remote_addr
        current = peek_request_state()
        reserved = current.attempts if current is not None else None
        get_state().throttle.record_failure(username, ip, reserved)

    # -- API tokens --------------------------------------------------------

    def issue_tokens(self, user: t.Any, client_id: str = "") -> TokenPair:
        """Start a refresh family for ``user``: an access and a refresh token.

        Pass the user object whose password was just checked: the family is
        bound to its security stamp. (Given only an id, the user is loaded
        through the ``user_loader`` for it.)

        ``pair.as_dict()`` is the body of an RFC 6749 token response; send it
        with :func:`~flask_signoff.bearer.token_response` (``no-store``).

        Issued on a request whose cookie session signed ``user`` in through
        an OpenID Connect provider, the family is tied to that provider
        session: a back-channel logout of it revokes the family too.
        """
        state = get_state()
        user_id = user_id_of(user)
        if isinstance(user, (str, int)):
            user = self._user_callback(user_id) if self._user_callback else None
        auth_stamp = state.stamps.digest(user_id, user) if user is not None else ""
        return state.tokens.lifecycle.issue(
            user_id, client_id, auth_stamp=auth_stamp, link=provider_link(user_id)
        )

    def refresh_tokens(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair (RFC 6749, section 6).

        The family's user is loaded through the ``user_loader``: if it is
        gone, or its security stamp changed since the sign-in, the family is
        revoked.

        :raises InvalidGrant: unknown, expired, revoked or spent token, or a
            user gone or with changed credentials; a spent one presented
            after ``SIGNOFF_REFRESH_GRACE`` also revokes its whole family
            (:class:`~flask_signoff.RefreshTokenReused`).

        .. versionchanged:: 0.1
           Was ``refresh``, which read like Flask-Login's "refresh" (sign in
           again: :meth:`needs_refresh`, ``refresh_view``).
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


#: Flask-Login's name for the extension.
LoginManager = Signoff


# -- request hooks ---------------------------------------------------------------


def _before_request() -> Response | None:
    """Before every view: 503 if the session could not be opened, then the
    app-wide CSRF check. (One hook rather than one per concern: Flask's
    dispatch of each hook costs every request.)"""
    refused = refuse_if_store_unavailable()
    if refused is not None:
        return refused
    protect_app()
    return None


def _after_request(response: Response) -> Response:
    """After every view: what CSRF tokens need, then the attempts of
    ``check_throttle`` settled."""
    current = peek_request_state()
    response = finish_response(response, current)
    if current is not None:
        attempts.settle(response, current)
    return response
