"""Hostile requests to every endpoint of the demo: never a 5xx.

Every route of the demo (checked against its URL map, so a new route must
be added here) gets requests that Hypothesis builds from hostile parts:

- bodies: deeply nested JSON, lone surrogates, invalid UTF-8, huge numbers
  and strings, values of the wrong type (lists, numbers, ``null``, objects
  where strings are expected), duplicate keys and fields, odd content types;
- ``Authorization``: Basic, Digest, Negotiate, NTLM, Bearer with garbage,
  with JWT-looking tokens, with a deeply nested JOSE header, with revoked
  or tampered tokens of ours; empty, oversized, odd spacing and case;
- odd cookies (garbage, duplicates, a signed-out session's id), odd
  ``Origin``, ``Sec-Fetch-Site``, ``Host``, ``User-Agent`` and query strings;

from four clients, one per test: ``anonymous`` (with a CSRF nonce cookie),
``cookie`` (signed in, fresh), ``stale`` (signed in, not fresh, so that
the password fields are read) and ``bearer`` (an API client). Form posts
carry the client's valid CSRF token most of the time, so the requests get
past the CSRF check to the views.

Each request must:

- answer 2xx, 3xx or 4xx, never 5xx;
- log no error and no traceback;
- write nothing to the store unless it carried a credential (the live
  session cookie, one of our access tokens, the live refresh token, the
  password). A refused credential may cost only the counting of a failed
  password check (``reserve``, and ``release`` when the throttle gives an
  attempt back) and a refresh token's compare-and-set that finds nothing
  (``spend_refresh``).

The app is built once per test (by a fixture) and shared by the examples
of the Hypothesis function inside it; a credential that an example ended
(signed out, revoked, password changed) is renewed before the next one.

It runs on SQLite in the normal test run, with a few examples per endpoint
and client (about 30 s in all). The longer run sets the number of examples
per endpoint and client, and prints how many requests each got::

    SIGNOFF_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest \\
        tests/demo/test_demo_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import functools
import json
import logging
import os
import re
import typing as t
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import encode_multipart

from examples.demo import create_app
from flask_signoff import FrozenClock
from flask_signoff.core.store import Store
from flask_signoff.extension import get_state

T = t.TypeVar("T")

# About 25 s of CPU: part of the full run (.ci/run), not of the quick one.
pytestmark = pytest.mark.slow

#: Examples per endpoint and client; the environment sets a longer run.
EXAMPLES = int(os.environ.get("SIGNOFF_FUZZ_EXAMPLES") or 20)
LONG_RUN = "SIGNOFF_FUZZ_EXAMPLES" in os.environ

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Some inputs are large on purpose, and a request costs more than
    # Hypothesis expects of a test.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

USERNAME = "fuzzer"
PASSWORD = "fuzz-password-0123"
SESSION_COOKIE = "__Host-session"
NONCE_COOKIE = "__Host-signoff_csrf"

#: Every route of the demo and its methods (HEAD and OPTIONS aside).
ROUTES: dict[str, tuple[str, ...]] = {
    "/register": ("GET", "POST"),
    "/login": ("GET", "POST"),
    "/": ("GET",),
    "/logout": ("GET", "POST"),
    "/sessions": ("GET",),
    "/sessions/<public_id>/revoke": ("POST",),
    "/sessions/revoke-others": ("POST",),
    "/password": ("GET", "POST"),
    "/api/me": ("GET",),
    "/api/sessions": ("GET",),
    "/api/token": ("POST",),
    "/api/token/refresh": ("POST",),
    "/api/token/revoke": ("POST",),
    "/api/logout": ("POST",),
    "/api/logout-all": ("POST",),
    "/static/<path:filename>": ("GET",),
    "/_signoff/<path:filename>": ("GET",),
}
CLIENTS = ("anonymous", "cookie", "stale", "bearer")


def is_read(call: str) -> bool:
    """Whether a method of the store contract only reads; all others write."""
    # load_routing_key creates the store's key only on the very first sign-in
    # of the store's life; check_config reads the server's settings.
    return call.startswith(("get_", "list_")) or call in (
        "access_state",
        "load_routing_key",
        "check_config",
    )


#: What a refused credential may still cost: a password check is reserved
#: (and given back if the throttle settles it so), and a refresh token's
#: compare-and-set runs before anyone knows whether the token exists (it
#: finds nothing and changes nothing).
ALLOWED_WITHOUT_CREDENTIAL = frozenset({"reserve", "release", "spend_refresh"})

#: Requests sent, per (route, client), and their statuses and body kinds.
TRIED: collections.Counter[tuple[str, str]] = collections.Counter()
STATUSES: dict[tuple[str, str], collections.Counter[int]] = collections.defaultdict(
    collections.Counter
)
KINDS: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
    collections.Counter
)


# -- live values --------------------------------------------------------------

# Strategies draw these placeholders; each request replaces them with the
# client's current values, which change as credentials are renewed.
LIVE_NAMES = (
    "csrf",
    "session",
    "dead_session",
    "access",
    "dead_access",
    "refresh",
    "dead_refresh",
    "public_id",
    "username",
    "password",
)
LIVE = {name: f"@@{name}@@" for name in LIVE_NAMES}
_LIVE_RE = re.compile("@@(" + "|".join(LIVE_NAMES) + ")@@")
_LIVE_BYTES_RE = re.compile(_LIVE_RE.pattern.encode())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- strategies ---------------------------------------------------------------
#
# Every strategy is built once (per route at most): a strategy made inside a
# draw is validated again on every example, which costs more than the request.

SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "null",
    "0",
    "-1",
    "1e999",
    "NaN",
    "true",
    "[]",
    "{}",
    "é",
    "\ufeff",
    "\u202e",
    "\U0001f600",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00%ff%fe",
    "//evil.example",
    "https://evil.example/",
    "/\\evil.example",
    "javascript:alert(1)",
    "\r\nSet-Cookie: x=1",
]
# Characters of a latin-1 header (what a WSGI server hands over), no CR/LF.
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF) | st.just("\t")
header_text = st.text(HEADER_CHARS, max_size=60)
ascii_token = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40
)
# Any code point, lone surrogates included: what JSON escapes can carry.
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
lone_surrogates = st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\udbff\ud800"])
usually = st.sampled_from([True, True, True, False])

big_sizes = st.sampled_from([256, 1025, 5000, 70_000, 600_000])
huge_text = big_sizes.map(lambda n: "x" * n)
HUGE_NUMBERS = [
    "1" * 5000,  # beyond int's default 4300-digit limit
    "-" + "9" * 4299,
    "1e999999",
    "-1e-999999",
    "123456789012345678901234567890",
    "0." + "0" * 3000 + "1",
]


def times(n: int, strategy: st.SearchStrategy[T]) -> list[st.SearchStrategy[T]]:
    """``strategy`` n times over, for ``st.one_of``, which counts once a
    strategy given twice."""
    return [strategy.map(lambda x: x) for _ in range(n)]


def live(*names: str) -> st.SearchStrategy[str]:
    return st.sampled_from([LIVE[n] for n in names])


# What a form field (UTF-8 text: no surrogates) may hold.
form_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(SPECIAL_TEXT),
    huge_text,
    live(*LIVE_NAMES),
)
FIELDS = [
    "username",
    "password",
    "remember",
    "next",
    "csrf_token",
    "current",
    "new",
    "token",
    "token_type_hint",
    "refresh_token",
    "logout_token",
]
field_names = st.sampled_from(FIELDS) | st.text(max_size=12)

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        any_text,
        lone_surrogates,
        st.sampled_from(SPECIAL_TEXT),
        live(*LIVE_NAMES),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(field_names, inner, max_size=4)
    ),
    max_leaves=10,
)


@dataclasses.dataclass(frozen=True)
class Raw:
    """JSON text written as it is."""

    text: str


def dumps(value: t.Any) -> str:
    return value.text if isinstance(value, Raw) else json.dumps(value)


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth  # never closed


# Around and far past the interpreter's recursion limit (1,000), where
# json.loads raises RecursionError; many values, so that Hypothesis does not
# run out of new ones.
depths = st.one_of(
    st.integers(1, 998), st.integers(990, 3000), st.integers(3000, 100_000)
)


# A field of a JSON body: text mostly, hostile text often, any type at times.
nestings = st.sampled_from(["array", "object", "open"])
json_field_values = st.one_of(
    lone_surrogates,
    any_text,
    form_values,
    json_values,
    st.builds(lambda depth, kind: Raw(nested(depth, kind)), depths, nestings),
)

#: The fields each route reads (besides ``csrf_token``).
ROUTE_FIELDS: dict[str, tuple[str, ...]] = {
    "/register": ("username", "password"),
    "/login": ("username", "password", "remember", "next"),
    "/logout": ("next",),
    "/sessions/<public_id>/revoke": ("password",),
    "/sessions/revoke-others": ("password",),
    "/password": ("current", "new"),
    "/api/token": ("username", "password"),
    "/api/token/refresh": ("refresh_token",),
    "/api/token/revoke": ("token", "token_type_hint"),
}
#: What the right value of a field would be.
FIELD_CREDENTIALS = {
    "username": ("username",),
    "password": ("password",),
    "current": ("password",),
    "new": ("password",),
    "refresh_token": ("refresh", "dead_refresh"),
    "token": ("access", "dead_access", "refresh", "dead_refresh"),
}
#: Routes that read a JSON body.
JSON_ROUTES = frozenset({"/api/token", "/api/token/refresh"})


def fields(
    route: str, values: st.SearchStrategy[t.Any]
) -> st.SearchStrategy[list[tuple[str, t.Any]]]:
    """The route's own fields (each 3 times in 4) and others, in any order.

    A field that takes a credential holds the right one a third of the time,
    so that requests also get past the password check.
    """
    own = []
    for name in ROUTE_FIELDS.get(route, ()):
        right = live(*FIELD_CREDENTIALS[name]) if name in FIELD_CREDENTIALS else values
        present = st.tuples(st.just(name), values | values | right)
        own.append(st.one_of(*times(3, present.map(lambda p: [p])), st.just([])))
    others = st.lists(st.tuples(field_names, values), max_size=3)
    return st.tuples(*own, others).flatmap(
        lambda drawn: st.permutations([pair for pairs in drawn for pair in pairs])
    )


@functools.cache
def form_pairs(route: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Form fields, with the client's valid CSRF token most times."""
    csrf = [("csrf_token", LIVE["csrf"])]
    return st.tuples(fields(route, form_values), usually).flatmap(
        lambda drawn: st.permutations(drawn[0] + csrf if drawn[1] else drawn[0])
    )


