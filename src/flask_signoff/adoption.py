"""Adopting Flask-Login's sign-ins: moving an app over without signing
everyone out.

Off unless ``SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL`` is set. Until that time, a
request that brings no live Flask-Signoff session but Flask-Login's cookies
of the app as it was is signed in once, under a new server-side session:

- Flask's signed session cookie (``SESSION_COOKIE_NAME``, verified as Flask
  verifies it: ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, not older than
  ``PERMANENT_SESSION_LIFETIME``) that holds Flask-Login's ``_user_id``;
- or Flask-Login's remember cookie (``REMEMBER_COOKIE_NAME``,
  ``<user id>|<HMAC-SHA512 of it>`` under ``SECRET_KEY`` or one of
  ``SECRET_KEY_FALLBACKS``).

With ``SESSION_PROTECTION = "strong"``, a session whose ``_id`` (Flask-Login's
hash of the address and user agent) is not the client's is not adopted, as
Flask-Login would have signed it out.

The user is loaded through the app's ``user_loader``: a user who is gone,
or inactive, adopts nothing. So does a user whose epoch moved (signed out
everywhere, a password changed) since Flask-Signoff took over: that is
after every Flask-Login cookie was issued. A security stamp that changed
without the epoch moving tells nothing: Flask-Login's cookies bind no
credential, so the new session is bound to the stamp the user has now
(hence ``password_changed()`` on every credential change during the
window, as docs/migration.md says). The new session is never fresh
(Flask-Login's ``_fresh`` had no time limit; ours does), and remembered
when the old sign-in was (a valid remember cookie of the same user, or a
permanent Flask session). The other keys of the old session (a cart) move
into the new one; Flask-Login's own keys do not. The response that sets
the new cookie deletes the old ones, with the attributes they were set
with. With ``SIGNOFF_COOKIE_SECURE`` on (the default) our cookie is
``__Host-session`` and Flask's was ``session``: both can be sent at once.
With it off they share the name: the new cookie replaces the old one, and a
Flask cookie under that name that is not adopted is left alone in the
window (deleting it could delete the cookie a concurrent request set).

Once: each adopted cookie is marked in the store before the new session is
created, with :meth:`~flask_signoff.core.store.Store.reserve` (a limit of
one, for as long as the window lasts and a day more), so a copy presented
later, or by a concurrent request, adopts nothing (and is deleted, unless
it has our cookie's name). The mark is an HMAC of the sign-in (the user
and Flask-Login's ``_id``, else the cookie's signed part; see
:func:`_session_mark`) under a subkey of the store's routing key, which
rotating ``SECRET_KEY`` does not change. Flask-Login's remember cookie is
the same value on every device of a user: once one of them adopts it, the
others sign in again.

Fails closed: when the store cannot be reached the request gets 503, and
no cookie is deleted. Nothing here runs, reads or logs once the window has
ended.

No ``user_logged_in`` signal is sent: nobody signed in. Apps connect it to
what a sign-in means (a "new sign-in" email, a last-login date), which a
migration must not set off for every user at once.
:data:`~flask_signoff.signals.session_rotated` is sent instead, with
``reason="adopted"``, as for any session moving to a new id, and one line
is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import logging
import typing as t
from collections.abc import Collection

from flask import Flask, Request, current_app, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from .config import COOKIE_HTTPONLY, COOKIE_NAME, COOKIE_SAMESITE, COOKIE_SECURE
from .config import SESSION_KEYS as FLASK_LOGIN_KEYS
from .core.clock import Clock
from .core.keys import derive_hmac_key
from .core.records import SessionRecord
from .exceptions import StoreUnavailable
from .request import client_info
from .signals import session_rotated
from .state import SignoffState

logger = logging.getLogger("flask_signoff")

#: The label of the subkey (of the store's routing key) of adoption marks.
MARK_LABEL = b"flask-signoff adopted flask-login cookie"
#: Marks outlive the window by this much, in seconds: a process whose clock
#: runs behind the store's still finds them until its own window ends.
MARK_MARGIN = 86400.0
#: Longest old cookie looked at (browsers keep 4096 bytes per cookie).
MAX_LEGACY_COOKIE = 4096


@dataclasses.dataclass(frozen=True)
class Adopted:
    """A sign-in adopted by :meth:`Adoption.adopt`."""

    #: The new session cookie's value.
    secret: str
    #: The new server-side session.
    record: SessionRecord
    #: The old session's keys carried over (a cart).
    data: dict[str, t.Any]
    #: ``delete_cookie`` arguments of each old cookie to delete.
    expired_cookies: tuple[dict[str, t.Any], ...]


@dataclasses.dataclass(frozen=True)
class Spent:
    """Flask-Login's sign-in of a request that can never be adopted: adopted
    before (this is a copy), or its user signed out everywhere since."""

    #: ``delete_cookie`` arguments of each old cookie to delete.
    expired_cookies: tuple[dict[str, t.Any], ...]


@dataclasses.dataclass(frozen=True)
class _Found:
    """Flask-Login's cookies of a request, verified (no store read yet)."""

    user_id: str
    #: The old session's data (empty when only a remember cookie came).
    data: dict[str, t.Any]
    remember: bool
    #: Adoption marks, the first one deciding (see :meth:`Adoption.adopt`).
    marks: tuple[bytes, ...]
    expired_cookies: tuple[dict[str, t.Any], ...]


