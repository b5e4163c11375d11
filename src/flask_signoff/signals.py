"""Blinker signals, sent with the app as sender, as Flask-Login does.

Flask-Login's signals keep their names and arguments. ``user_loaded_from_cookie``
and ``session_protected`` exist so that code connecting to them still
imports, but are never sent: there is no remember cookie to load from and no
session-protection hash to fail (a stolen id is revoked server-side instead).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent when a user signs in: ``user``.
user_logged_in = _signals.signal("logged-in")
#: Sent when a user signs out: ``user``.
user_logged_out = _signals.signal("logged-out")
#: Never sent (no remember cookie); kept for Flask-Login compatibility.
user_loaded_from_cookie = _signals.signal("loaded-from-cookie")
#: Sent when a user is loaded by a request loader or a Bearer token: ``user``.
user_loaded_from_request = _signals.signal("loaded-from-request")
#: Sent when :func:`~flask_signoff.confirm_login` marks a login fresh again.
user_login_confirmed = _signals.signal("login-confirmed")
#: Sent when an anonymous request reaches a protected view.
user_unauthorized = _signals.signal("unauthorized")
#: Sent when a stale login reaches a view that needs a fresh one.
user_needs_refresh = _signals.signal("needs-refresh")
#: Sent whenever the user is looked up for a request.
user_accessed = _signals.signal("accessed")
#: Never sent (server-side revocation replaces session protection).
session_protected = _signals.signal("session-protected")
#: Sent when a session moves to a new id: ``user_id``, ``reason``.
session_rotated = _signals.signal("session-rotated")
#: Sent when a session is revoked by id: ``user_id``, ``public_id``.
session_revoked = _signals.signal("session-revoked")
#: Sent when every session and token of a user is revoked, the current
#: session possibly kept: ``logout_user(everywhere=True)``,
#: ``Signoff.revoke_user``, ``Signoff.revoke_other_sessions``,
#: ``Signoff.password_changed``. Argument: ``user_id``.
user_signed_out_everywhere = _signals.signal("signed-out-everywhere")
#: Sent when a back-channel logout token from an OpenID Connect provider
#: ended what it named (:mod:`flask_signoff.oidc`): ``issuer``, ``sid``,
#: ``sub`` (``""`` when the token had none) and ``ended``, how many sessions
#: and refresh families ended.
backchannel_logout = _signals.signal("backchannel-logout")