def json_object(members: list[tuple[str, t.Any]]) -> str:
    # Written by hand: a key may come twice (the last one wins in Python).
    return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in members) + "}"


@functools.cache
def json_texts(route: str) -> st.SearchStrategy[str]:
    """JSON (or nearly) as text: nested, duplicated, huge, or just odd."""
    members = fields(route, json_field_values)
    with_huge = st.tuples(members, st.sampled_from(HUGE_NUMBERS)).map(
        # A number too long for int() or float(), in place of a value.
        lambda drawn: [(k, Raw(drawn[1])) for k, _ in drawn[0][:1]] + drawn[0][1:]
    )
    nesting = st.builds(nested, depths, nestings)
    return st.one_of(
        *times(2, members.map(json_object)),
        *times(2, nesting),
        json_values.map(json.dumps),
        with_huge.map(json_object),
    )


CONTENT_TYPES = [
    None,
    "",
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=nonsense",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=x",
    "text/plain",
    "*/*",
    "application/octet-stream",
]
content_types = st.sampled_from(CONTENT_TYPES) | header_text
RAW_BODIES = [
    b"%ff%fe=%80&csrf_token=%ff",
    b"username=%ED%A0%80&password=%C3",
    b"\xef\xbb\xbf{}",
    b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff',
    b"=&=&&==",
]
NOT_UTF8 = [*[b""] * 5, b"\xff", b"\xc3", b"\xed\xa0\x80"]


