"""Sign-in through an OpenID Connect provider, and single sign-out with it.

Only when ``DEMO_OIDC_ISSUER``, ``DEMO_OIDC_CLIENT_ID`` and
``DEMO_OIDC_CLIENT_SECRET`` are set (``FLASK_DEMO_OIDC_*`` in the
environment); without them none of these routes exists.

- ``GET /login/oidc``: to the provider (Authlib's authorization-code flow,
  with PKCE); a local ``next`` is kept for the way back.
- ``GET /login/oidc/callback``: Authlib checks ``state``, the code and the ID
  token; the local user linked to the provider's ``(iss, sub)`` signs in, and
  is created on first sign-in, named after ``preferred_username`` when that is
  free, else after ``sub``, without a usable password.
- ``POST /logout``: a session that came from the provider ends here first,
  then the browser goes to the provider's end-session endpoint
  (RP-Initiated Logout), which comes back to ``/login``.
- ``POST /backchannel-logout``: the provider's back-channel logout calls
  (OIDC Back-Channel Logout): every session of that provider session or
  user ends.

The client is registered at the provider with the redirect URI
``<demo>/login/oidc/callback``, the post-logout redirect URI ``<demo>/login``
and the back-channel logout URI ``<demo>/backchannel-logout`` (with
``backchannel_logout_session_required``), where ``<demo>`` is
``DEMO_OIDC_BASE_URL`` (default ``http://127.0.0.1:5000``, as ``flask run``).
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from joserfc.errors import JoseError

from flask_signoff import csrf_protect, is_safe_redirect, safe_redirect_target
from flask_signoff.oidc import OIDCProvider

from . import OIDC_SETTINGS

if t.TYPE_CHECKING:
    from flask_signoff import Signoff

    from .users import UserStore

#: Where the local ``next`` waits while the browser is at the provider.
NEXT_KEY = "demo_oidc_next"
#: Where the demo is, as registered at the provider, unless
#: ``DEMO_OIDC_BASE_URL`` says otherwise: ``flask run``'s address.
DEFAULT_BASE_URL = "http://127.0.0.1:5000"


def init_oidc(app: Flask, signoff: Signoff, users: UserStore) -> OIDCProvider:
    """Add the provider's routes; every one of ``OIDC_SETTINGS`` must be set.

    The provider is kept as ``app.extensions["demo_oidc"]``, and its origin
    joins ``form-action`` in ``app.extensions["demo_csp"]``: sign-out posts
    a form that ends at the provider, and Chromium checks ``form-action`` on
    every redirect after a form is sent.
    """
    issuer, client_id, client_secret = (str(app.config[key]) for key in OIDC_SETTINGS)
    base_url = str(app.config.get("DEMO_OIDC_BASE_URL") or DEFAULT_BASE_URL)
    base_url = base_url.rstrip("/")

    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "timeout": 10,
        },
    )
    client = oauth.create_client("idp")
    assert client is not None

    provider = signoff.register_provider(
        OIDCProvider(
            issuer=issuer,
            client_id=client_id,
            post_logout_redirect_uri=f"{base_url}/login",
        )
    )
    app.extensions["demo_oidc"] = provider
    issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
    csp = app.extensions["demo_csp"]
    csp["form-action"] = f"{csp['form-action']} {issuer_origin}"

    @app.context_processor
    def sign_in_link() -> dict[str, bool]:
        return {"oidc_sign_in": True}

    @app.get("/login/oidc")
    def login_oidc() -> t.Any:
        next_url = request.args.get("next")
        if is_safe_redirect(next_url):
            session[NEXT_KEY] = next_url
        else:
            # Not the target of an earlier sign-in that never came back.
            session.pop(NEXT_KEY, None)
        try:
            return client.authorize_redirect(base_url + url_for("login_oidc_callback"))
        except requests.RequestException:
            return _failed("The identity provider cannot be reached.", 503)

    @app.get("/login/oidc/callback")
    def login_oidc_callback() -> t.Any:
        next_url = session.pop(NEXT_KEY, None)
        try:
            # Checks state (against the session that started the flow), the
            # code, PKCE, and the ID token: signature, iss, aud, exp, nonce.
            token = client.authorize_access_token()
        except requests.RequestException:
            return _failed("The identity provider cannot be reached.", 503)
        except (OAuthError, JoseError, ValueError):
            return _failed("Sign-in with the identity provider failed.", 400)
        claims = token.get("userinfo") or {}
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return _failed("Sign-in with the identity provider failed.", 400)
        preferred = claims.get("preferred_username")
        names = (preferred if isinstance(preferred, str) else None, subject)
        user = users.oidc_user(issuer, subject, names)
        if user is None:
            return _failed("No free username for this account.", 409)
        provider.login_user(user, token)
        return redirect(
            next_url if is_safe_redirect(next_url) else url_for("index"), 303
        )

    app.add_url_rule(
        "/backchannel-logout",
        "backchannel_logout",
        provider.backchannel_logout_view,
        methods=["POST"],
    )

    # POST /logout of the sign-out blueprint, through the provider: a session
    # that came from it ends here first, then at the provider.
    blueprint_logout = app.view_functions["signoff.logout"]

    @csrf_protect
    def logout() -> t.Any:
        if request.method == "POST":
            target = safe_redirect_target(request.form.get("next"), url_for("login"))
            return provider.logout(default_redirect=target)
        return blueprint_logout()

    app.view_functions["signoff.logout"] = logout
    return provider


def _failed(message: str, status: int) -> t.Any:
    current_app.logger.info("OpenID Connect sign-in refused: %s", message)
    return render_template("login.html", error=message), status
