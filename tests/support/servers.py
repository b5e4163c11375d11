"""Real servers for the tests: Redis, a Redis Cluster, PostgreSQL, and an
OpenID Connect provider (panva's ``oidc-provider`` on Node.js).

Each server runs on 127.0.0.1 on a free port, in a temporary folder, and is
stopped by the fixture that started it (``tests/conftest.py``), whatever the
tests did. A handle has :meth:`stop` and :meth:`start`, so an outage test can
take a server away mid-test and bring it back on the same port with the same
data folder.

:meth:`pause` and :meth:`resume` freeze a server without closing anything
(``SIGSTOP``/``SIGCONT``), as a hung machine would: connections stay open and
new ones are even accepted by the kernel, but nothing answers.

A missing server binary (or ``oidc-provider`` not installed by ``npm ci
--prefix tests/oidc_provider``) skips the tests that need it, unless
``SIGNOFF_REQUIRE_SERVERS=1`` (set in CI): then it is an error, so a CI image
that lost its servers cannot turn the store suite green by skipping it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t
from collections.abc import Callable, Iterator, Sequence

import pytest

#: The repository's root.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: System user that runs PostgreSQL when the tests run as root (initdb refuses
#: to run as root).
PG_USER = "signoff-pg"


class ServerMissing(Exception):
    """Raised when a server binary cannot be found."""


#: The test being run, set by ``tests/conftest.py`` (empty outside pytest).
running_test: list[pytest.Item] = []


def _refuse_unless_slow(what: str) -> None:
    """Fail the running test if it starts a server without the slow mark.

    ``pytest -m "not slow"`` must start no server: a test that does is
    marked by the hook of ``tests/conftest.py`` (through its fixtures) or by
    hand, and this says which one was missed.
    """
    if running_test and running_test[-1].get_closest_marker("slow") is None:
        pytest.fail(
            f"{running_test[-1].nodeid} starts {what} but is not marked slow: "
            "add @pytest.mark.slow, or its server fixture to SERVER_FIXTURES "
            "in tests/conftest.py",
            pytrace=False,
        )


def require_servers() -> bool:
    return os.environ.get("SIGNOFF_REQUIRE_SERVERS", "") not in ("", "0")


def missing(what: str) -> None:
    """Skip, or fail in CI, because ``what`` is not installed."""
    message = f"{what} is not installed"
    if require_servers():
        pytest.fail(f"{message} and SIGNOFF_REQUIRE_SERVERS=1", pytrace=False)
    pytest.skip(message)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_bus: bool = False) -> int:
    """Return a port free on 127.0.0.1 (and ``port + 10000`` with ``with_bus``).

    The kernel picks a free port; for a cluster node we look for one whose
    cluster-bus port is free too, within the range where that exists.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus:
            return port
        if port + 10000 <= 65535 and _port_free(port + 10000):
            return port
    # The ephemeral range may sit above 55535; pick from below it ourselves.
    for port in range(20000, 55000, 7):
        if _port_free(port) and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: S110 (not up yet; any error means "try again")
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout} s")
        time.sleep(0.02)


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        args, check=True, capture_output=True, text=True, timeout=60, **kwargs
    )


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from ``/proc``), parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # The command name, in parentheses, may contain spaces.
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo += children.get(current, [])
    return tree