@dataclasses.dataclass
class Body:
    #: ``none``, ``form`` (URL-encoded), ``multipart``, ``json`` or ``raw``.
    kind: str
    content_type: str | None = None
    #: The fields of ``form`` and ``multipart`` bodies.
    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: The bytes of ``json`` and ``raw`` bodies.
    raw: bytes = b""


@functools.cache
def bodies(route: str) -> st.SearchStrategy[Body]:
    pairs = form_pairs(route)
    form = st.builds(
        Body,
        st.just("form"),
        st.one_of(
            *times(3, st.just("application/x-www-form-urlencoded")), content_types
        ),
        pairs=pairs,
    )
    multipart = st.builds(
        Body, st.just("multipart"), st.just("multipart/form-data"), pairs=pairs
    )
    json_body = st.builds(
        Body,
        st.just("json"),
        st.one_of(*times(3, st.just("application/json")), content_types),
        # Some end in bytes that are not UTF-8.
        raw=st.builds(
            lambda text, tail: text.encode("utf-8", "surrogatepass") + tail,
            json_texts(route),
            st.sampled_from(NOT_UTF8),
        ),
    )
    raw = st.builds(
        Body,
        st.just("raw"),
        content_types,
        raw=st.binary(max_size=200) | st.sampled_from(RAW_BODIES),
    )
    # Mostly what the route reads: JSON for the JSON endpoints, else a form.
    main = json_body if route in JSON_ROUTES else form
    return st.one_of(
        *times(3, main), st.just(Body("none")), form, multipart, json_body, raw
    )


