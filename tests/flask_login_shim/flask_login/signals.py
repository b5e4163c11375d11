"""``flask_login.signals``: ``flask_signoff.signals``, name for name."""

from ._forward import forward

forward("flask_signoff.signals", globals())
