"""A user's sessions: list them, end one, end all others, start over.

What :class:`~flask_signoff.Signoff`'s session-management methods do
(``signoff.revoke_session(...)`` ...); they document the guarantees. Signing
the current user out of this session is :func:`flask_signoff.logout_user`.

Every path that ends the current request's session ends it the same way
(:meth:`~flask_signoff.session_interface.SignoffSession.end`), and every path
that gives it a new id moves it the same way
(:meth:`~flask_signoff.session_interface.SignoffSession.move_to`).
"""

from __future__ import annotations

import typing as t

from flask import current_app, session

from .core.records import SessionRecord
from .login import confirm_session, current_user, signoff_session, user_id_of
from .request import Credential, request_state
from .session_interface import SignoffSession
from .signals import session_revoked, session_rotated, user_signed_out_everywhere
from .state import get_state


def current_session() -> SessionRecord | None:
    """The record of the current request's session, if any."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    return sess.record if isinstance(sess, SignoffSession) else None


def rotate(*, reason: str = "privilege") -> bool:
    """Move the current session to a new id; see :meth:`Signoff.rotate`."""
    sess = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(sess, SignoffSession) or sess.record is None:
        return False
    rotated = get_state().lifecycle.rotate(sess.record)
    if rotated is None:
        sess.end()  # revoked meanwhile: dropped, never revived
        return False
    user_id = sess.record.user_id
    sess.move_to(*rotated)
    session_rotated.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=user_id,
        reason=reason,
    )
    return True


def sessions_for(user: t.Any) -> list[SessionRecord]:
    """The live sessions of ``user``; see :meth:`Signoff.sessions_for`."""
    state = get_state()
    user_id = user_id_of(user)
    records = state.lifecycle.sessions_for(user_id)
    if isinstance(user, (str, int)):
        return records
    return [r for r in records if state.stamps.matches(r.auth_stamp, user_id, user)]


def revoke_session(user: t.Any, public_id: str) -> bool:
    """End one session of ``user``; see :meth:`Signoff.revoke_session`."""
    user_id = user_id_of(user)
    record = get_state().lifecycle.revoke(user_id, public_id)
    if record is None:
        return False
    session_revoked.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=user_id,
        public_id=public_id,
    )
    current = current_session()
    if current is not None and current.key == record.key:
        # Signed out here, as by logout_user: the data kept moves to a new
        # id, without the tokens of the signed-in pages.
        signoff_session().end()
    return True


def revoke_user(user: t.Any, *, keep_current: bool = False) -> int:
    """Sign ``user`` out everywhere; see :meth:`Signoff.revoke_user`."""
    user_id = user_id_of(user)
    current = current_session() if keep_current else None
    keep = current.key if current is not None else None
    count = get_state().lifecycle.revoke_user(user_id, keep_key=keep)
    user_signed_out_everywhere.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=user_id,
    )
    return count


def revoke_other_sessions(user: t.Any | None = None) -> int:
    """End every other client; see :meth:`Signoff.revoke_other_sessions`."""
    user_id = user_id_of(user if user is not None else current_user)
    current = current_session()
    keep = (
        current is not None
        and current.user_id == user_id
        and not request_state().by_bearer
    )
    count = revoke_user(user_id, keep_current=keep)
    if keep:
        rotate(reason="revoke_others")
    return count


def password_changed(user: t.Any | None = None) -> int:
    """After a credential change; see :meth:`Signoff.password_changed`."""
    user_id = user_id_of(user if user is not None else current_user)
    count = revoke_user(user_id, keep_current=True)
    callback = get_state().manager.user_callback
    if callback is not None:
        reloaded = callback(user_id)
    else:
        reloaded = user if user is not None else current_user
        reloaded = getattr(reloaded, "_get_current_object", lambda: reloaded)()
    _rebind_current_session(user_id, reloaded)
    return count


def _rebind_current_session(user_id: str, user: t.Any) -> None:
    """After ``user_id``'s credentials changed: their current session moves
    to a new id, fresh and bound to ``user``'s new stamp (``user`` as loaded
    after the change); it ends if ``user`` is ``None`` (gone).

    Another user's session (an administrator who reset this user's
    password) is only confirmed, as before.
    """
    sess = signoff_session()
    record = sess.record
    if record is None or record.user_id != user_id:
        confirm_session()
        return
    state = get_state()
    current = request_state()
    if user is None:
        state.lifecycle.end(record.key)
        sess.end()
        current.user = state.manager.anonymous_user()
        current.credential = Credential.NONE
        return
    if confirm_session(state.stamps.digest(user_id, user)):
        current.user, current.credential = user, Credential.COOKIE


__all__ = [
    "current_session",
    "password_changed",
    "revoke_other_sessions",
    "revoke_session",
    "revoke_user",
    "rotate",
    "sessions_for",
]
