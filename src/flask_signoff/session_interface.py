"""Flask's session, kept server-side: the cookie holds only a random id.

A request, as data:

1. The cookie arrives. A value that is not of our form is refused without a
   store read. Otherwise one store read by hash; a missing or expired record
   leaves the request anonymous and writes nothing.
2. The view runs; ``flask.session`` is the record's data.
3. On the way out a modified session is written with a conditional write
   (never re-creating a revoked record); an unmodified one is touched at most
   once per touch interval; the cookie is sent only when its id or expiry
   changes. Responses of authenticated requests get ``Cache-Control: no-store``.

When the store is unavailable the session is marked so: the extension answers
503, nothing is written, and the cookie is left alone. So is every request
while a store that was down at start-up has not passed its check yet.
"""

from __future__ import annotations

import logging
import typing as t

from flask import Flask, Request, Response, request, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from .adoption import Adopted, Adoption
from .core.records import SessionRecord
from .core.sessions import LoadStatus
from .exceptions import StoreUnavailable
from .request import client_info, peek_request_state
from .responses import replace_with_unavailable, unavailable_response
from .signals import session_rotated
from .state import SignoffState

logger = logging.getLogger("flask_signoff")

#: Session keys that belong to authentication, dropped on sign-in, sign-out and
#: rotation. ``csrf_token`` is Flask-WTF's per-session value: dropping it makes
#: Flask-WTF's token change with the session id, as Flask-Signoff's own does.
AUTH_KEYS = ("_csrf_token", "csrf_token")

#: Longest cookie value looked at; ours are 52 characters.
MAX_COOKIE_LENGTH = 128


def _vary_cookie(response: Response) -> None:
    """Add ``Cookie`` to the ``Vary`` header.

    ``response.vary.add`` parses the header into a set and writes it back;
    most responses have no ``Vary`` yet, and then setting it is enough.
    (``getlist`` rather than ``in``: werkzeug answers a missing header by
    making an HTTP exception, which costs more than the scan.)
    """
    if response.headers.getlist("Vary"):
        response.vary.add("Cookie")
    else:
        response.headers["Vary"] = "Cookie"


class SignoffSession(CallbackDict[str, t.Any], SessionMixin):
    """``flask.session``: a dict whose server-side record is :attr:`record`."""

    def __init__(
        self,
        initial: t.Mapping[str, t.Any] | None = None,
        *,
        record: SessionRecord | None = None,
        secret: str | None = None,
        cookie_present: bool = False,
    ) -> None:
        def on_update(self: SignoffSession) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(initial, on_update)
        #: The live record behind this session, or ``None``.
        self.record = record
        #: The cookie value as the browser sent it (only while it is valid).
        self.secret = secret
        #: A new id to send in ``Set-Cookie`` at the end of the request.
        self.new_secret: str | None = None
        #: The browser sent a session cookie (valid or not).
        self.cookie_present = cookie_present
        #: The browser's cookie must be deleted at the end of the request.
        self.drop_cookie = False
        #: The store failed during this request: write nothing, keep the cookie.
        self.unavailable = False
        #: Flask-Login's cookies to delete: their sign-in was adopted
        #: (``delete_cookie`` arguments; see :mod:`flask_signoff.adoption`).
        self.expired_cookies: tuple[dict[str, t.Any], ...] = ()
        self.modified = False
        self.accessed = False

    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().setdefault(key, default)

    @property
    def user_id(self) -> str | None:
        """The signed-in user's id, from the server-side record."""
        return self.record.user_id if self.record is not None else None

    def drop_auth_keys(self) -> None:
        """Drop the session keys of authentication (:data:`AUTH_KEYS`)."""
        for key in AUTH_KEYS:
            self.pop(key, None)

    def end(self) -> None:
        """The record behind this session has ended (signed out, revoked,
        vanished): forget it, and delete the browser's cookie.

        The authentication keys go with it; other data, if any is left,
        moves to a new id at the end of the request. The caller has ended
        the record in the store, or found it gone.
        """
        self.record = None
        self.new_secret = None
        self.drop_cookie = True
        self.drop_auth_keys()

    def move_to(
        self, secret: str, record: SessionRecord, *, keep_auth_keys: bool = False
    ) -> None:
        """The session now lives under a new id (sign-in, rotation): send
        ``secret`` as the cookie at the end of the request.

        :param keep_auth_keys: keep the authentication keys, when the move
            changes no one's authentication: a remembered session revived as
            it is opened (the page the browser shows still carries the
            tokens of the old id), an anonymous session's first id.
        """
        self.record = record
        self.new_secret = secret
        self.drop_cookie = False
        if not keep_auth_keys:
            self.drop_auth_keys()


