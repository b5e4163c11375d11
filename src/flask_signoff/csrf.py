"""CSRF protection that costs anonymous visitors nothing and ends with the login.

Two kinds of token, both HMAC-SHA256 signatures made with :mod:`itsdangerous`
under a per-kind salt (a labelled subkey of ``SECRET_KEY``, never the key
itself), and checked with :func:`hmac.compare_digest`:

``s.<sig>``, for a signed-in session
    The signature of the session id (the cookie value). Nothing is stored:
    the token is recomputed from the id on every request. It changes with the
    id, so it is new after every sign-in, sign-out and rotation; a session
    planted before sign-in never learns the signed-in token, and the token of
    one session is refused for any other.

``a.<sig>``, before sign-in
    A signed double-submit token: the signature of a random nonce held in a
    small separate cookie (``HttpOnly``, ``SameSite=Lax``; ``__Host-`` when
    cookies are ``Secure``). Showing a form writes nothing to the store. The
    nonce is replaced whenever the session id changes.

Every protected request must also come from the app's own origin:
``Sec-Fetch-Site`` absent, ``same-origin`` or ``none``, and ``Origin`` absent,
the app's own, or listed in ``SIGNOFF_TRUSTED_ORIGINS``.

A request with a well-formed ``Bearer`` token is authenticated by that
token alone (never by the cookie), and a browser cannot attach one
cross-site without a CORS preflight, so it needs neither check. Other
schemes do not exempt a request: browsers send ``Basic``, ``Digest``,
``Negotiate`` and ``NTLM`` credentials by themselves, cross-site too. The
request's :class:`~flask_signoff.request.RequestState` says which it is:
the same reading that decides who the request's user is.

Flask-WTF: if its ``CSRFProtect`` is set up on the app, its ``csrf_token``
template global is left in place (ours is always ``signoff_csrf_token``), and
a token that Flask-WTF accepts is accepted here too. Its per-session value is
dropped on every change of session id (see
:data:`~flask_signoff.session_interface.AUTH_KEYS`), so that token too is new
after every sign-in, sign-out and rotation.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import typing as t
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, request, session
from itsdangerous import Signer
from markupsafe import Markup, escape

from .authorization import BearerToken
from .exceptions import CrossSiteRequest, CSRFError, RequestRefused
from .request import RequestState, request_state
from .responses import refused_response
from .session_interface import SignoffSession
from .state import get_state

F = t.TypeVar("F", bound=Callable[..., t.Any])

#: The form field that carries the token.
FIELD_NAME = "csrf_token"
#: The request header that carries the token (for ``fetch`` and XHR).
HEADER_NAME = "X-CSRF-Token"
#: Methods that never need a token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: ``Sec-Fetch-Site`` values that are not cross-site.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})
#: The base name of the nonce cookie of anonymous tokens.
NONCE_COOKIE = "signoff_csrf"
#: Longest token looked at; ours are 45 characters, Flask-WTF's about 90.
MAX_TOKEN_LENGTH = 256

_SALTS = {"s": "flask-signoff.csrf.session", "a": "flask-signoff.csrf.anonymous"}
_NONCE_RE = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
_EXEMPT_ATTR = "_signoff_csrf_exempt"


# -- tokens ------------------------------------------------------------------


def _keys() -> list[str | bytes]:
    """Secret keys, newest first: ``SECRET_KEY`` then ``SECRET_KEY_FALLBACKS``."""
    key = current_app.secret_key
    if not key:
        raise RuntimeError(
            "Flask-Signoff's CSRF tokens need the app's SECRET_KEY to be set."
        )
    fallbacks = current_app.config.get("SECRET_KEY_FALLBACKS") or []
    return [key, *reversed(fallbacks)]


def _signature(kind: str, value: str, key: str | bytes) -> str:
    signer = Signer(key, salt=_SALTS[kind], digest_method=hashlib.sha256)
    return signer.get_signature(value).decode("ascii")


def _signoff_session() -> SignoffSession | None:
    sess = session._get_current_object()  # type: ignore[attr-defined]
    return sess if isinstance(sess, SignoffSession) else None


def _signed_in_ids(sess: SignoffSession | None) -> list[str]:
    """The ids a session token may be bound to, the current one first.

    The id the browser sent is kept besides a new one set during this request
    (a remembered session back from idle is rotated as it is opened, so the
    form the browser shows still carries the old id's token).
    """
    if sess is None or sess.record is None or sess.record.user_id is None:
        return []
    return [s for s in (sess.new_secret, sess.secret) if s]


def _id_changed(sess: SignoffSession | None) -> bool:
    """Whether this request signed in, out, or moved the session to a new id."""
    return sess is not None and (sess.new_secret is not None or sess.drop_cookie)


def _nonce_cookie_name() -> str:
    secure = get_state().interface.get_cookie_secure(current_app)
    return f"__Host-{NONCE_COOKIE}" if secure else NONCE_COOKIE


def _request_nonce() -> str | None:
    value = request.cookies.get(_nonce_cookie_name())
    return value if value and _NONCE_RE.match(value) else None


def _anonymous_nonce() -> str:
    """The nonce of this browser's anonymous tokens; a new one if needed."""
    state = request_state()
    if state.csrf_nonce is not None:
        return state.csrf_nonce
    nonce = None if _id_changed(_signoff_session()) else _request_nonce()
    if nonce is None:
        nonce = secrets.token_urlsafe(32)
        state.csrf_nonce_is_new = True
    state.csrf_nonce = nonce
    return nonce


def generate_csrf() -> str:
    """Return the CSRF token for the current request.

    Bound to the session id when someone is signed in, else a signed
    double-submit token whose nonce cookie is set on the response.
    """
    request_state().csrf_token_made = True
    ids = _signed_in_ids(_signoff_session())
    if ids:
        return "s." + _signature("s", ids[0], _keys()[0])
    return "a." + _signature("a", _anonymous_nonce(), _keys()[0])


def csrf_field() -> Markup:
    """A hidden ``<input>`` carrying the token, for templates."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FIELD_NAME, escape(_template_token())
    )


def _template_token() -> str:
    """The token templates should use: Flask-WTF's if it is active."""
    if _flask_wtf_active():
        from flask_wtf.csrf import generate_csrf as wtf_generate_csrf

        return t.cast(str, wtf_generate_csrf())
    return generate_csrf()


def _matches(kind: str, value: str, given: str) -> bool:
    for key in _keys():
        if hmac.compare_digest(_signature(kind, value, key), given):
            return True
    return False


def validate_csrf(token: str | None) -> None:
    """Raise :class:`~flask_signoff.exceptions.CSRFError` unless ``token`` is
    this request's CSRF token.

    A signed-in session accepts only the token of its own id. Before sign-in
    the double-submit token of the nonce cookie is accepted.
    """
    if not token:
        raise CSRFError("The CSRF token is missing.")
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise CSRFError("The CSRF token is malformed.")
    kind, _, sig = token.partition(".")
    sess = _signoff_session()
    ids = _signed_in_ids(sess)
    if kind == "s" and ids:
        if any(_matches("s", value, sig) for value in ids):
            return
    elif kind == "a" and not ids:
        nonce = _request_nonce()
        if nonce is not None and _matches("a", nonce, sig):
            return
    elif kind not in _SALTS and _flask_wtf_active():
        _validate_flask_wtf(token)
        return
    raise CSRFError("The CSRF token is not valid for this session.")


def _flask_wtf_active() -> bool:
    return "csrf" in current_app.extensions


def _validate_flask_wtf(token: str) -> None:
    from flask_wtf.csrf import validate_csrf as wtf_validate_csrf
    from wtforms import ValidationError

    try:
        wtf_validate_csrf(token)
    except ValidationError as e:
        raise CSRFError(str(e)) from None


# -- origin ------------------------------------------------------------------


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]``, lower case, without a default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    if port is not None and port != default:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def _trusted_origins() -> set[str]:
    origins = {_origin_of(o) for o in get_state().settings.trusted_origins}
    return {o for o in origins if o is not None}


