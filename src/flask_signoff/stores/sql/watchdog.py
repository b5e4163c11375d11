"""The watchdog that ends calls to a PostgreSQL server that stopped answering.

Connecting is bounded by ``connect_timeout`` and a statement by the server's
``statement_timeout`` and ``lock_timeout``. Neither ends a call to a server
that stopped answering without closing the connection (a frozen process or
VM, a network that drops packets): the client would wait on its socket for
ever, and with it the worker. So :class:`Watchdog` shuts down the socket of
any call still running past its limit (the store sets one and a half times
its timeout); the call fails at once with :class:`CallOverrun`, which the
store reports as :class:`~flask_signoff.exceptions.StoreUnavailable`, and its
connection is thrown away. A call ended this way is never run again: the
server is slow or gone, and a second wait would only double the first.

Only psycopg connections have a socket to watch; on any other connection
:meth:`Watchdog.watch` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


class CallOverrun(Exception):
    """Raised when the watchdog ended a call (its socket was shut down).

    Its ``__cause__`` is the error the driver raised on the dead socket.
    """


class _Call:
    __slots__ = ("deadline", "fd", "killed")

    def __init__(self, deadline: float, fd: int) -> None:
        self.deadline = deadline
        #: A duplicate of the connection's socket, so that what the watchdog
        #: shuts down is that socket even if its first descriptor is closed
        #: (and its number reused) meanwhile.
        self.fd = fd
        self.killed = False


class Watchdog:
    """Ends database calls that run past ``limit`` seconds.

    One thread per process, started on first use and asleep while no call is
    running. A call costs a descriptor ``dup``/``close`` and two lock
    acquisitions.

    :param limit: seconds a call may run before its socket is shut down.
    """

    def __init__(self, limit: float) -> None:
        #: Seconds a call may run.
        self.limit = limit
        self._pid = -1
        self._closed = False
        self._idle = True
        self._start_lock = threading.Lock()

    @property
    def idle(self) -> bool:
        """True while the thread sleeps: no call it must end is running."""
        return self._idle

    def _start(self) -> None:
        # Once per process: a thread does not survive fork(), and the lock and
        # calls of the parent are not the child's.
        self._lock = threading.Lock()
        self._calls: set[_Call] = set()
        self._wake = threading.Event()
        #: The thread waits for ``_wake``: no call it must end is running.
        self._idle = False
        thread = threading.Thread(
            target=self._run, name="flask-signoff-sql-watchdog", daemon=True
        )
        thread.start()
        self._pid = os.getpid()

    @contextlib.contextmanager
    def watch(
        self, dbapi_connection: Any, invalidate: Callable[[], None]
    ) -> Iterator[None]:
        """Shut the connection's socket down if the block is still running at
        the deadline; raise :class:`CallOverrun` from the error that follows,
        and ``invalidate()`` the connection."""
        fd = _socket_of(dbapi_connection)
        if fd is None or self._closed:
            yield
            return
        if self._pid != os.getpid():
            with self._start_lock:
                if self._pid != os.getpid():
                    self._start()
        call = _Call(time.monotonic() + self.limit, os.dup(fd))
        with self._lock:
            self._calls.add(call)
            if self._idle:
                self._idle = False
                self._wake.set()
        try:
            yield
        except Exception as e:
            if call.killed:
                raise CallOverrun() from e
            raise
        finally:
            with self._lock:
                self._calls.discard(call)
            os.close(call.fd)
            if call.killed:
                # Killed just as it finished, maybe: never reuse the socket.
                invalidate()

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                now = time.monotonic()
                pending = []
                for call in self._calls:
                    if call.killed:
                        continue
                    if call.deadline <= now:
                        call.killed = True
                        _shutdown(call.fd)
                    else:
                        pending.append(call.deadline)
                if not pending:
                    self._idle = True
                    self._wake.clear()
            if not pending:
                self._wake.wait()
            else:
                # Calls made meanwhile have later deadlines than these.
                time.sleep(min(pending) - now)

    def close(self) -> None:
        """Stop the thread; later calls are not watched."""
        self._closed = True
        if self._pid == os.getpid():
            self._wake.set()


def _socket_of(dbapi_connection: Any) -> int | None:
    """The socket descriptor of a psycopg connection, else ``None``."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:
        return None
    try:
        return int(pgconn.socket)
    except Exception:  # closed or broken: nothing to watch
        return None


def _shutdown(fd: int) -> None:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
