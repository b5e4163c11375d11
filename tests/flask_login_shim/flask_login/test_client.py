"""``flask_login.test_client``: ``flask_signoff.test_client``, name for name."""

from ._forward import forward

forward("flask_signoff.test_client", globals())
