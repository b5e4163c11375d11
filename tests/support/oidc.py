"""An OpenID Connect provider's published documents, served for real.

:class:`ProviderServer` serves a discovery document and a JWK Set over HTTP
on 127.0.0.1 from a thread of the test process, with keys made by
``cryptography``; :meth:`ProviderServer.logout_token` signs logout tokens
with PyJWT, each claim and header overridable (``None`` leaves one out), so
that a test can break exactly one rule. :func:`make_oidc_app` is a small app
signed in through the provider (:func:`sign_in`, :func:`signed_in`).
"""

from __future__ import annotations

import functools
import http.server
import json
import secrets
import threading
import time
import typing as t
import urllib.parse
from collections.abc import Iterator

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, jsonify, request
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from flask_signoff import (
    FrozenClock,
    Signoff,
    current_user,
    login_fresh,
    login_user,
)
from flask_signoff.core.store import Store
from flask_signoff.csrf import generate_csrf
from flask_signoff.oidc import OIDCProvider
from tests.support import SECRET_KEY
from tests.support.apps import User

CLIENT_ID = "signoff-app"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

#: Leave this claim or header out of a logout token.
OMIT: t.Any = None


@functools.cache
def _private_key(algorithm: str, variant: str) -> t.Any:
    # Made once per process and variant: an RSA key takes a while to make.
    if algorithm.startswith("ES"):
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class SigningKey:
    """A private key with its id and algorithm; its public JWK.

    :param variant: keys of different variants differ (a stranger's key
        under a known ``kid``); one variant is one key for the process.
    """

    def __init__(self, kid: str, algorithm: str = "RS256", variant: str = "") -> None:
        self.kid = kid
        self.algorithm = algorithm
        self.private = _private_key(algorithm, variant or kid)
        codec: t.Any = ECAlgorithm if algorithm.startswith("ES") else RSAAlgorithm
        public = json.loads(codec.to_jwk(self.private.public_key()))
        self.jwk = {**public, "kid": kid, "use": "sig", "alg": algorithm}