class Adoption:
    """Flask-Login's cookies of one app, and their adoption.

    :param state: the app's state (its settings, store, clock and
        ``user_loader``).
    """

    def __init__(self, state: SignoffState) -> None:
        self.state = state
        #: Flask's own cookie session, for its cookie hooks, salt and digest.
        self.flask_sessions = SecureCookieSessionInterface()
        self._signer = _clocked_signer(state.clock)
        self._mark_key: bytes | None = None
        until = self.until
        if until is not None and until <= state.clock():
            # Said once, here: past its end the window costs no request a
            # thing, not even a log line.
            logger.warning(
                "SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL has passed: Flask-Login's "
                "cookies are no longer adopted. The setting can be removed."
            )

    @property
    def until(self) -> float | None:
        """The end of the window (Unix seconds), or ``None``: no adoption."""
        return self.state.settings.adopt_flask_login_until

    def open(self, now: float) -> bool:
        """Whether the window is open at ``now``."""
        until = self.until
        return until is not None and now < until

    # -- reading the old cookies (no store) ----------------------------------

    def signed_session(self, app: Flask, request: Request) -> dict[str, t.Any] | None:
        """The data of Flask's signed session cookie if it verifies, else ``None``."""
        value = request.cookies.get(self.flask_sessions.get_cookie_name(app))
        if not value or len(value) > MAX_LEGACY_COOKIE:
            return None
        serializer = self._serializer(app)
        if serializer is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadData:
            return None
        return data if isinstance(data, dict) else None

    def _serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Flask's get_signing_serializer, with the app's clock for max_age.
        if not app.secret_key:
            return None
        keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]
        flask_sessions = self.flask_sessions
        return URLSafeTimedSerializer(
            keys,
            salt=flask_sessions.salt,
            serializer=flask_sessions.serializer,
            signer=self._signer,
            signer_kwargs={
                "key_derivation": flask_sessions.key_derivation,
                "digest_method": flask_sessions.digest_method,
            },
        )

    def remembered_user(self, app: Flask, request: Request) -> str | None:
        """The user id of Flask-Login's remember cookie if its digest is right."""
        value = request.cookies.get(_remember_name(app))
        if not value or len(value) > MAX_LEGACY_COOKIE:
            return None
        payload, sep, digest = value.rpartition("|")
        if not sep or not payload or not digest.isascii():
            return None
        try:
            message = payload.encode("utf-8")
        except UnicodeEncodeError:
            return None
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or []
        for key in (app.secret_key, *reversed(fallbacks)):
            if not key:
                continue
            try:
                # Flask-Login's _secret_key: a str key is encoded as Latin-1.
                raw = key.encode("latin1") if isinstance(key, str) else bytes(key)
            except UnicodeEncodeError:
                continue
            expected = hmac.new(raw, message, hashlib.sha512).hexdigest()
            if hmac.compare_digest(expected, digest):
                return payload
        return None

    def find(self, app: Flask, request: Request) -> _Found | None:
        """Flask-Login's sign-in carried by the request's cookies, if any."""
        data = self.signed_session(app, request)
        remembered = self.remembered_user(app, request)
        session_name = self.flask_sessions.get_cookie_name(app)
        remember_name = _remember_name(app)
        old_session = request.cookies.get(session_name, "")
        old_remember = request.cookies.get(remember_name, "")
        user_id = _user_id(data)
        if data is not None and user_id is not None and _protection_failed(data):
            # Flask-Login's "strong" protection would have signed this
            # browser out here, remember cookie included.
            return None
        marks: list[bytes] = []
        remember = False
        if user_id is not None:
            assert data is not None
            marks.append(_session_mark(user_id, data, old_session))
            remember = bool(data.get("_permanent"))
            if remembered == user_id:
                marks.append(b"r\0" + remembered.encode("utf-8"))
                remember = True
        elif remembered is not None:
            # A session without a user beside it (a cart filled after the
            # browser restarted) is carried over with the remember cookie.
            user_id = remembered
            marks.append(b"r\0" + remembered.encode("utf-8"))
            remember = True
        else:
            return None
        carried = {k: v for k, v in (data or {}).items() if k not in _OLD_AUTH_KEYS}
        cookies = []
        if old_session and session_name != self.state.interface.get_cookie_name(app):
            cookies.append(self._session_cookie(app, session_name))
        if old_remember:
            cookies.append(_remember_cookie(app, remember_name))
        return _Found(user_id, carried, remember, tuple(marks), tuple(cookies))

    def _session_cookie(self, app: Flask, name: str) -> dict[str, t.Any]:
        # As Flask's SecureCookieSessionInterface deletes it.
        flask_sessions = self.flask_sessions
        return {
            "key": name,
            "domain": flask_sessions.get_cookie_domain(app),
            "path": flask_sessions.get_cookie_path(app),
            "secure": flask_sessions.get_cookie_secure(app),
            "httponly": flask_sessions.get_cookie_httponly(app),
            "samesite": flask_sessions.get_cookie_samesite(app),
            # Flask 3.1's: a partitioned cookie is deleted as partitioned.
            **(
                {"partitioned": flask_sessions.get_cookie_partitioned(app)}
                if hasattr(flask_sessions, "get_cookie_partitioned")
                else {}
            ),
        }

    # -- adopting (the store) ----------------------------------------------

    def adopt(
        self, app: Flask, request: Request, *, drop: Collection[str] = ()
    ) -> Adopted | Spent | None:
        """Adopt the request's Flask-Login sign-in, once.

        :returns: the new session; :class:`Spent` if the sign-in can never
            be adopted (its old cookies are to be deleted all the same);
            ``None`` if there is nothing to adopt.

        :param drop: more session keys not to carry over (CSRF tokens).
        :raises StoreUnavailable: the store failed; nothing was adopted.
        """
        state = self.state
        now = state.clock()
        until = self.until
        if until is None or now >= until:
            return None
        found = self.find(app, request)
        loader = state.manager.user_callback
        if found is None or loader is None:
            return None
        user = loader(found.user_id)
        if user is None or not getattr(user, "is_active", True):
            return None
        store = state.store
        epoch = store.get_epoch(found.user_id)
        if epoch:
            # Signed out everywhere since Flask-Signoff took over.
            return Spent(found.expired_cookies)
        key = self._key()
        window = until - now + MARK_MARGIN
        taken: list[tuple[str, float]] = []
        remember = found.remember
        for i, mark in enumerate(found.marks):
            name = "m:" + hmac.new(key, mark, hashlib.sha256).hexdigest()[:40]
            reserved = store.reserve(name, 1, window, now)
            if reserved.granted:
                taken.append((name, reserved.ends))
            elif i == 0:
                # A copy, or a concurrent request with the same cookie.
                logger.info("A Flask-Login cookie adopted before was refused.")
                return Spent(found.expired_cookies)
            else:
                remember = False  # another device adopted the remember cookie
        data = {k: v for k, v in found.data.items() if k not in drop}
        record: SessionRecord | None = None
        try:
            secret, record = state.lifecycle.sign_in(
                found.user_id,
                data=state.interface.encode(data),
                remember=remember,
                duration=None,
                fresh=False,
                auth_stamp=state.stamps.digest(found.user_id, user),
                **client_info(),
            )
            if store.get_epoch(found.user_id) != epoch:
                # Signed out everywhere while this ran: the session is gone too.
                state.lifecycle.end(record.key)
                return Spent(found.expired_cookies)
        except StoreUnavailable:
            if record is not None:
                # Made, but its cookie never leaves: a session nobody holds
                # would be listed among the user's devices until it expires.
                with contextlib.suppress(StoreUnavailable):
                    state.lifecycle.end(record.key)
            _give_back(state, taken)
            raise
        logger.info(
            "Adopted the Flask-Login sign-in of user %r as a %s session.",
            found.user_id,
            "remembered" if remember else "browser",
        )
        session_rotated.send(app, user_id=found.user_id, reason="adopted")
        return Adopted(secret, record, data, found.expired_cookies)

    def _key(self) -> bytes:
        key = self._mark_key
        if key is None:
            # Threads racing here each read the one key the store keeps.
            routing_key = self.state.store.load_routing_key()
            key = self._mark_key = derive_hmac_key(routing_key, MARK_LABEL)
        return key