def allowed_origins() -> set[str]:
    """The app's own origin (from ``request.host_url``) and the trusted ones."""
    own = _origin_of(request.host_url)
    return _trusted_origins() | ({own} if own is not None else set())


def check_same_origin() -> None:
    """Raise :class:`~flask_signoff.exceptions.CrossSiteRequest` unless the
    request comes from the app's own origin (or a trusted one).

    ``Sec-Fetch-Site`` must be absent, ``same-origin`` or ``none`` (typed by
    the user); ``same-site`` is refused too, as a sibling subdomain is not
    this app. ``Origin`` must be absent or allowed; ``Origin: null`` (sandboxed
    frames, some redirects) is refused.

    An ``Origin`` listed in ``SIGNOFF_TRUSTED_ORIGINS`` passes whatever
    ``Sec-Fetch-Site`` says: a browser posting from another origin always
    says ``same-site`` or ``cross-site``, so the setting would otherwise
    never let anything through.
    """
    origin = request.headers.get("Origin")
    normalized = _origin_of(origin.strip()) if origin is not None else None
    if normalized is not None and normalized in _trusted_origins():
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in SAME_SITE_FETCH:
        raise CrossSiteRequest("The request came from another site.")
    if origin is not None and normalized not in allowed_origins():
        raise CrossSiteRequest("The request came from another origin.")


# -- protection ----------------------------------------------------------------