class SignoffSessionInterface(SessionInterface):
    """The :class:`~flask.sessions.SessionInterface` of Flask-Signoff.

    Cookie attributes come from small overridable hooks, as in Flask:
    Flask's ``SESSION_COOKIE_*`` keys keep their meaning; only the defaults
    are safer (``HttpOnly``, ``SameSite=Lax``, ``Secure`` and a ``__Host-``
    prefix unless ``SIGNOFF_COOKIE_SECURE`` is false).
    """

    serializer = TaggedJSONSerializer()
    session_class = SignoffSession

    def __init__(self, state: SignoffState) -> None:
        self.state = state
        #: Flask-Login's sign-ins, adopted while ``SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL``
        #: has not passed.
        self.adoption = Adoption(state)
        #: A Secure cookie was set over plain http, and logged (once per app).
        self.warned_secure_over_http = False

    # -- cookie attributes -------------------------------------------------

    def get_cookie_secure(self, app: Flask) -> bool:
        return self.state.settings.cookie_secure

    def get_cookie_samesite(self, app: Flask) -> str | None:
        value = app.config["SESSION_COOKIE_SAMESITE"]
        return "Lax" if value is None else t.cast(str, value)

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_name(self, app: Flask) -> str:
        name = t.cast(str, app.config["SESSION_COOKIE_NAME"])
        if not self.get_cookie_secure(app) or name.startswith("__"):
            return name
        # __Host- needs Secure, Path=/ and no Domain; else __Secure-.
        if self.get_cookie_domain(app) is None and self.get_cookie_path(app) == "/":
            return f"__Host-{name}"
        return f"__Secure-{name}"

    # -- Flask's hooks -----------------------------------------------------

    def open_session(self, app: Flask, request: Request) -> SignoffSession:
        value = request.cookies.get(self.get_cookie_name(app))
        if not self.state.store_checked:
            # A store that was down at start-up is checked before it serves
            # anything, anonymous requests included (they may sign in).
            try:
                self.state.check_store()
            except StoreUnavailable:
                session = self.session_class(cookie_present=bool(value))
                session.unavailable = True
                return session
        if not value or len(value) > MAX_COOKIE_LENGTH or not value.isascii():
            # No cookie of ours, or none we could have issued.
            return self._without_ours(app, request, value)
        try:
            loaded = self.state.lifecycle.load(value)
        except StoreUnavailable:
            logger.warning("Session store unavailable while loading a session.")
            session = self.session_class(cookie_present=True)
            session.unavailable = True
            return session
        if not loaded.alive or loaded.record is None:
            return self._without_ours(app, request, value)
        record = loaded.record
        data = self._decode(record.data)
        session = self.session_class(
            data, record=record, secret=value, cookie_present=True
        )
        if loaded.status is LoadStatus.REVIVED:
            # A remembered session back after the idle timeout: serve it, but
            # under a new id and no longer fresh.
            try:
                rotated = self.state.lifecycle.rotate(record, fresh=False)
            except StoreUnavailable:
                session.unavailable = True
                return session
            if rotated is None:
                return self._dead(value)
            session.move_to(*rotated, keep_auth_keys=True)
            session_rotated.send(app, user_id=record.user_id, reason="revived")
        return session

    def _without_ours(
        self, app: Flask, request: Request, value: str | None
    ) -> SignoffSession:
        """A session for a request without a live session of ours (``value``
        is our cookie, dead or absent): anonymous, or, while the window is
        open, Flask-Login's sign-in adopted (:mod:`flask_signoff.adoption`).
        """
        adoption = self.adoption
        if not adoption.open(self.state.clock()):
            return self._dead(value) if value else self.session_class()
        try:
            adopted = adoption.adopt(app, request, drop=AUTH_KEYS)
        except StoreUnavailable:
            logger.warning("Session store unavailable while adopting a sign-in.")
            session = self.session_class(cookie_present=bool(value))
            session.unavailable = True
            return session
        if isinstance(adopted, Adopted):
            session = self.session_class(adopted.data, cookie_present=bool(value))
            session.move_to(adopted.secret, adopted.record)
            session.modified = False  # written by the adoption
        elif (
            value
            and adoption.flask_sessions.get_cookie_name(app)
            == self.get_cookie_name(app)
            and adoption.signed_session(app, request) is not None
        ):
            # Flask's cookie under our name, not adopted (adopted by a
            # concurrent request, say): deleting it could delete the cookie
            # that request sets. It signs nobody in here.
            session = self.session_class()
        else:
            session = self._dead(value) if value else self.session_class()
        if adopted is not None:
            session.expired_cookies = adopted.expired_cookies
        return session

    def _dead(self, value: str) -> SignoffSession:
        """A session for a cookie that names no live session: anonymous."""
        del value  # never kept or logged
        session = self.session_class(cookie_present=True)
        session.end()
        return session

    def _decode(self, data: str) -> dict[str, t.Any]:
        if not data:
            return {}
        try:
            value = self.serializer.loads(data)
        except ValueError:
            logger.error("Unreadable session data; starting with an empty session.")
            return {}
        return value if isinstance(value, dict) else {}

    def encode(self, session: t.Mapping[str, t.Any]) -> str:
        return self.serializer.dumps(dict(session)) if session else ""

    def save_session(
        self, app: Flask, session: SessionMixin, response: Response
    ) -> None:
        if not isinstance(session, SignoffSession):  # pragma: no cover
            return
        if session.unavailable:
            return
        try:
            self._persist(session)
        except StoreUnavailable:
            logger.warning("Session store unavailable while saving a session.")
            session.unavailable = True
            replace_with_unavailable(response)
            return
        if session.user_id is not None or _request_user_authenticated():
            # Private pages must not come back from a cache after sign-out.
            response.headers["Cache-Control"] = "no-store"
        if session.cookie_present or session.record is not None:
            _vary_cookie(response)
        self._set_cookie(app, session, response)
        for cookie in session.expired_cookies:
            response.delete_cookie(**cookie)

    def _persist(self, session: SignoffSession) -> None:
        lifecycle = self.state.lifecycle
        record = session.record
        if record is None:
            if session:
                # Data put in before sign-in gets its first id; its keys
                # (Flask-WTF's token of the form shown) stay.
                secret, new = lifecycle.start_anonymous(
                    self.encode(session), **client_info()
                )
                session.move_to(secret, new, keep_auth_keys=True)
            elif session.cookie_present:
                session.end()
            return
        if session.modified:
            if not session and record.user_id is None:
                # An anonymous session emptied: nothing left to keep.
                lifecycle.end(record.key)
                session.end()
                return
            record.data = self.encode(session)
            if not lifecycle.save(record):
                session.end()  # signed out elsewhere meanwhile: never revived
        elif lifecycle.touch_due(record) and not lifecycle.touch(record):
            session.end()

    def _set_cookie(
        self, app: Flask, session: SignoffSession, response: Response
    ) -> None:
        setting = session.new_secret is not None and session.record is not None
        if not setting and not session.drop_cookie:
            return  # the usual case: the cookie stays as it is
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        samesite = self.get_cookie_samesite(app)
        if setting:
            assert session.new_secret is not None
            assert session.record is not None
            record = session.record
            max_age = None
            if record.remember:
                max_age = max(0, int(record.expires_at - self.state.clock()))
            if secure and not self.warned_secure_over_http and not request.is_secure:
                self._warn_secure_over_http()
            response.set_cookie(
                name,
                session.new_secret,
                max_age=max_age,
                path=path,
                domain=domain,
                secure=secure,
                httponly=True,
                samesite=samesite,
            )
        elif session.drop_cookie:
            # Deleted with the attributes it was set with, or browsers keep it.
            response.delete_cookie(
                name,
                path=path,
                domain=domain,
                secure=secure,
                httponly=True,
                samesite=samesite,
            )
        response.headers["Cache-Control"] = "no-store"
        _vary_cookie(response)

    def _warn_secure_over_http(self) -> None:
        # Only browsers on localhost send a Secure cookie back to http://;
        # WebTest, requests and most scripted clients drop it, so the next
        # request has no session and a form fails its CSRF check.
        self.warned_secure_over_http = True
        logger.warning(
            "A Secure session cookie was set in response to a plain-http "
            "request (%s): clients such as WebTest and requests never send "
            "it back over http, so the session is lost at the next request "
            '(a form then fails with "The CSRF tokens do not match"). For '
            "tests and local scripts set SIGNOFF_COOKIE_SECURE = False; "
            "otherwise serve over https, and behind a proxy that terminates "
            "TLS let the app see X-Forwarded-Proto with werkzeug's ProxyFix "
            "(x_proto=1). Logged once per app.",
            request.host_url,
        )


def _request_user_authenticated() -> bool:
    """Whether this request's user, if it was looked up, is signed in (by a
    token or the app's request loader: the session names no user)."""
    loaded = peek_request_state()
    user = loaded.user if loaded is not None else None
    return bool(getattr(user, "is_authenticated", False))


def refuse_if_store_unavailable() -> Response | None:
    """Answer 503 before the view if the session could not be opened."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(sess, SignoffSession) and sess.unavailable:
        return unavailable_response()
    return None


def store_unavailable_response(error: StoreUnavailable) -> Response:
    """Answer 503 to a store that failed during the view; write nothing after."""
    logger.warning("Session store unavailable: %s", error)
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(sess, SignoffSession):
        sess.unavailable = True  # nothing is written, the cookie is kept
    return unavailable_response()
