"""Over HTTP: gunicorn (sync workers) on loopback, driven by ``wrk``."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .contenders import Env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wrk_path() -> str | None:
    return shutil.which("wrk")


@dataclasses.dataclass
class Gunicorn:
    contender: str
    env: Env
    port: int
    log: str
    workers: int = 2
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/me"

    def start(self) -> None:
        environ = dict(os.environ)
        environ["BENCH_CONTENDER"] = self.contender
        environ["BENCH_ENV"] = json.dumps(dataclasses.asdict(self.env))
        environ["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(ROOT, "src"), ROOT, environ.get("PYTHONPATH", "")]
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--workers",
                    str(self.workers),
                    "--worker-class",
                    "sync",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--log-level",
                    "warning",
                    "benchmarks.wsgi:app",
                ],
                cwd=ROOT,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, headers: dict[str, str], timeout: float = 30) -> None:
        """Wait until both workers answer ``GET /me`` with 200."""
        deadline = time.monotonic() + timeout
        ok = 0
        while ok < 20:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn ({self.contender}) exited; see {self.log}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn ({self.contender}) not ready; {self.log}")
            try:
                req = urllib.request.Request(self.url, headers=headers)
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200 and r.read() == b"alice":
                        ok += 1
                        continue
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if isinstance(e, urllib.error.HTTPError):
                    raise RuntimeError(
                        f"gunicorn ({self.contender}): GET /me answered {e.code}"
                    ) from e
            time.sleep(0.1)

    def worker_rss(self) -> list[int]:
        """Resident set size in bytes of each worker process."""
        assert self.proc is not None
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out.append(int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                continue
        return sorted(out)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(
    url: str, headers: dict[str, str], duration: float, connections: int = 8
) -> dict[str, float]:
    """One bounded ``wrk`` run; fails loudly on any error or non-2xx answer."""
    args = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
        "--timeout", "5s", "--latency",
    ]  # fmt: skip
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*args, url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
    }
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    result["socket_errors"] = sum(map(int, socket.groups())) if socket else 0
    if result["non2xx"] or result["socket_errors"] or result["requests"] == 0:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return result
