"""Single sign-out with an OpenID Connect provider: :class:`OIDCProvider`.

Sign-in stays the job of an OpenID Connect client (Authlib's); this module
ties the sessions it makes to the provider's session, both ways:

- **Sign-in.** :meth:`OIDCProvider.login_user` signs the user in as
  :func:`~flask_signoff.login_user` does, and the session records the
  provider's ``iss``, ``sid`` and ``sub`` and keeps the raw ID token, on the
  server, for ``id_token_hint``. Refresh families issued from that session
  (:meth:`Signoff.issue_tokens <flask_signoff.Signoff.issue_tokens>`) carry
  the same ``iss``/``sid``/``sub``.
- **Back-channel logout** (OpenID Connect Back-Channel Logout 1.0). The
  provider POSTs a signed logout token to
  :attr:`OIDCProvider.backchannel_logout_view`; once it passes every rule of
  :mod:`flask_signoff.core.logout_token` and its ``jti`` was never seen,
  every session and tied refresh family of its ``(iss, sid)`` (or of
  ``(iss, sub)`` when it has no ``sid``) ends, on every process, since it
  is the store that forgets them.
- **RP-initiated logout** (OpenID Connect RP-Initiated Logout 1.0).
  :meth:`OIDCProvider.logout` ends the local session first, whatever the
  provider does, then sends the browser to the provider's
  ``end_session_endpoint``; :meth:`OIDCProvider.check_logout_state` checks
  the ``state`` it comes back with.

Sign-out everywhere and session revocation stay local: they end this app's
sessions and tokens and tell the provider nothing. Front-channel logout is
not supported: it needs the provider's page to load ours in a frame with our
cookie, which browsers that block third-party cookies no longer send.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import typing as t
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

from flask import Flask, Response, current_app, has_app_context, request, session
from werkzeug.wrappers import Response as BaseResponse

from .core.clock import system_clock
from .core.discovery import ProviderDocuments
from .core.keys import derive_hmac_key
from .core.logout_token import (
    DEFAULT_ALGORITHMS,
    LogoutClaims,
    LogoutTokenValidator,
    replay_key,
)
from .core.records import ProviderLink
from .csrf import csrf_exempt
from .exceptions import (
    ConfigError,
    InvalidLogoutToken,
    InvalidToken,
    ProviderUnavailable,
    StoreError,
    StoreUnavailable,
)
from .login import logout_user, sign_in, signoff_session
from .request import request_state
from .responses import json_response, token_error_response
from .signals import backchannel_logout
from .state import get_state
from .views import logout_response

logger = logging.getLogger("flask_signoff")

#: The label of the subkey of ``SECRET_KEY`` that keys the ``jti`` records.
REPLAY_LABEL = b"flask-signoff logout jti"

#: Largest back-channel request body read, in bytes.
MAX_BODY = 16 * 1024

#: Longest ID token kept on a session, in characters.
MAX_ID_TOKEN = 16 * 1024


class OIDCProvider:
    """One OpenID Connect provider that signs users in to the app.

    :param issuer: the provider's issuer identifier, exactly as its tokens
        and discovery document give it (``iss``).
    :param client_id: this app's client id there (the ``aud`` of its
        tokens).
    :param post_logout_redirect_uri: where the provider sends the browser
        back after an RP-initiated logout; it must be registered there.
        ``None``: the provider decides.
    :param metadata_url: the discovery document; by default
        ``issuer + "/.well-known/openid-configuration"``.
    :param algorithms: the JWS algorithms accepted on logout tokens;
        asymmetric only (see :mod:`flask_signoff.core.logout_token`).
    :param timeout: seconds each request to the provider may take.
    :param leeway: clock-skew tolerance for ``iat``/``exp``, seconds.
    :param max_age: how old a logout token may be (by its ``iat``, whatever
        its ``exp``), seconds.
    :param name: tells providers apart: the endpoint of
        :attr:`backchannel_logout_view` is ``<name>_backchannel_logout``,
        and the logout ``state`` is kept under a key with this name.
    :raises ConfigError: an algorithm outside the allow-list, an empty
        issuer or client id, or PyJWT without ``cryptography``
        (``pip install flask-signoff[crypto]``).
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        post_logout_redirect_uri: str | None = None,
        *,
        metadata_url: str | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        timeout: float = 5.0,
        leeway: float = 60.0,
        max_age: float = 600.0,
        name: str = "oidc",
    ) -> None:
        from jwt.algorithms import has_crypto

        if not has_crypto:
            raise ConfigError(
                "OIDCProvider",
                issuer,
                "",
                message="Logout tokens are signed with public keys, which PyJWT "
                "verifies with cryptography: pip install 'flask-signoff[crypto]'.",
            )
        if not issuer:
            raise ConfigError("issuer", issuer, "the provider's issuer identifier")
        self.issuer = issuer
        self.client_id = client_id
        self.post_logout_redirect_uri = post_logout_redirect_uri
        self.name = name
        #: The discovery document and keys, fetched and kept.
        self.documents = ProviderDocuments(
            issuer,
            metadata_url or issuer.rstrip("/") + "/.well-known/openid-configuration",
            timeout=timeout,
            clock=_app_clock,
        )
        #: Checks logout tokens (:mod:`flask_signoff.core.logout_token`).
        self.validator = LogoutTokenValidator(
            self.documents,
            client_id,
            algorithms=algorithms,
            leeway=leeway,
            max_age=max_age,
        )
        #: Where the state of an RP-initiated logout waits in the session.
        self.state_key = f"_signoff_{name}_logout_state"
        view = _named(self._backchannel_logout, f"{name}_backchannel_logout")
        #: The back-channel logout receiver, a view for ``POST`` with the
        #: form field ``logout_token``: ``app.add_url_rule(url,
        #: view_func=provider.backchannel_logout_view, methods=["POST"])``.
        #: Exempt from CSRF and cross-site checks (the provider's server
        #: posts it, with no cookie and no CSRF token) and from nothing else.
        self.backchannel_logout_view: Callable[[], Response] = csrf_exempt(view)

    def init_app(self, app: Flask) -> None:
        """Record the provider among ``app``'s (``app.extensions``).

        :raises ConfigError: the app has another provider of this name.
        """
        providers = app.extensions.setdefault("signoff_providers", {})
        if providers.get(self.name, self) is not self:
            raise ConfigError(
                "name", self.name, "a name no other provider of the app has"
            )
        providers[self.name] = self

    # -- sign-in -----------------------------------------------------------

    def login_user(
        self,
        user: t.Any,
        token: Mapping[str, t.Any],
        remember: bool = False,
        *,
        fresh: bool | None = None,
        force: bool = False,
    ) -> bool:
        """Sign ``user`` in from the provider's token response.

        Call it once the OpenID Connect client validated the callback
        (Authlib: ``token = oauth.idp.authorize_access_token()``, whose
        ``token["userinfo"]`` holds the validated ID token's claims and
        ``token["id_token"]`` the raw ID token). The claims are checked again
        here: ``iss`` must be this provider's and ``aud`` must hold our
        client id. The session records ``iss``, ``sid`` (if the ID token
        has one) and ``sub``, and keeps the raw ID token on its server-side
        record (never in ``flask.session``), for ``id_token_hint``.

        :param remember: as :func:`~flask_signoff.login_user`.
        :param fresh: whether the login counts as fresh. By default it does,
            as with :func:`~flask_signoff.login_user`, unless the ID token's
            ``auth_time`` says that the provider last checked the user's
            credentials longer than ``SIGNOFF_FRESH_FOR`` ago (a single
            sign-on riding on an older provider session).
        :param force: sign in even if ``user.is_active`` is false.
        :returns: ``False`` if the user is inactive and ``force`` is not set.
        :raises InvalidToken: the token response is not from this provider
            for this client (401).
        """
        claims, id_token = self._checked_claims(token)
        if fresh is None:
            auth_time = claims.get("auth_time")
            state = get_state()
            fresh = (
                not isinstance(auth_time, (int, float))
                or isinstance(auth_time, bool)
                or state.clock() - auth_time < state.settings.session_policy.fresh_for
            )
        link = ProviderLink(self.issuer, claims.get("sid", ""), claims["sub"], id_token)
        return sign_in(user, remember, fresh=fresh, force=force, link=link)

    def _checked_claims(
        self, token: Mapping[str, t.Any]
    ) -> tuple[Mapping[str, t.Any], str]:
        claims = token.get("userinfo") if isinstance(token, Mapping) else None
        id_token = token.get("id_token") if isinstance(token, Mapping) else None
        if not isinstance(claims, Mapping) or not isinstance(id_token, str):
            raise InvalidToken("The token response has no validated ID token.")
        if claims.get("iss") != self.issuer:
            raise InvalidToken("The ID token is not from this provider.")
        aud = claims.get("aud")
        if self.client_id not in (aud if isinstance(aud, list) else [aud]):
            raise InvalidToken("The ID token is not meant for this client.")
        for name in ("sub", "sid"):
            value = claims.get(name, "" if name == "sid" else None)
            if (
                not isinstance(value, str)
                or len(value) > 255
                or (name == "sub" and not value)
            ):
                raise InvalidToken(f"The ID token's {name} is not valid.")
        if not id_token or len(id_token) > MAX_ID_TOKEN:
            raise InvalidToken("The ID token is too large to keep.")
        return claims, id_token

    # -- back-channel logout -------------------------------------------------

    def _backchannel_logout(self) -> Response:
        try:
            claims = self.validator.validate(_logout_token_field(), get_state().clock())
            ended = self._end(claims)
        except InvalidLogoutToken as error:
            logger.warning(
                "Back-channel logout from %s refused: %s",
                self.issuer,
                error.description,
            )
            return token_error_response(error)
        except ProviderUnavailable as error:
            logger.warning("Back-channel logout from %s: %s", self.issuer, error)
            response = json_response(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "The provider's keys cannot be fetched.",
                },
                503,
            )
            response.headers["Cache-Control"] = "no-store"
            return response
        logger.info(
            "Back-channel logout from %s by %s: %d session(s) and token family(ies) "
            "ended.",
            self.issuer,
            "sid" if claims.sid else "sub",
            ended,
        )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        backchannel_logout.send(
            app, issuer=claims.issuer, sid=claims.sid, sub=claims.sub, ended=ended
        )
        response = current_app.response_class(status=200)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _end(self, claims: LogoutClaims) -> int:
        """Refuse a replayed ``jti``, then end what the token names.

        The ``jti`` is reserved first, for as long as the token would be
        accepted: two deliveries of one token at once end things once. If
        the store fails after that, the reservation is given back (when the
        store lets us), so the provider's retry is not taken for a replay.
        """
        state = get_state()
        now = state.clock()
        secret = current_app.config.get("SECRET_KEY")
        key = replay_key(
            derive_hmac_key(secret, REPLAY_LABEL) if secret else b"",
            claims.issuer,
            claims.jti,
        )
        reserved = state.store.reserve(key, 1, claims.usable_until - now, now)
        if not reserved.granted:
            raise InvalidLogoutToken("The logout_token was used before (jti).")
        policy = state.tokens.policy
        try:
            # With both, the sid (OpenID Connect Back-Channel Logout 1.0,
            # 2.7): only that provider session ended, not the user's others.
            return state.store.end_provider_sessions(
                claims.issuer,
                sid=claims.sid,
                sub="" if claims.sid else claims.sub,
                until=now + policy.access_ttl + policy.leeway,
            )
        except StoreUnavailable:
            # Best effort: with the store down, the provider's retry gets 400.
            with contextlib.suppress(StoreError):
                state.store.release(key, reserved.ends)
            raise

    # -- RP-initiated logout -------------------------------------------------

    def logout(self, default_redirect: str) -> BaseResponse:
        """Sign out here, then at the provider (RP-Initiated Logout 1.0).

        Call it from the app's ``POST`` sign-out view, after its CSRF check.
        The local session ends first (:func:`~flask_signoff.logout_user`),
        whatever becomes of the rest. If the session came from this
        provider, the answer is a ``303`` to its ``end_session_endpoint``
        with ``id_token_hint``, ``client_id``, ``post_logout_redirect_uri``
        and a random ``state`` (kept in the session data that sign-out
        keeps, for :meth:`check_logout_state`); otherwise, or if the
        provider's metadata cannot be fetched or has no such endpoint, a
        ``303`` to ``default_redirect`` (a local path). Either way with the
        headers of :func:`~flask_signoff.views.logout_response`.

        :raises StoreUnavailable: the local session could not be ended (503:
            nothing is reported as signed out).
        """
        record = None if request_state().by_bearer else signoff_session().record
        mine = record is not None and record.oidc_iss == self.issuer
        id_token = record.oidc_id_token if record is not None and mine else ""
        logout_user()
        response = logout_response(default_redirect)
        if not mine:
            return response
        try:
            endpoint = self.documents.endpoint("end_session_endpoint")
        except ProviderUnavailable as error:
            logger.warning("Signed out locally only: %s", error)
            return response
        if endpoint is None:
            return response
        params = {"client_id": self.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        if self.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.post_logout_redirect_uri
            params["state"] = session[self.state_key] = secrets.token_urlsafe(32)
        joiner = "&" if urllib.parse.urlsplit(endpoint).query else "?"
        response.headers["Location"] = (
            endpoint + joiner + urllib.parse.urlencode(params)
        )
        return response

    def check_logout_state(self) -> bool:
        """Whether this request (the post-logout redirect) carries the
        ``state`` of the last :meth:`logout`; true once, then forgotten.

        A request without ``state`` leaves the kept one in place.
        """
        given = request.args.get("state")
        if not given or self.state_key not in session:
            # Nothing to pop: an anonymous visit stays free of writes.
            return False
        expected = session.pop(self.state_key, None)
        return isinstance(expected, str) and hmac.compare_digest(
            expected.encode(), given.encode("utf-8", "surrogatepass")
        )


def _logout_token_field() -> str:
    """The ``logout_token`` of a back-channel request, or a refusal."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidLogoutToken(
            "The request must be a form (application/x-www-form-urlencoded)."
        )
    if request.content_length is None or request.content_length > MAX_BODY:
        raise InvalidLogoutToken("The request body is missing or too large.")
    values = request.form.getlist("logout_token")
    if len(values) != 1:
        raise InvalidLogoutToken("The request must have one logout_token.")
    return values[0]


def _app_clock() -> float:
    return get_state().clock() if has_app_context() else system_clock()


def _named(view: Callable[[], Response], name: str) -> Callable[[], Response]:
    """A plain function calling ``view``, named ``name`` (its endpoint)."""

    def call() -> Response:
        return view()

    call.__name__ = call.__qualname__ = name
    return call


__all__ = ["OIDCProvider"]