#: The keys of an old session that are not carried over: Flask-Login's and
#: Flask's own (``_permanent``: the new session's lifetime is its own).
_OLD_AUTH_KEYS = frozenset(FLASK_LOGIN_KEYS) | {"_permanent"}


def _give_back(state: SignoffState, taken: list[tuple[str, float]]) -> None:
    """Unmark cookies whose adoption failed, if the store lets us."""
    for name, ends in taken:
        # If the store refuses, the cookie stays spent: the user signs in again.
        with contextlib.suppress(StoreUnavailable):
            state.store.release(name, ends)


def _clocked_signer(clock: Clock) -> type[TimestampSigner]:
    class ClockedSigner(TimestampSigner):
        """itsdangerous's signer, telling time by the app's clock."""

        def get_timestamp(self) -> int:
            return int(clock())

    return ClockedSigner


def _remember_name(app: Flask) -> str:
    return t.cast(str, app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME))


def _remember_cookie(app: Flask, name: str) -> dict[str, t.Any]:
    # With every attribute Flask-Login set it with (its own logout omits
    # Secure and SameSite, and browsers may then keep the cookie).
    config = app.config
    return {
        "key": name,
        "domain": config.get("REMEMBER_COOKIE_DOMAIN"),
        "path": config.get("REMEMBER_COOKIE_PATH", "/"),
        "secure": config.get("REMEMBER_COOKIE_SECURE", COOKIE_SECURE),
        "httponly": config.get("REMEMBER_COOKIE_HTTPONLY", COOKIE_HTTPONLY),
        "samesite": config.get("REMEMBER_COOKIE_SAMESITE", COOKIE_SAMESITE),
    }


