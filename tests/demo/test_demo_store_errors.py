"""The demo when its Redis store refuses writes (out of memory)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_signoff import FrozenClock
from tests.support.demo import PASSWORD, open_demo
from tests.support.forms import csrf_token, post_form
from tests.support.servers import RedisServer

COOKIE = "__Host-session"


@pytest.fixture
def redis_app(instance: Path, clock: FrozenClock, redis_server: RedisServer) -> Flask:
    return open_demo(
        instance,
        clock,
        SIGNOFF_STORE_URL=redis_server.url,
        SIGNOFF_KEY_PREFIX=f"demo{time.monotonic_ns()}:",
    )


@pytest.fixture
def out_of_memory(redis_server: RedisServer) -> Iterator[None]:
    """Redis at its maxmemory with the default policy (noeviction)."""
    yield
    redis_server.command("CONFIG", "SET", "maxmemory", "0")


def test_a_store_that_refuses_writes_fails_closed_with_503(
    redis_app: Flask,
    redis_server: RedisServer,
    clock: FrozenClock,
    out_of_memory: None,
) -> None:
    app = redis_app
    assert (
        post_form(
            app.test_client(), "/register", username="alice", password=PASSWORD
        ).status_code
        == 303
    )
    alice = app.test_client()
    assert (
        post_form(alice, "/login", username="alice", password=PASSWORD).status_code
        == 303
    )
    cookie = alice.get_cookie(COOKIE)
    assert cookie is not None
    clock.advance(120)  # the next request touches the session: a write
    newcomer = app.test_client()
    token = csrf_token(newcomer)

    assert "OK" in redis_server.command("CONFIG", "SET", "maxmemory", "1")
    responses = {
        "touch": alice.get("/api/me"),
        "login": newcomer.post(
            "/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        ),
    }
    for what, response in responses.items():
        assert response.status_code == 503, what
        assert response.headers["Retry-After"], what
        assert response.headers["Cache-Control"] == "no-store", what
        assert not response.headers.getlist("Set-Cookie"), what
        assert b"You have not been signed out" in response.data, what
    redis_server.command("CONFIG", "SET", "maxmemory", "0")

    # Nobody was signed out by the outage.
    assert alice.get_cookie(COOKIE).value == cookie.value
    assert alice.get("/api/me").json == {"user": "alice"}


def test_a_first_sign_in_while_the_store_refuses_writes_is_a_503(
    redis_app: Flask, redis_server: RedisServer, out_of_memory: None
) -> None:
    # Nothing has read the store's routing key yet when the store stops
    # taking writes: the sign-in fails closed (503, nothing written), never
    # falls back to a tag anyone could compute from the user id.
    app = redis_app
    r = post_form(app.test_client(), "/register", username="alice", password=PASSWORD)
    assert r.status_code == 303
    client = app.test_client()
    token = csrf_token(client)
    assert "OK" in redis_server.command("CONFIG", "SET", "maxmemory", "1")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 503
    assert not response.headers.getlist("Set-Cookie")
    assert b"You have not been signed out" in response.data
    redis_server.command("CONFIG", "SET", "maxmemory", "0")

    assert (
        post_form(client, "/login", username="alice", password=PASSWORD).status_code
        == 303
    )
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    unkeyed = hashlib.sha256(b"flask-signoff:tag:1").hexdigest()[:8]
    assert not cookie.value.startswith(unkeyed)
