"""``flask_login.utils``: ``flask_signoff.utils``, name for name."""

from ._forward import forward

forward("flask_signoff.utils", globals())
