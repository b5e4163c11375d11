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
``servers``         real Redis, Redis Cluster, PostgreSQL and an OpenID
                    Connect provider on free ports; the demo under ``flask
                    run`` (``flask_demo``)
``oidc``            an OpenID Connect provider's documents served on
                    loopback, logout tokens signed claim by claim
``oidc_demo``       the demo and a real OpenID Connect provider
                    (``run_oidc_demo``, the provider's ``ACCOUNTS``, ``Agent``)
``gunicorn_demo``   the demo under gunicorn (``GunicornDemo`` also kills and
                    restarts it), and a browser over sockets
``browser``         steps of the browser tests: ``submit``, ``page_text``...
``load``            the load of the outage tests, in a process of its own
``docs``            the code blocks of the documentation pages, to run them
==================  =========================================================
"""

from __future__ import annotations

#: The ``SECRET_KEY`` of every test app (32 bytes and more, as HMAC wants):
#: use this one, not a key of your own, unless the test is about a second key.
SECRET_KEY = "test secret key of the application, not the JWT key"
ISSUER = "https://app.example"
AUDIENCE = "app.example"
