"""Calling a WSGI app directly: no test client, no server, no sockets."""

from __future__ import annotations

import json
import time
import typing as t
from collections.abc import Callable

from werkzeug.test import EnvironBuilder

WSGIApp = Callable[..., t.Any]


class Reply(t.NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def cookies(self) -> dict[str, str]:
        out = {}
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                out[key.strip()] = val.strip()
        return out


def environ(method: str, path: str, headers: dict[str, str]) -> dict[str, t.Any]:
    builder = EnvironBuilder(
        method=method,
        path=path,
        headers=headers,
        environ_base={"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "bench/1.0"},
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


def call(
    app: WSGIApp, method: str, path: str, headers: dict[str, str] | None = None
) -> Reply:
    got: list[t.Any] = []

    def start_response(status: str, hdrs: list[tuple[str, str]], exc=None):  # type: ignore[no-untyped-def]
        got[:] = [status, hdrs]
        return lambda data: None

    result = app(environ(method, path, headers or {}), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Reply(int(got[0][:3]), list(got[1]), body)


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items() if v)


def sign_in(app: WSGIApp, credential: str) -> dict[str, str]:
    """Sign user 1 in; return the request headers that carry the credential."""
    if credential == "none":
        return {}
    reply = call(app, "POST", "/login")
    if reply.status != 200:
        raise RuntimeError(f"login failed: {reply.status} {reply.body[:200]!r}")
    if credential == "bearer":
        token = json.loads(reply.body)["access_token"]
        return {"Authorization": f"Bearer {token}"}
    return {"Cookie": cookie_header(reply.cookies())}


def check_get(app: WSGIApp, headers: dict[str, str]) -> None:
    reply = call(app, "GET", "/me", headers)
    if reply.status != 200 or reply.body != b"alice":
        raise RuntimeError(f"GET /me: {reply.status} {reply.body[:200]!r}")


def time_get(app: WSGIApp, headers: dict[str, str], budget: float) -> dict[str, float]:
    """Authenticated ``GET /me`` in a loop for ``budget`` seconds.

    The environ is built once and copied per call (a dict copy; the WSGI
    server would build a fresh one too). Returns ops/s, µs/op, and CPU µs/op
    of the calling thread.
    """
    base = environ("GET", "/me", headers)
    bad: list[str] = []

    def start_response(status: str, hdrs: t.Any, exc: t.Any = None) -> t.Any:
        if status[0] != "2":
            bad.append(status)
        return None

    def once() -> None:
        result = app(base.copy(), start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()

    for _ in range(50):  # warm-up
        once()
    n = 0
    batch = 20
    cpu = time.thread_time()
    start = time.perf_counter()
    deadline = start + budget
    while True:
        for _ in range(batch):
            once()
        n += batch
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    cpu = time.thread_time() - cpu
    if bad:
        raise RuntimeError(f"{len(bad)} failed requests, e.g. {bad[0]}")
    # CPU time of this thread alone: what the app's own code costs, without
    # the waits for a server and for a CPU that other processes hold.
    return {
        "ops": n / elapsed,
        "us": elapsed / n * 1e6,
        "cpu_us": cpu / n * 1e6,
        "n": n,
    }


def time_cycle(app: WSGIApp, credential: str, budget: float) -> dict[str, t.Any]:
    """Sign in, GET, sign out, GET again with what the client kept: 401.

    Also tells whether a copy of the credential taken before sign-out still
    works afterwards (``revoked``: it does not).
    """
    n = 0
    start = time.perf_counter()
    deadline = start + budget
    revoked = True
    while True:
        headers = sign_in(app, credential)
        check_get(app, headers)
        reply = call(app, "POST", "/logout", headers)
        if reply.status >= 300:
            raise RuntimeError(f"logout: {reply.status} {reply.body[:200]!r}")
        after = dict(headers)
        if credential == "cookie":
            cookies = dict(c.split("=", 1) for c in headers["Cookie"].split("; "))
            cookies.update(reply.cookies())
            after = {"Cookie": cookie_header(cookies)}
        if call(app, "GET", "/me", after).status != 401:
            raise RuntimeError("GET after logout was not refused")
        if n == 0:
            # A copy of the credential from before the sign-out.
            revoked = call(app, "GET", "/me", headers).status == 401
        n += 1
        now = time.perf_counter()
        if now >= deadline or n >= 100_000:
            break
    elapsed = now - start
    return {"ops": n / elapsed, "us": elapsed / n * 1e6, "n": n, "revoked": revoked}


def time_call(fn: Callable[[], t.Any], budget: float) -> dict[str, float]:
    """A primitive in a loop for ``budget`` seconds."""
    for _ in range(50):
        fn()
    n = 0
    start = time.perf_counter()
    deadline = start + budget
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    return {"ops": n / elapsed, "us": elapsed / n * 1e6, "n": n}
