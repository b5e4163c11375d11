"""The demo with its password checks logged, for the burst test under gunicorn.

``create_app()`` builds the demo as ``examples.demo:create_app()`` does, then
makes every password check (``UserStore.authenticate``) append one line to
the file named by ``THROTTLE_TEST_CHECK_LOG`` and take
``THROTTLE_TEST_CHECK_SECONDS``: about what a real argon2 hash costs, where
the tests' own hashes are made cheap. Each line is one ``write`` on a file
opened with ``O_APPEND``, so the lines of several workers and threads never
mix and the file counts the checks of the whole server.
"""

from __future__ import annotations

import os
import time
import typing as t

from flask import Flask

from examples.demo import create_app as create_demo


def create_app() -> Flask:
    app = create_demo()
    users = app.extensions["demo_users"]
    log = os.environ["THROTTLE_TEST_CHECK_LOG"]
    seconds = float(os.environ.get("THROTTLE_TEST_CHECK_SECONDS", "0.05"))
    authenticate = users.authenticate

    def logged(username: str, password: str) -> t.Any:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()} check\n".encode())
        finally:
            os.close(fd)
        time.sleep(seconds)
        return authenticate(username, password)

    users.authenticate = logged
    return app
