"""HTML forms and their CSRF token, as a browser would fill them in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_field(html: str) -> str | None:
    """The value of the first ``csrf_token`` field in ``html``, if any."""
    match = _CSRF_FIELD.search(html)
    return match.group(1) if match else None


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The csrf_token of the first form on ``path``."""
    token = csrf_field(client.get(path).get_data(as_text=True))
    assert token is not None, f"no csrf_token on {path}"
    return token


def post_form(client: FlaskClient, path: str, **fields: str) -> TestResponse:
    """POST ``fields`` to ``path`` with the csrf_token its own form shows."""
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, path)})