class _Freezable:
    """``pause()``/``resume()`` for a server that runs as ``self.proc``."""

    proc: subprocess.Popen[bytes] | None
    _frozen: list[int]

    def pause(self) -> None:
        """Freeze the server and every process it started (SIGSTOP)."""
        assert self.proc is not None, "the server is not running"
        self._frozen = process_tree(self.proc.pid)
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        frozen, self._frozen = getattr(self, "_frozen", []), []
        for pid in reversed(frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


# -- Redis ------------------------------------------------------------------


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def _redis_command(port: int, *args: str) -> str:
    """Send one command (RESP) and return the raw reply; for readiness checks."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        raw = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(raw), raw)
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(payload)
        chunks = b""
        s.settimeout(1)
        while True:
            chunk = s.recv(65536)
            chunks += chunk
            if not chunk or chunks.endswith(b"\r\n"):
                break
        return chunks.decode("utf-8", "replace")


class RedisServer(_Freezable):
    """One ``redis-server`` process, loopback only.

    No persistence by default. With ``persistent=True`` every write goes to
    an append-only file, synced before it is acknowledged, so a :meth:`stop`
    then :meth:`start` finds every key again, as a production server would.
    ``args`` are more ``redis-server`` options, e.g. ``["--maxmemory-policy",
    "allkeys-lru"]`` or ``["--rename-command", "CONFIG", ""]``.
    """

    def __init__(
        self,
        directory: str,
        port: int | None = None,
        *,
        cluster: bool = False,
        persistent: bool = False,
        args: Sequence[str] = (),
    ) -> None:
        binary = redis_binary()
        if binary is None:
            raise ServerMissing("redis-server")
        self.binary = binary
        self.directory = directory
        self.port = port if port is not None else free_port(with_bus=cluster)
        self.cluster = cluster
        self.persistent = persistent
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        _refuse_unless_slow(f"redis-server :{self.port}")
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.directory,
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "always",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", os.path.join(self.directory, "redis.log"),
        ]  # fmt: skip
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", os.path.join(self.directory, "nodes.conf"),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        args += self.args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_for(
            lambda: _redis_ping(self.port), timeout, f"redis :{self.port}", self.proc
        )

    def stop(self) -> None:
        """SIGTERM: Redis closes every connection (and syncs its file)."""
        self.resume()
        _terminate(self.proc)
        self.proc = None

    def command(self, *args: str) -> str:
        return _redis_command(self.port, *args)


class RedisCluster:
    """Three masters, no replicas, made with ``redis-cli --cluster create``."""

    def __init__(self, directory: str, size: int = 3) -> None:
        if shutil.which("redis-cli") is None:
            raise ServerMissing("redis-cli")
        self.nodes: list[RedisServer] = []
        for i in range(size):
            node_dir = os.path.join(directory, f"node{i}")
            os.makedirs(node_dir, exist_ok=True)
            ports = {n.port for n in self.nodes}
            node = RedisServer(node_dir, cluster=True)
            while node.port in ports:
                node.port = free_port(with_bus=True)
            self.nodes.append(node)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 20) -> None:
        for node in self.nodes:
            node.start()
        known = self.nodes[0].command("CLUSTER", "INFO")
        if "cluster_slots_assigned:16384" not in known:
            _run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{n.port}" for n in self.nodes),
                    "--cluster-yes",
                ]
            )
        for node in self.nodes:
            wait_for(
                lambda node=node: "cluster_state:ok" in node.command("CLUSTER", "INFO"),  # type: ignore[misc]
                timeout,
                f"cluster node :{node.port}",
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


# -- PostgreSQL ---------------------------------------------------------------


def pg_bindir() -> str | None:
    """Where ``initdb`` and ``pg_ctl`` live, or ``None``."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            candidates.append(_run([pg_config, "--bindir"]).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for bindir in candidates:
        if os.path.exists(os.path.join(bindir, "initdb")) and os.path.exists(
            os.path.join(bindir, "pg_ctl")
        ):
            return bindir
    return None


def _ensure_pg_user() -> str | None:
    """As root, return the unprivileged user to run PostgreSQL as."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        _run(["useradd", "--system", "--no-create-home", PG_USER])
    return PG_USER


class PostgresServer(_Freezable):
    """A throwaway PostgreSQL cluster: trust auth, loopback TCP only.

    ``postgres`` runs as our child process (not daemonised by ``pg_ctl``), so
    :meth:`stop` can end it and reap it.
    """

    def __init__(self, directory: str | None = None, port: int | None = None) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise ServerMissing("PostgreSQL (initdb, postgres)")
        self.bindir = bindir
        self.user = _ensure_pg_user()
        # Not a pytest tmp dir: those are 0700 and owned by root.
        self.directory = directory or tempfile.mkdtemp(prefix="signoff-pg-")
        os.chmod(self.directory, 0o755)  # noqa: S103 (the server's user reads it)
        self.datadir = os.path.join(self.directory, "data")
        self.port = port if port is not None else free_port()
        self.dbname = "signoff"
        self.role = self.user or _current_user()
        self.proc: subprocess.Popen[bytes] | None = None
        self._initialised = False

    @property
    def url(self) -> str:
        return self.database_url(self.dbname)

    def database_url(self, name: str) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{name}"

    def _user_kwargs(self) -> dict[str, object]:
        if self.user is None:
            return {}
        return {"user": self.user, "group": self.user, "extra_groups": []}

    def _init(self) -> None:
        if self.user is not None:
            shutil.chown(self.directory, self.user, self.user)
        _run(
            [
                os.path.join(self.bindir, "initdb"),
                "-D",
                self.datadir,
                "-U",
                self.role,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            cwd=self.directory,
            **self._user_kwargs(),
        )
        self._initialised = True

    def start(self, timeout: float = 30) -> None:
        _refuse_unless_slow(f"postgres :{self.port}")
        if not self._initialised:
            self._init()
        log = open(os.path.join(self.directory, "postgres.log"), "ab")  # noqa: SIM115
        with log:
            self.proc = subprocess.Popen(
                [
                    os.path.join(self.bindir, "postgres"),
                    "-D",
                    self.datadir,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"port={self.port}",
                    "-c",
                    f"unix_socket_directories={self.directory}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=100",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                **self._user_kwargs(),  # type: ignore[arg-type]
            )
        wait_for(self._ready, timeout, f"postgres :{self.port}", self.proc)
        self.create_database(self.dbname)

    def _ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.database_url("postgres"), connect_timeout=1):
            return True

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement (autocommit) and return its rows."""
        import psycopg

        with psycopg.connect(self.database_url(dbname), autocommit=True) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []

    def create_database(self, name: str) -> str:
        """Create database ``name`` if missing; return its URL."""
        query = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"  # noqa: S608
        if not self.execute(query):
            self.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self, *, immediate: bool = False) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, data kept.

        With ``immediate``, an immediate shutdown (SIGQUIT, as ``pg_ctl stop
        -m immediate``): every process exits at once, with no checkpoint and
        without writing the WAL still in shared memory, as in a crash;
        :meth:`start` then recovers from the WAL on disk.
        """
        self.resume()
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _current_user() -> str:
    import getpass

    return getpass.getuser()


# -- OpenID Connect provider ----------------------------------------------------

#: The provider's folder: ``server.mjs``, ``package.json`` and the lock file;
#: ``node_modules`` comes from ``npm ci --prefix tests/oidc_provider``.
OIDC_PROVIDER_DIR = os.path.join(ROOT, "tests", "oidc_provider")


class OIDCProviderServer:
    """panva's ``oidc-provider`` (OpenID Certified), in memory, on loopback.

    The issuer is ``http://127.0.0.1:<port>``. One confidential client is
    registered (``client_secret_basic``) for the app at ``client_base``: its
    redirect URI ``/login/oidc/callback``, post-logout redirect URI
    ``/login``, and back-channel logout URI ``/backchannel-logout`` with
    ``backchannel_logout_session_required``. ``accounts`` maps a username to
    ``{"password", "sub", "preferred_username"}``; the sign-in page checks
    the password. Back-channel logout calls that fail are logged to
    ``log``.
    """

    def __init__(
        self,
        directory: str,
        *,
        client_base: str,
        client_id: str,
        client_secret: str,
        accounts: dict[str, dict[str, str]],
        port: int | None = None,
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise ServerMissing("node")
        installed = os.path.join(OIDC_PROVIDER_DIR, "node_modules", "oidc-provider")
        if not os.path.isdir(installed):
            raise ServerMissing("oidc-provider (npm ci --prefix tests/oidc_provider)")
        self.node = node
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.client_base = client_base
        self.client_id = client_id
        self.client_secret = client_secret
        self.accounts = accounts
        self.log = os.path.join(directory, "oidc-provider.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metadata(self) -> dict[str, t.Any]:
        """The discovery document."""
        import json
        import urllib.request

        url = f"{self.issuer}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)  # type: ignore[no-any-return]

    def start(self, timeout: float = 20) -> None:
        import json

        _refuse_unless_slow(f"oidc-provider :{self.port}")
        env = dict(os.environ)
        env.update(
            OIDC_PORT=str(self.port),
            OIDC_CLIENT_BASE=self.client_base,
            OIDC_CLIENT_ID=self.client_id,
            OIDC_CLIENT_SECRET=self.client_secret,
            OIDC_ACCOUNTS=json.dumps(self.accounts),
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.node, "server.mjs"],
                cwd=OIDC_PROVIDER_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: self.metadata()["issuer"] == self.issuer,
            timeout,
            f"oidc-provider :{self.port}",
            self.proc,
        )

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None

    def read_log(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()


# -- The demo under its development command ----------------------------------


def _answers(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=1) as response:
        return response.status == 200  # type: ignore[no-any-return]


@contextlib.contextmanager
def flask_demo(
    instance: str, *, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``flask --app examples.demo run`` on loopback; yield its base URL.

    The demo keeps its files in ``instance``; ``env`` adds settings
    (``FLASK_...``). The server's output goes to ``instance/server.log``.
    """
    import sys

    port = port if port is not None else free_port()
    _refuse_unless_slow(f"flask run :{port}")
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "src"), ROOT])
    environ["SIGNOFF_DEMO_INSTANCE_PATH"] = instance
    for key in ("FLASK_SECRET_KEY", "FLASK_SIGNOFF_COOKIE_SECURE", "FLASK_DEBUG"):
        environ.pop(key, None)
    environ.update(env or {})
    command = [sys.executable, "-m", "flask", "--app", "examples.demo", "run"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log = os.path.join(instance, "server.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(lambda: _answers(f"{base}/login"), 20, "the demo server", proc)
        except RuntimeError as e:
            with open(log, errors="replace") as f:
                raise RuntimeError(f"{e}:\n{f.read()}") from None
        yield base
    finally:
        _terminate(proc)


@contextlib.contextmanager
def running(
    server: RedisServer | RedisCluster | PostgresServer | OIDCProviderServer,
) -> Iterator[None]:
    """Start ``server``; stop it on the way out, whatever happened."""
    try:
        server.start()
        yield
    finally:
        server.stop()
        if isinstance(server, PostgresServer):
            server.cleanup()


AnyServer = t.TypeVar(
    "AnyServer", RedisServer, RedisCluster, PostgresServer, OIDCProviderServer
)


@contextlib.contextmanager
def started(make: Callable[[], AnyServer]) -> Iterator[AnyServer]:
    """Build a server with ``make()`` and run it for the ``with`` block.

    A missing binary skips the tests that need it (fails them in CI).
    """
    try:
        server = make()
    except ServerMissing as e:
        missing(str(e))
    with running(server):
        yield server