def _bearer_request() -> bool:
    """Whether the request carries a well-formed ``Bearer`` token.

    Only a Bearer token counts: browsers keep HTTP authentication credentials
    (``Basic``, ``Digest``, ``Negotiate``, ``NTLM``) and send them by
    themselves, on a post that another site's page makes as well; and a
    malformed Bearer header exempts nothing.
    """
    return isinstance(request_state().bearer, BearerToken)


def _needs_check() -> bool:
    # A Bearer token alone authenticates such a request (never the cookie),
    # and a cross-site page cannot add it without a CORS preflight.
    return request.method not in SAFE_METHODS and not _bearer_request()


def protect() -> None:
    """Check the current request now: origin first, then the token.

    Does nothing for safe methods and for requests with a well-formed
    ``Bearer`` token. Raises a
    :class:`~flask_signoff.exceptions.RequestRefused` subclass otherwise,
    which the extension answers with 403.
    """
    if not _needs_check():
        return
    state = request_state()
    if state.csrf_checked:
        return
    check_same_origin()
    token = request.headers.get(HEADER_NAME)
    if not token and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        token = request.form.get(FIELD_NAME)
    validate_csrf(token)
    state.csrf_checked = True


def csrf_protect(view: F) -> F:
    """Check the CSRF token and origin of the view's unsafe requests."""

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        protect()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return t.cast(F, wrapper)


V = t.TypeVar("V", bound="Callable[..., t.Any] | Blueprint")


def csrf_exempt(view: V) -> V:
    """Leave a view, or every view of a blueprint, out of the app-wide check
    that ``SIGNOFF_CSRF_PROTECT`` turns on.

    Only for endpoints that never act on the cookie's authority (a token
    endpoint that authenticates by its request body, a webhook).
    """
    setattr(view, _EXEMPT_ATTR, True)
    return view


def _is_exempt(app: Flask) -> bool:
    view = app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, _EXEMPT_ATTR, False):
        return True
    return any(
        getattr(app.blueprints.get(name), _EXEMPT_ATTR, False)
        for name in request.blueprints
    )


def protect_app() -> None:
    """The app-wide check that ``SIGNOFF_CSRF_PROTECT`` turns on, run before
    every view (see :func:`flask_signoff.extension.Signoff.init_app`)."""
    if request.method in SAFE_METHODS:
        return  # protect() would do nothing: no need to look at the view
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if get_state(app).settings.csrf_protect and not _is_exempt(app):
        protect()


def finish_response(response: Response, state: RequestState | None) -> Response:
    """Add what this request's tokens need to its response: ``no-store`` on
    a page with a token, the nonce cookie set, or deleted with the session id.

    :param state: the request's state if it made one (peeked, never made:
        a request that made no token has nothing to add).
    """
    if state is not None and state.csrf_token_made:
        # A page with a per-browser token must never be served from a cache
        # to anyone else, nor come back after sign-out.
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    if state is not None and state.csrf_nonce_is_new and state.csrf_nonce:
        _set_nonce_cookie(response, _nonce_cookie_name(), state.csrf_nonce)
    elif _id_changed(_signoff_session()):
        name = _nonce_cookie_name()
        if name in request.cookies:
            _set_nonce_cookie(response, name, None)
    return response


def _set_nonce_cookie(response: Response, name: str, nonce: str | None) -> None:
    secure = get_state().interface.get_cookie_secure(current_app)
    # Host-only, Path=/: what the __Host- prefix demands; deleted with the
    # same attributes, or browsers keep it.
    if nonce is None:
        response.delete_cookie(
            name, path="/", secure=secure, httponly=True, samesite="Lax"
        )
    else:
        response.set_cookie(
            name, nonce, path="/", secure=secure, httponly=True, samesite="Lax"
        )
    response.headers["Cache-Control"] = "no-store"


def init_csrf(app: Flask) -> None:
    """Set CSRF protection up on ``app`` (called by ``Signoff.init_app``)."""
    app.jinja_env.globals["signoff_csrf_token"] = generate_csrf
    app.jinja_env.globals["signoff_csrf_field"] = csrf_field
    # Flask-WTF's global stays in place when it is there first; its tokens
    # are accepted by validate_csrf too.
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)
    # protect_app and finish_response run from the extension's own request
    # hooks, one before and one after each request: every hook Flask calls
    # costs every request.
    app.register_error_handler(RequestRefused, refused_response)


__all__ = [
    "FIELD_NAME",
    "HEADER_NAME",
    "allowed_origins",
    "check_same_origin",
    "csrf_exempt",
    "csrf_field",
    "csrf_protect",
    "finish_response",
    "generate_csrf",
    "init_csrf",
    "protect",
    "protect_app",
    "validate_csrf",
]
