"""The demo under a real gunicorn, and a tiny browser that speaks to it.

For tests that need real processes and sockets: several workers that share
nothing but the store, a store server taken away under them. ``gunicorn_demo``
runs ``examples.demo`` (or another app module) on a free loopback port and
stops it at the end; :class:`GunicornDemo` does the same step by step, and
can kill it at once (``SIGKILL``) and start it again. ``Browser`` keeps
cookies and posts forms over ``http.client``, one per device.
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


class GunicornDemo:
    """The demo under gunicorn on a free loopback port, started and stopped
    (gracefully, or killed at once) as a test needs.

    ``workers`` processes, with ``SIGNOFF_STORE_TIMEOUT=store_timeout``. With
    ``threads`` above 1 each worker serves that many requests at once
    (gunicorn's ``gthread`` worker). Logs go to ``tmp_path``.
    """

    def __init__(
        self,
        store_url: str,
        tmp_path: Path,
        *,
        store_timeout: float,
        workers: int = 2,
        threads: int = 1,
        app: str = "examples.demo:create_app()",
        env_extra: dict[str, str] | None = None,
    ) -> None:
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
        self.env = env
        self.tmp_path = tmp_path
        self.options = [
            "--workers", str(workers),
            "--worker-class", "gthread" if threads > 1 else "sync",
            "--threads", str(threads),
            "--timeout", "20",
            "--graceful-timeout", "5",
            "--access-logfile", str(tmp_path / "access.log"),
            "--access-logformat", "%({x-load-id}i)s %(s)s %(L)s",
            "--error-logfile", str(tmp_path / "error.log"),
        ]  # fmt: skip
        self.app = app
        self.proc: subprocess.Popen[bytes] | None = None
        #: The URL it answers on once started.
        self.base = ""

    def start(self) -> str:
        """Start it on a new free port; its URL once it answers."""
        port = free_port()
        command = [
            sys.executable, "-m", "gunicorn", *self.options,
            "--bind", f"127.0.0.1:{port}", self.app,
        ]  # fmt: skip
        # The app's own log lines (flask_signoff's warnings) go to stderr.
        with open(self.tmp_path / "stderr.log", "ab") as stderr:
            # A session of its own: kill() ends the workers with the arbiter.
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                log = (self.tmp_path / "error.log").read_text()
                raise RuntimeError(f"gunicorn exited:\n{log}")
            with contextlib.suppress(OSError):
                if Browser(self.base).request("GET", "/login")[0] == 200:
                    return self.base
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("gunicorn did not answer within 30 s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM), or kill it if it does not stop."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc = proc
            self.kill()

    def kill(self) -> None:
        """Kill the arbiter and every worker at once (SIGKILL): nothing of
        theirs runs after this returns, no handler, no ``atexit``."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


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
    """The demo under gunicorn (:class:`GunicornDemo`) for the ``with``
    block: its URL and its log folder."""
    demo = GunicornDemo(
        store_url,
        tmp_path,
        store_timeout=store_timeout,
        workers=workers,
        threads=threads,
        app=app,
        env_extra=env_extra,
    )
    try:
        yield demo.start(), tmp_path
    finally:
        demo.stop()