class ProviderServer:
    """A provider's discovery document and JWK Set on 127.0.0.1.

    :attr:`keys` is what the JWK Set holds; :attr:`requests` counts the
    fetches of each path; :meth:`stop` takes the server down (its port then
    refuses connections).
    """

    def __init__(self) -> None:
        self.keys = [SigningKey("key-1")]
        self.requests: dict[str, int] = {}
        #: Answers given as they are, by path: status, headers, body.
        self.raw: dict[str, tuple[int, dict[str, str], bytes]] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                if self.path in server.raw:
                    status, headers, data = server.raw[self.path]
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = server.metadata()
                elif self.path == "/jwks":
                    body = {"keys": [k.jwk for k in server.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: t.Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    def metadata(self) -> dict[str, t.Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout?ui=1",
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._httpd.server_close()

    def logout_token(
        self,
        *,
        key: SigningKey | None = None,
        now: float | None = None,
        headers: dict[str, t.Any] | None = None,
        **claims: t.Any,
    ) -> str:
        """A logout token signed with ``key`` (the first key by default).

        Claims default to a valid token for ``sid-1`` of ``sub-alice``;
        ``claim=OMIT`` leaves one out, as ``headers={"typ": OMIT}`` does.
        """
        key = key or self.keys[0]
        issued = int(now if now is not None else time.time())
        payload: dict[str, t.Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": issued,
            "exp": issued + 120,
            "jti": secrets.token_urlsafe(16),
            "sid": "sid-1",
            "sub": "sub-alice",
            "events": {LOGOUT_EVENT: {}},
            **claims,
        }
        header = {"kid": key.kid, "typ": "logout+jwt", **(headers or {})}
        payload = {k: v for k, v in payload.items() if v is not OMIT}
        header = {k: v for k, v in header.items() if v is not OMIT}
        return jwt.encode(payload, key.private, algorithm=key.algorithm, headers=header)


def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer()
    try:
        yield server
    finally:
        server.stop()


def id_token_response(
    issuer: str, sub: str, sid: str | None, *, aud: str = CLIENT_ID, **claims: t.Any
) -> dict[str, t.Any]:
    """What Authlib's ``authorize_access_token()`` returns once it validated
    the ID token: its claims under ``userinfo``, the raw token beside."""
    userinfo = {"iss": issuer, "aud": aud, "sub": sub, **claims}
    if sid is not None:
        userinfo["sid"] = sid
    return {
        "access_token": "at",
        "token_type": "Bearer",
        "id_token": f"eyJ.{secrets.token_urlsafe(24)}.sig",
        "userinfo": userinfo,
    }


def sign_in(
    app: Flask,
    idp: ProviderServer,
    name: str = "alice",
    *,
    sid: str | None = "sid-1",
    sub: str | None = None,
    **claims: t.Any,
) -> t.Any:
    """A new client of ``app``, signed in through the provider as ``name``."""
    client = app.test_client()
    token = id_token_response(idp.issuer, sub or f"sub-{name}", sid, **claims)
    query = urllib.parse.urlencode({"token": json.dumps(token)})
    response = client.get(f"/callback/{name}?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json == {"ok": True}
    assert signed_in(client) == name
    return client


def signed_in(client: t.Any) -> str | None:
    """Who ``client``'s session signs in, if anyone."""
    return t.cast("str | None", client.get("/me").json["user"])


def make_oidc_app(
    store: Store, clock: FrozenClock, issuer: str, **config: t.Any
) -> tuple[Flask, OIDCProvider]:
    """An app that signs users in through ``issuer`` (or with a password),
    with app-wide CSRF protection on."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SIGNOFF_COOKIE_SECURE=False,
        SIGNOFF_CSRF_PROTECT=True,
        **config,
    )
    signoff = Signoff(app, clock=clock, store=store)
    provider = signoff.register_provider(
        OIDCProvider(
            issuer,
            CLIENT_ID,
            post_logout_redirect_uri="http://127.0.0.1:5000/login",
            timeout=2.0,
        )
    )
    provider.init_app(app)
    users = {name: User(name) for name in ("alice", "bob")}

    @signoff.user_loader
    def load_user(user_id: str) -> User | None:
        return users.get(user_id)

    @app.get("/callback/<name>")
    def callback(name: str) -> t.Any:
        # As the app would once Authlib validated the callback; the token
        # response comes from the test, as JSON in the query string.
        token = json.loads(request.args["token"])
        return jsonify(ok=provider.login_user(users[name], token))

    @app.get("/password-login/<name>")
    def password_login(name: str) -> t.Any:
        return jsonify(ok=login_user(users[name]))

    @app.get("/fresh")
    def fresh() -> t.Any:
        return jsonify(fresh=login_fresh())

    @app.get("/csrf")
    def csrf() -> t.Any:
        return jsonify(token=generate_csrf())

    app.add_url_rule(
        "/backchannel-logout",
        view_func=provider.backchannel_logout_view,
        methods=["POST"],
    )

    @app.post("/logout")
    def logout() -> t.Any:
        return provider.logout(default_redirect="/login")

    @app.get("/login")
    def login_page() -> t.Any:
        return jsonify(state_ok=provider.check_logout_state())

    @app.get("/me")
    def me() -> t.Any:
        if not current_user.is_authenticated:
            return jsonify(user=None), 401
        return jsonify(user=current_user.id)

    @app.post("/api/token")
    def token() -> t.Any:
        if not current_user.is_authenticated:
            return jsonify(error="signed out"), 401
        return jsonify(signoff.issue_tokens(current_user).as_dict())

    @app.get("/api/me")
    def api_me() -> t.Any:
        if not current_user.is_authenticated:
            return jsonify(user=None), 401
        return jsonify(user=current_user.id)

    return app, provider