def _user_id(data: t.Mapping[str, t.Any] | None) -> str | None:
    """Flask-Login's ``_user_id`` of an old session (``get_id()``'s value)."""
    user_id = data.get("_user_id") if data is not None else None
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    return user_id if isinstance(user_id, str) and user_id else None


def _session_mark(user_id: str, data: t.Mapping[str, t.Any], value: str) -> bytes:
    """What marks Flask's session cookie ``value`` as adopted.

    Flask signs the cookie again whenever the session changes (and on every
    request when it is permanent), so one Flask-Login sign-in is many
    cookies over time, and a copy taken earlier is not the cookie the
    browser brings later. Flask-Login's ``_id`` (set at sign-in, from the
    browser's address and user agent) is in each of them: the user with
    that ``_id`` is marked, so once the browser's cookie is adopted, no
    earlier or later cookie of that sign-in is. Without ``_id``
    (``SESSION_PROTECTION = None``), the cookie's signed part (payload and
    time), not its whole value: the signature's base64 may be spelled
    several ways that verify.
    """
    ident = data.get("_id")
    if isinstance(ident, str) and ident:
        uid = user_id.encode("utf-8", "surrogatepass")
        return b"i\0%d:%s%s" % (len(uid), uid, ident.encode("utf-8", "surrogatepass"))
    return b"s\0" + value.rsplit(".", 1)[0].encode()


def _protection_failed(data: t.Mapping[str, t.Any]) -> bool:
    """Whether Flask-Login's ``"strong"`` session protection signs this
    session out: its ``_id`` is not this client's (Flask-Login 0.6's
    ``_create_identifier``, byte for byte)."""
    mode = current_app.config.get("SESSION_PROTECTION")
    if mode != "strong" or data.get("_permanent"):
        return False
    address = request.headers.get("X-Forwarded-For", request.remote_addr)
    addr = None
    if address is not None:
        addr = address.encode("utf-8").split(b",")[0].strip()
    agent = request.headers.get("User-Agent")
    agent_bytes = agent.encode("utf-8") if agent is not None else None
    ident = hashlib.sha512(f"{addr!r}|{agent_bytes!r}".encode()).hexdigest()
    return not hmac.compare_digest(ident, str(data.get("_id", "")))


__all__ = ["Adopted", "Adoption", "Spent"]
