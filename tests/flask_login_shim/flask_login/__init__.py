"""``flask_login``: Flask-Signoff's ``flask_signoff``, name for name."""

from ._forward import forward

forward("flask_signoff", globals())
