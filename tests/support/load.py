"""The load of the outage tests, run in a process of its own.

A few threads send requests to the demo over real sockets (``http.client``),
each as a signed-in browser or API client would: ``GET /``, ``/api/me``,
``/sessions`` with a session cookie, ``GET /api/me`` with a Bearer token when
there is one, and, only while the store is down, ``POST /logout`` and
``POST /sessions/<id>/revoke`` with a valid ``csrf_token``. Those two would
end sessions that must survive, so the test tells the load when they may go
out: ``phase`` is 2 only while the store is down, a state-changing request
starts only in that phase and is counted in ``posts_in_flight`` until its
answer is in, and the test brings the store back only once that count is 0.

Phases: 0 before the fault, 1 while it is being brought about, 2 while it is
in full effect, 3 still in full effect while the last state-changing requests
finish, 4 while the store is being brought back, 5 after.

Every request records the phase it was sent and answered in, its status,
its latency and what its answer says (the right page or the clear 503), and
all of them go to ``out_path`` as JSON for the test to judge. The load stops
at ``stop``, after ``seconds`` or after ``max_requests`` per thread, whichever
comes first.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import typing as t
import urllib.parse
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

#: Pause between two requests of one thread, in seconds.
PAUSE = 0.01
#: Client timeout: far above anything the server may take, so a hung worker
#: shows as a slow answer (or a reset by gunicorn), not as a client timeout.
CLIENT_TIMEOUT = 30.0

PHASE_DOWN = 2
PHASE_DRAINING = 3


class Target(t.TypedDict):
    username: str
    #: Each device: its session cookie, its csrf_token, its public id.
    devices: list[dict[str, str]]
    bearer: str | None


def _request(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
) -> tuple[int, list[tuple[str, str]], str]:
    conn = http.client.HTTPConnection(host, port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        return response.status, response.getheaders(), data
    finally:
        conn.close()


def _check(
    kind: str, username: str, status: int, headers: dict[str, str], body: str
) -> bool:
    """Whether a 200 shows the right user's page, or a 503 the clear message."""
    if status == 200:
        if kind == "home":
            return f"Signed in as <strong>{username}</strong>" in body
        if kind in ("me", "bearer"):
            try:
                return bool(json.loads(body) == {"user": username})
            except ValueError:
                return False
        if kind == "sessions":
            return "<strong>(this device)</strong>" in body
        return False
    if status == 503:
        if "Traceback" in body or "Retry-After" not in headers:
            return False
        if headers.get("Cache-Control") != "no-store":
            return False
        if headers.get("Content-Type", "").startswith("application/json"):
            try:
                answer = json.loads(body)
            except ValueError:
                return False
            return bool(
                answer.get("error") == "store_unavailable"
                and answer.get("message") == MESSAGE[0]
            )
        return "<h1>Service unavailable</h1>" in body and MESSAGE[0] in body
    return False


#: The 503 message, set in the load process from the test's argument.
MESSAGE = [""]


def run(
    base_url: str,
    targets: list[Target],
    message: str,
    phase: Synchronized,  # type: ignore[type-arg]
    posts_in_flight: Synchronized,  # type: ignore[type-arg]
    stop: Event,
    out_path: str,
    *,
    threads: int = 4,
    seconds: float = 60.0,
    max_requests: int = 3000,
) -> None:
    """Send the load until told to stop; write every result to ``out_path``."""
    MESSAGE[0] = message
    url = urllib.parse.urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    deadline = time.monotonic() + seconds
    results: list[dict[str, t.Any]] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        mine: list[dict[str, t.Any]] = []
        gets = 0
        for i in range(max_requests):
            if stop.is_set() or time.monotonic() > deadline:
                break
            target = targets[(number + i) % len(targets)]
            device = target["devices"][i % len(target["devices"])]
            other = target["devices"][(i + 1) % len(target["devices"])]
            post = False
            if i % 2:
                # Every other request signs out or revokes, if it may.
                with phase.get_lock():
                    if phase.value == PHASE_DOWN:
                        posts_in_flight.value += 1
                        post = True
                        kind = ("logout", "revoke")[(i // 2 + number) % 2]
            if not post:
                # The threads start on different kinds, so that even the few
                # requests a frozen store lets through cover every kind.
                kinds = ["home", "me", "sessions"]
                if target["bearer"]:
                    kinds.append("bearer")
                kind = kinds[(gets + number) % len(kinds)]
                gets += 1
            headers = {"X-Load-Id": f"{number}-{i}"}
            body = None
            if kind == "bearer":
                headers["Authorization"] = f"Bearer {target['bearer']}"
            else:
                headers["Cookie"] = f"session={device['cookie']}"
            if kind == "home":
                method, path = "GET", "/"
            elif kind in ("me", "bearer"):
                method, path = "GET", "/api/me"
            elif kind == "sessions":
                method, path = "GET", "/sessions"
            else:
                method = "POST"
                path = (
                    "/logout"
                    if kind == "logout"
                    else f"/sessions/{other['public_id']}/revoke"
                )
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                body = urllib.parse.urlencode({"csrf_token": device["csrf"]})
            record: dict[str, t.Any] = {
                "id": headers["X-Load-Id"],
                "kind": kind,
                "user": target["username"],
                "phase_sent": phase.value,
            }
            start = time.monotonic()
            try:
                status, raw_headers, text = _request(
                    host, port, method, path, headers, body
                )
            except (OSError, http.client.HTTPException) as e:
                record.update(status=None, error=f"{type(e).__name__}: {e}")
            else:
                answer = dict(raw_headers)
                cookies = [v for k, v in raw_headers if k.lower() == "set-cookie"]
                session_cookies = [c for c in cookies if c.startswith("session=")]
                record.update(
                    status=status,
                    ok=_check(kind, target["username"], status, answer, text),
                    cookie_set=len(session_cookies),
                    cookie_deleted=sum(
                        c.startswith("session=;") or "Max-Age=0" in c
                        for c in session_cookies
                    ),
                    traceback="Traceback" in text,
                )
            finally:
                record["latency"] = time.monotonic() - start
                record["phase_answered"] = phase.value
                if post:
                    with phase.get_lock():
                        posts_in_flight.value -= 1
            mine.append(record)
            time.sleep(PAUSE)
        with lock:
            results.extend(mine)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    with open(out_path, "w") as f:
        json.dump(results, f)
