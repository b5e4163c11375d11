"""``flask_login.config``: ``flask_signoff.config``, name for name."""

from ._forward import forward

forward("flask_signoff.config", globals())
