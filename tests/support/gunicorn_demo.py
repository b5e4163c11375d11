"""The demo under a real gunicorn, and a tiny browser that speaks to it.

For tests that need real processes and sockets: several workers that share
nothing but the store, a store server taken away under them. ``gunicorn_demo``
runs ``examples.demo`` (or another app module) on a free loopback port and
stops it at the end; ``Browser`` keeps cookies and posts forms over
``http.client``, one per device.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from tests.support import SECRET_KEY
from tests.support.demo import CHEAP_ARGON2
from tests.support.forms import csrf_field
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Browser:
    """Cookies and form posts over ``http.client``; one per device."""

    def __init__(self, base: str, user_agent: str = "outage-test") -> None:
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.cookies: dict[str, str] = {}
        self.user_agent = user_agent

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        json_body: object = None,
        headers: dict[str, str] | None = None,
        cookies: bool = True,
    ) -> tuple[int, http.client.HTTPMessage, str]:
        sent = {"User-Agent": self.user_agent, **(headers or {})}
        body = None
        if cookies and self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            sent["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in header or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.status, response.headers, text

    def csrf(self, path: str) -> str:
        status, _, html = self.request("GET", path)
        assert status == 200, (path, status)
        token = csrf_field(html)
        assert token is not None, f"no csrf_token on {path}"
        return token

    def post_form(self, path: str, **fields: str) -> int:
        fields["csrf_token"] = self.csrf(path)
        return self.request("POST", path, form=fields)[0]


@contextlib.contextmanager
def gunicorn_demo(
    store_url: str,
    tmp_path: Path,
    *,
    store_timeout: float,
    workers: int = 2,
    threads: int = 1,
    app: str = "examples.demo:create_app()",
    env_extra: dict[str, str] | None = None,
) -> Iterator[tuple[str, Path]]:
    """The demo under gunicorn on a free port: its URL and its log folder.

    ``workers`` processes, with ``SIGNOFF_STORE_TIMEOUT=store_timeout``. With
    ``threads`` above 1 each worker serves that many requests at once
    (gunicorn's ``gthread`` worker).
    """
    port = free_port()
    # Only our settings: nothing from the caller's FLASK_* environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        SIGNOFF_DEMO_INSTANCE_PATH=str(tmp_path / "instance"),
        FLASK_SIGNOFF_STORE_URL=store_url,
        FLASK_SIGNOFF_STORE_TIMEOUT=str(store_timeout),
        FLASK_SIGNOFF_COOKIE_SECURE="false",
        FLASK_SECRET_KEY=SECRET_KEY,
        # Cheap password hashes: the test signs in a dozen times.
        FLASK_DEMO_ARGON2_PARAMETERS=json.dumps(CHEAP_ARGON2),
    )
    env.update(env_extra or {})
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}",
        "--timeout", "20",
        "--graceful-timeout", "5",
        "--access-logfile", str(tmp_path / "access.log"),
        "--access-logformat", "%({x-load-id}i)s %(s)s %(L)s",
        "--error-logfile", str(tmp_path / "error.log"),
        app,
    ]  # fmt: skip
    # The app's own log lines (flask_signoff's warnings) go to stderr.
    with open(tmp_path / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log = (tmp_path / "error.log").read_text()
                raise RuntimeError(f"gunicorn exited:\n{log}")
            with contextlib.suppress(OSError):
                if Browser(base).request("GET", "/login")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 30 s")
            time.sleep(0.1)
        yield base, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