jwt_headers = st.dictionaries(
    st.sampled_from(["alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "b64"]),
    json_values,
    max_size=4,
) | st.fixed_dictionaries(
    {
        "alg": st.sampled_from(["HS256", "none", "RS256", "ES256", "HS512"]),
        "typ": st.sampled_from(["at+jwt", "JWT", "application/at+jwt"]),
        "kid": st.text(max_size=20),
    }
)
jwt_looking = st.builds(
    lambda header, payload, signature: ".".join(
        (
            b64(json.dumps(header).encode()),
            b64(json.dumps(payload).encode()),
            b64(signature),
        )
    ),
    jwt_headers,
    json_values,
    st.binary(max_size=64),
)
# A JOSE header nested as deep as the 8 kB limits allow.
nested_jwt = st.builds(
    lambda depth, kind: f"{b64(nested(depth, kind).encode())}.e30.c2ln",
    # 3,000 arrays or 1,000 objects: 8 kB once in base64.
    st.integers(1, 3000),
    st.just("array"),
) | st.builds(
    lambda depth: f"{b64(nested(depth, 'object').encode())}.e30.c2ln",
    st.integers(1, 1000),
)
# One of our tokens, then cut, changed or extended ("<token>@@<how>").
TAMPERINGS = ("cut", "swap", "case", "dot")
tampered = st.builds(
    lambda token, how: f"{token}@@{how}",
    live("access", "dead_access"),
    st.sampled_from(TAMPERINGS),
)

bearer_values = st.one_of(
    ascii_token,
    header_text,
    st.sampled_from(["", " ", "a b", "a.b", "a.b.c", "..", "e30.e30.", "\x00"]),
    jwt_looking,
    nested_jwt,
    tampered,
    live("access", "dead_access", "refresh", "session"),
)
bearer_headers = st.one_of(
    bearer_values.map(lambda v: f"Bearer {v}"),
    st.tuples(
        st.sampled_from(["bearer ", "BEARER ", "Bearer\t", "Bearer  ", " Bearer "]),
        bearer_values,
    ).map("".join),
    big_sizes.map(lambda n: "Bearer " + "a" * n),
)
other_schemes = st.one_of(
    st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    header_text.map(lambda v: "Basic " + v),
    st.just('Digest username="fuzzer", realm="x", nonce="1", response="0"'),
    st.binary(max_size=60).map(lambda b: "Negotiate " + base64.b64encode(b).decode()),
    st.just("NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="),
    big_sizes.map(lambda n: "Basic " + "A" * n),
)
#: The client's own ``Authorization`` (a Bearer client's token; none else).
OWN = "@@own@@"
authorizations = st.one_of(
    *times(4, st.just(OWN)),
    st.none(),
    bearer_headers,
    bearer_headers,
    other_schemes,
    st.sampled_from(["", " ", "Bearer", "Bearer ", "Basic", "Token abc", "x"]),
    header_text,
)

cookie_names = st.sampled_from(
    [SESSION_COOKIE, NONCE_COOKIE, "session", "__Secure-session", "signoff_signed_out"]
) | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10)
cookie_values = st.one_of(
    header_text,
    huge_text,
    live("session", "dead_session", "csrf", "access"),
    st.sampled_from(['"', '""', "a;b", "a,b", "%ff", "\\", "=", "\x7f"]),
)
cookie_plans = st.one_of(
    *times(2, st.none()),  # the client's own cookies, as they are
    st.lists(st.tuples(cookie_names, cookie_values), max_size=3),
    header_text | huge_text,  # the whole header, raw
)
extra_headers = st.lists(
    st.one_of(
        st.tuples(
            st.just("Origin"),
            st.sampled_from(["http://localhost", "null", "https://evil.example"])
            | header_text,
        ),
        st.tuples(
            st.just("Sec-Fetch-Site"),
            st.sampled_from(["same-origin", "cross-site", "none", "same-site"])
            | header_text,
        ),
        st.tuples(st.just("X-CSRF-Token"), live("csrf") | header_text),
        st.tuples(st.just("User-Agent"), header_text | huge_text),
        st.tuples(
            st.just("Accept"),
            st.sampled_from(["application/json", "text/html", "*/*;q=x", ""]),
        ),
        st.tuples(st.just("Host"), st.sampled_from(["localhost", "", "a:b:c", "é"])),
        st.tuples(st.just("X-Forwarded-For"), header_text),
        st.tuples(st.just("Referer"), header_text),
        st.tuples(ascii_token.filter(str.isalnum), header_text),
    ),
    max_size=3,
)
queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(field_names, form_values), max_size=3).map(
        urllib.parse.urlencode
    ),
    st.sampled_from(["next=//evil.example", "%ff=%fe&&=", "next=%0d%0a", "a"]),
)
path_segments = st.one_of(
    live("public_id"),
    st.text(max_size=30).map(lambda s: urllib.parse.quote(s, safe="")),
    st.sampled_from(["", "..", "%2e%2e", "%00", "%ff", "a" * 5000, "0" * 22]),
)
static_files = st.one_of(
    st.sampled_from(
        [
            "style.css",
            "signoff.js",
            "../__init__.py",
            "..%2f__init__.py",
            "%2e%2e/%2e%2e/pyproject.toml",
            "%00",
            "a" * 5000,
            "style.css/",
            ".",
        ]
    ),
    st.text(max_size=30).map(lambda s: urllib.parse.quote(s, safe="/")),
)


