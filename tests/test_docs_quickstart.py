"""docs/quickstart.md: its app.py, taken from the page, works as the page says.

The block is written to a file and imported as a user's ``app.py`` would be
(``flask --app app run``), with its instance folder beside it; then a
browser's visit is played on the test client.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_signoff.extension import get_state
from tests.support.docs import code_blocks, import_file
from tests.support.forms import csrf_field, csrf_token

_names = itertools.count()


def quickstart_app_py() -> str:
    (app_py,) = [code for _, code in code_blocks("quickstart.md") if "app = " in code]
    return app_py


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    for name in list(os.environ):
        if name.startswith("FLASK_"):
            monkeypatch.delenv(name)  # the page's app reads the environment
    path = tmp_path / "app.py"
    path.write_text(quickstart_app_py(), encoding="utf-8")
    name = f"quickstart_app_{next(_names)}"
    module = import_file(path, name)
    try:
        yield module.app
    finally:
        get_state(module.app).store.close()
        del sys.modules[name]


def sign_in(
    client: FlaskClient, password: str = "wonderland", **fields: str
) -> TestResponse:
    token = csrf_token(client)
    form = {"username": "alice", "password": password, "csrf_token": token, **fields}
    return client.post("/login?next=/", data=form)


def test_sign_in_protected_page_sign_out(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    # Signed out, the page sends you to sign in, and back after.
    response = client.get("/")
    assert response.status_code == 302
    assert response.location == "/login?next=%2F"

    response = sign_in(client)
    assert response.status_code == 303
    assert response.location == "/"
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Signed in as alice." in html
    # The store is the default: a SQLite file in the instance folder.
    assert (tmp_path / "instance" / "signoff.sqlite3").exists()

    copied = client.get_cookie("session")
    assert copied is not None
    token = csrf_field(html)
    assert token is not None
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert "Clear-Site-Data" in response.headers
    assert client.get("/").status_code == 302
    # A copy of the cookie taken before sign-out is refused too.
    thief = app.test_client()
    thief.set_cookie("session", copied.value)
    assert thief.get("/").status_code == 302


def test_a_wrong_password_or_a_missing_token_signs_nobody_in(app: Flask) -> None:
    client = app.test_client()
    assert sign_in(client, password="nope").status_code == 401
    form = {"username": "alice", "password": "wonderland"}
    assert client.post("/login", data=form).status_code == 403  # no csrf_token
    assert client.get("/").status_code == 302


def test_sign_out_needs_its_token(app: Flask) -> None:
    client = app.test_client()
    sign_in(client)
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200


def test_remember_me_makes_the_cookie_persistent(app: Flask) -> None:
    client = app.test_client()
    sign_in(client)
    assert client.get_cookie("session").expires is None  # type: ignore[union-attr]
    other = app.test_client()
    sign_in(other, remember="1")
    assert other.get_cookie("session").expires is not None  # type: ignore[union-attr]


def test_next_is_followed_only_to_a_local_path(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    form = {"username": "alice", "password": "wonderland", "csrf_token": token}
    response = client.post("/login?next=//evil.example/", data=form)
    assert response.location == "/"
