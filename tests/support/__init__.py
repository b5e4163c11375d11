"""Helpers shared by the tests (importable: ``tests`` is on the path)."""

from __future__ import annotations

#: The ``SECRET_KEY`` of every test app (32 bytes and more, as HMAC wants):
#: use this one, not a key of your own, unless the test is about a second key.
SECRET_KEY = "test secret key of the application, not the JWT key"
ISSUER = "https://app.example"
AUDIENCE = "app.example"
