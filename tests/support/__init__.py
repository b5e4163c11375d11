"""What the tests share that is not a fixture (fixtures: ``tests/conftest.py``).

Import from here, ``from tests.support.forms import post_form``, never from
a ``conftest.py`` or another test module:

==================  =========================================================
``tests.support``   ``SECRET_KEY`` of every test app, JWT ``ISSUER`` and
                    ``AUDIENCE`` of the core tests
``apps``            the Flask-Login API test app (``make_app``), on SQLite
``csrf_apps``       a small app with app-wide CSRF protection
``demo``            the reference app as the tests build it (``open_demo``,
                    ``PASSWORD``, cheap argon2 parameters)
``backends``        the store backends (``Backend``, ``BACKENDS``) and what a
                    backend holds, read directly (``count_rows``,
                    ``count_sessions``, ``forget_expired``)
``counting``        ``CountingStore``: a real store that counts its calls
``cookies``         the session cookie a client holds; a thief's copy
``forms``           ``csrf_token``, ``post_form``
``servers``         real Redis, Redis Cluster and PostgreSQL on free ports
``gunicorn_demo``   the demo under gunicorn (``GunicornDemo`` also kills and
                    restarts it), and a browser over sockets
``load``            the load of the outage tests, in a process of its own
==================  =========================================================
"""

from __future__ import annotations

#: The ``SECRET_KEY`` of every test app (32 bytes and more, as HMAC wants):
#: use this one, not a key of your own, unless the test is about a second key.
SECRET_KEY = "test secret key of the application, not the JWT key"
ISSUER = "https://app.example"
AUDIENCE = "app.example"