@dataclasses.dataclass
class Plan:
    """One request, with placeholders for the client's live values."""

    method: str
    path: str
    query: str
    #: ``OWN``, ``None`` (no header) or a value.
    authorization: str | None
    headers: list[tuple[str, str]]
    #: ``None``: the client's own; a list: added to them; a string: the header.
    cookies: list[tuple[str, str]] | str | None
    body: Body


@functools.cache
def plans(route: str) -> st.SearchStrategy[Plan]:
    methods = ROUTES[route]
    if "<public_id>" in route:
        paths = path_segments.map(lambda s: route.replace("<public_id>", s))
    elif "<path:filename>" in route:
        paths = static_files.map(lambda s: route.replace("<path:filename>", s))
    else:
        paths = st.just(route)
    # Drawn first, the parts most likely to break something: Hypothesis keeps
    # its first examples small, and what it draws last comes out simplest.
    return st.builds(
        Plan,
        body=bodies(route),
        authorization=authorizations,
        cookies=cookie_plans,
        method=st.one_of(
            *times(5, st.sampled_from(methods)),
            st.sampled_from([*methods, "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]),
        ),
        path=paths,
        query=queries,
        headers=extra_headers,
    )


# -- the app and its clients ----------------------------------------------------


class Fuzzer:
    """The app under test, its store calls, and one client kept alive."""

    def __init__(self, app: Flask, clock: FrozenClock, client: str) -> None:
        self.app = app
        self.clock = clock
        self.client = client
        self.calls: list[str] = []
        self._count_store_calls(get_state(app).store)
        self.values: dict[str, str] = {}
        self.cookies: list[tuple[str, str]] = []
        self.user_id: int | None = None
        self._prepare()

    def _count_store_calls(self, store: Store) -> None:
        # In place, so that every holder of the store (lifecycles, throttle,
        # token service) is counted without knowing who holds it.
        for name in dir(Store):
            if not name.startswith("_") and name != "close":
                setattr(store, name, self._counted(name, getattr(store, name)))

    def _counted(self, name: str, method: Callable[..., t.Any]) -> Callable[..., t.Any]:
        @functools.wraps(method)
        def counted(*args: t.Any, **kwargs: t.Any) -> t.Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted

    # -- setting up ------------------------------------------------------

    def _browser(self) -> t.Any:
        return self.app.test_client()

    def _form_token(self, client: t.Any, path: str) -> str:
        html = client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match is not None, f"no csrf_token on {path}"
        return match.group(1)

    def _sign_in(self) -> t.Any:
        browser = self._browser()
        token = self._form_token(browser, "/login")
        r = browser.post(
            "/login",
            data={"username": USERNAME, "password": PASSWORD, "csrf_token": token},
        )
        assert r.status_code == 303, r.status_code
        return browser

    def _pair(self) -> dict[str, str]:
        r = self.app.test_client().post(
            "/api/token", json={"username": USERNAME, "password": PASSWORD}
        )
        assert r.status_code == 200, r.status_code
        return t.cast(dict[str, str], r.json)

    def _prepare(self) -> None:
        browser = self._browser()
        token = self._form_token(browser, "/register")
        r = browser.post(
            "/register",
            data={"username": USERNAME, "password": PASSWORD, "csrf_token": token},
        )
        assert r.status_code == 303
        self.user_id = (
            self.app.extensions["demo_users"].authenticate(USERNAME, PASSWORD).id
        )
        # Credentials of ours that no longer work: a signed-out session's
        # id, a revoked access token and a revoked refresh token.
        gone = self._sign_in()
        dead_session = gone.get_cookie(SESSION_COOKIE).value
        r = gone.post("/logout", data={"csrf_token": self._form_token(gone, "/")})
        assert r.status_code == 303
        dead = self._pair()
        r = self.app.test_client().post(
            "/api/token/revoke", data={"token": dead["refresh_token"]}
        )
        assert r.status_code == 200
        self.values = {
            "username": USERNAME,
            "password": PASSWORD,
            "dead_session": dead_session,
            "dead_access": dead["access_token"],
            "dead_refresh": dead["refresh_token"],
            "session": dead_session,
            "access": dead["access_token"],
            "refresh": dead["refresh_token"],
            "public_id": "0" * 22,
            "csrf": "",
        }
        self.renew()

    def alive(self) -> bool:
        """Whether the client's credential still works."""
        client = self.app.test_client(use_cookies=False)
        if self.client in ("cookie", "stale"):
            cookie = f"{SESSION_COOKIE}={self.values['session']}"
            r = client.get("/api/me", headers={"Cookie": cookie})
            return r.status_code == 200
        if self.client == "bearer":
            auth = f"Bearer {self.values['access']}"
            r = client.get("/api/me", headers={"Authorization": auth})
            return r.status_code == 200
        return True

    def renew(self) -> None:
        """Give the client a working credential (and its CSRF token)."""
        users = self.app.extensions["demo_users"]
        users.set_password(self.user_id, PASSWORD)  # an example may change it
        if self.client == "anonymous":
            browser = self._browser()
            self.values["csrf"] = self._form_token(browser, "/login")
            self.cookies = [(NONCE_COOKIE, browser.get_cookie(NONCE_COOKIE).value)]
        elif self.client in ("cookie", "stale"):
            browser = self._sign_in()
            if self.client == "stale":
                fresh_for = get_state(self.app).settings.fresh_for
                self.clock.advance(fresh_for + 1)
                assert browser.get("/api/me").status_code == 200  # the touch
            self.values["csrf"] = self._form_token(browser, "/sessions")
            self.values["session"] = browser.get_cookie(SESSION_COOKIE).value
            current = [s for s in browser.get("/api/sessions").json if s["current"]]
            self.values["public_id"] = current[0]["id"]
            self.cookies = [(SESSION_COOKIE, self.values["session"])]
        else:
            pair = self._pair()
            self.values["access"] = pair["access_token"]
            self.values["refresh"] = pair["refresh_token"]
            self.cookies = []

    # -- one request -----------------------------------------------------

    def resolve(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            return self.values[match.group(1)]

        text = _LIVE_RE.sub(value, text)
        # Tampered tokens: "<token>@@<how>".
        for how in TAMPERINGS:
            suffix = f"@@{how}"
            if text.endswith(suffix):
                token = text[: -len(suffix)]
                text = {
                    "cut": token[:-1],
                    "swap": token[:-1] + ("A" if token[-1:] != "A" else "B"),
                    "case": token.swapcase(),
                    "dot": token + ".",
                }[how]
        return text

    def send(self, plan: Plan) -> tuple[t.Any, bool]:
        """Send ``plan``; return the response and whether it carried a credential."""
        resolve = self.resolve
        headers = [(name, resolve(value)) for name, value in plan.headers]
        authorization = plan.authorization
        if authorization == OWN:
            own = self.client == "bearer"
            authorization = f"Bearer {self.values['access']}" if own else None
        if authorization is not None:
            headers.insert(0, ("Authorization", resolve(authorization)))
        if plan.cookies is None:
            cookie_pairs = list(self.cookies)
        elif isinstance(plan.cookies, list):
            cookie_pairs = [*self.cookies, *plan.cookies]
            cookie_pairs = [(n, resolve(v)) for n, v in cookie_pairs]
        else:
            cookie_pairs = []
        cookie = (
            resolve(plan.cookies)
            if isinstance(plan.cookies, str)
            else "; ".join(f"{n}={v}" for n, v in cookie_pairs)
        )
        if cookie:
            headers.append(("Cookie", cookie))
        body = plan.body
        pairs = [(resolve(n), resolve(v)) for n, v in body.pairs]
        data: bytes | None = None
        content_type = body.content_type
        if body.kind == "form":
            data = urllib.parse.urlencode(pairs).encode()
        elif body.kind == "multipart":
            # Encoded here, in memory: the test client spools a large body
            # to a temporary file that it never closes.
            boundary, data = encode_multipart(MultiDict(pairs))
            content_type = f"multipart/form-data; boundary={boundary}"
        elif body.kind != "none":
            data = _LIVE_BYTES_RE.sub(
                lambda m: self.values[m.group(1).decode()].encode(), body.raw
            )
        client = self.app.test_client(use_cookies=False)
        response = client.open(
            resolve(plan.path),
            method=plan.method,
            query_string=resolve(plan.query),
            headers=headers,
            data=data,
            content_type=content_type,
        )
        response.get_data()
        response.close()
        return response, self._carries_credential(headers, data)

    def _carries_credential(
        self, headers: list[tuple[str, str]], data: bytes | None
    ) -> bool:
        """Whether the request held something that may rightly cause a write.

        The live session cookie (unless a Bearer header takes over), one of
        our access tokens anywhere (revoking by a signed access token is
        allowed even once it expired or was revoked), the live refresh
        token, or the password.
        """
        v = self.values
        everything = " ".join(value for _, value in headers)
        if data is not None:
            everything += data.decode("latin-1")
        authorization = dict(headers).get("Authorization", "")
        bearer = authorization.strip().lower().startswith("bearer")
        cookie = dict(headers).get("Cookie", "")
        quoted = everything + " " + urllib.parse.unquote_plus(everything)
        return (
            (
                self.client in ("cookie", "stale")
                and v["session"] in cookie
                and not bearer
            )
            or any(
                token and token in quoted
                for token in (v["access"], v["dead_access"], v["password"])
            )
            or (self.client == "bearer" and v["refresh"] in quoted)
        )


@pytest.fixture
def fuzz_app(tmp_path: Path, clock: FrozenClock) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            # An unhandled error becomes a logged 500, as in production,
            # instead of an exception raised into the test.
            "PROPAGATE_EXCEPTIONS": False,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "demo-fuzz-secret-0123456789",
            "SIGNOFF_TEST_CLOCK": clock,
            "DEMO_ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024},
            # Out of the way: thousands of failed sign-ins from one address
            # would otherwise turn every later request into a 429. The keys
            # are still computed and counted on every password check.
            "SIGNOFF_THROTTLE_ACCOUNT_LIMIT": 10**9,
            "SIGNOFF_THROTTLE_IP_LIMIT": 10**9,
        }
    )
    yield app
    get_state(app).store.close()
    app.extensions["demo_users"].engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print how many requests the fuzz sent (per endpoint in a long run)."""
    yield
    if not TRIED:
        return
    lines = []
    if LONG_RUN:
        for (route, client), count in sorted(TRIED.items()):
            statuses = " ".join(
                f"{s}:{n}" for s, n in sorted(STATUSES[route, client].items())
            )
            kinds = " ".join(
                f"{k}:{n}" for k, n in sorted(KINDS[route, client].items())
            )
            lines.append(
                f"demo fuzz {route} [{client}]: {count} requests; "
                f"statuses {statuses}; bodies {kinds}"
            )
    worst = max(max(c) for c in STATUSES.values())
    lines.append(
        f"demo fuzz: {sum(TRIED.values())} requests to {len(TRIED)} endpoint/client "
        f"pairs (up to {EXAMPLES} examples each); highest status {worst}"
    )
    # Fixture teardown output is captured, and dropped for passing tests.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.line("")
        for line in lines:
            reporter.write_line(line)


def test_every_route_of_the_demo_is_fuzzed(fuzz_app: Flask) -> None:
    routes = {
        rule.rule: tuple(sorted(rule.methods - {"HEAD", "OPTIONS"}))  # type: ignore[operator]
        for rule in fuzz_app.url_map.iter_rules()
    }
    assert routes == {route: tuple(sorted(m)) for route, m in ROUTES.items()}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_hostile_requests_never_reach_a_5xx(
    fuzz_app: Flask,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    route: str,
    client: str,
) -> None:
    fuzzer = Fuzzer(fuzz_app, clock, client)

    @FUZZ
    @given(plan=plans(route))
    def fuzz(plan: Plan) -> None:
        if not fuzzer.alive():
            fuzzer.renew()
        fuzzer.calls.clear()
        caplog.clear()
        response, credential = fuzzer.send(plan)
        status = response.status_code
        TRIED[route, client] += 1
        STATUSES[route, client][status] += 1
        KINDS[route, client][plan.body.kind] += 1
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not errors, "\n".join(caplog.handler.format(r) for r in errors)
        assert 200 <= status < 500, status
        if not credential:
            writes = [c for c in fuzzer.calls if not is_read(c)]
            assert set(writes) <= ALLOWED_WITHOUT_CREDENTIAL, writes

    fuzz()
