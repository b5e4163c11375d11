"""The demo signed in through a real OpenID Connect provider.

:func:`run_oidc_demo` runs panva's ``oidc-provider``
(:class:`~tests.support.servers.OIDCProviderServer`) and the demo under
``flask run``, each on a free loopback port, the demo registered at the
provider as a confidential client with back-channel logout. Its accounts are
:data:`ACCOUNTS`; every test takes accounts of its own (the servers live for
the whole test session, and so do the demo's users).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.cookiejar
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from tests.support import SECRET_KEY
from tests.support.demo import CHEAP_ARGON2
from tests.support.servers import OIDCProviderServer, flask_demo, free_port, started

CLIENT_ID = "signoff-demo"
CLIENT_SECRET = "client secret of the demo at the test provider"
#: The provider's accounts: username -> password, ``sub``, and
#: ``preferred_username`` (absent: the demo names the user after ``sub``).
ACCOUNTS: dict[str, dict[str, str]] = {
    name: {
        "password": f"provider password of {name}",
        "sub": f"sub-{name}-7f3a",
        "preferred_username": name,
    }
    for name in ("ada", "brian", "carla", "dmitri", "erin", "femi", "gus", "hana")
}
#: Taken locally (by a password account) before this provider user signs in.
ACCOUNTS["collide"] = {
    "password": "provider password of collide",
    "sub": "sub-collide-19c2",
    "preferred_username": "collide",
}
ACCOUNTS["nameless"] = {
    "password": "provider password of nameless",
    "sub": "sub-nameless-5d",
}


@dataclasses.dataclass
class OIDCDemo:
    """The demo (``base``) and its provider (``provider``)."""

    base: str
    provider: OIDCProviderServer

    @property
    def issuer(self) -> str:
        return self.provider.issuer


@contextlib.contextmanager
def run_oidc_demo(directory: str) -> Iterator[OIDCDemo]:
    """Run the provider and the demo configured for it, in ``directory``."""
    demo_port = free_port()
    base = f"http://127.0.0.1:{demo_port}"
    provider_dir = os.path.join(directory, "provider")
    instance = os.path.join(directory, "demo")
    os.makedirs(provider_dir)
    os.makedirs(instance)

    def make() -> OIDCProviderServer:
        return OIDCProviderServer(
            provider_dir,
            client_base=base,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            accounts=ACCOUNTS,
        )

    with started(make) as provider:
        env = {
            "FLASK_SECRET_KEY": SECRET_KEY,
            "FLASK_DEMO_ARGON2_PARAMETERS": json.dumps(CHEAP_ARGON2),
            "FLASK_DEMO_OIDC_ISSUER": provider.issuer,
            "FLASK_DEMO_OIDC_CLIENT_ID": CLIENT_ID,
            "FLASK_DEMO_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "FLASK_DEMO_OIDC_BASE_URL": base,
        }
        with flask_demo(instance, port=demo_port, env=env) as url:
            yield OIDCDemo(url, provider)


def api_me(demo: OIDCDemo, cookie: str) -> int:
    """``GET /api/me`` with only this session cookie, outside any browser,
    as a thief with a copy of it would: the status."""
    request = urllib.request.Request(
        f"{demo.base}/api/me", headers={"Cookie": f"session={cookie}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        e.close()
        return int(e.code)


class Agent:
    """A browser over ``urllib``: one cookie jar, redirects followed.

    Cookies are kept per host, whatever the port, as browsers do: the demo and
    the provider (both on 127.0.0.1) each see the other's cookies, under
    names of their own.
    """

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar)
        )

    def open(
        self, url: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """GET ``url`` (POST ``form`` if given); ``(status, final URL, body)``."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(url, data=data, timeout=30) as response:
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.url, e.read().decode()

    def cookie(self, name: str) -> str:
        """The value of the cookie ``name`` (the demo's is ``session``)."""
        for cookie in self.jar:
            if cookie.name == name and cookie.value is not None:
                return cookie.value
        raise KeyError(name)

    def sign_in(
        self, demo: OIDCDemo, username: str, *, query: str = "", lands: str = "/"
    ) -> str:
        """Sign in to the demo through the provider as ``username``.

        Starts at ``/login/oidc`` + ``query`` and fills the provider's
        sign-in form, which must show (the provider has no session of this
        agent's yet). Returns the page it ``lands`` on, the home page by
        default.
        """
        status, url, page = self.open(f"{demo.base}/login/oidc{query}")
        assert status == 200, (status, url, page)
        assert url.startswith(f"{demo.issuer}/interaction/"), url
        assert 'name="password"' in page
        password = ACCOUNTS[username]["password"]
        status, url, page = self.open(url, {"login": username, "password": password})
        assert (status, url) == (200, f"{demo.base}{lands}"), (status, url, page)
        return page

    def end_provider_session(self, demo: OIDCDemo) -> None:
        """Sign out at the provider's own end-session page, and confirm."""
        status, url, page = self.open(demo.provider.metadata()["end_session_endpoint"])
        assert status == 200, (status, url, page)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', page)
        assert xsrf is not None, page
        action = f"{demo.issuer}/session/end/confirm"
        status, url, page = self.open(action, {"xsrf": xsrf.group(1), "logout": "yes"})
        path = urllib.parse.urlsplit(url).path
        assert (status, path) == (200, "/session/end/success"), (status, url, page)
