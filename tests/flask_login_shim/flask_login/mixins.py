"""``flask_login.mixins``: ``flask_signoff.mixins``, name for name."""

from ._forward import forward

forward("flask_signoff.mixins", globals())
