"""``flask_login.login_manager``: ``flask_signoff.login_manager``, name for name."""

from ._forward import forward

forward("flask_signoff.login_manager", globals())
