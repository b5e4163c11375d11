"""The provider's documents: fetched with a timeout, kept, refused when odd.

Against a provider served for real on 127.0.0.1 (:mod:`tests.support.oidc`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.discovery import MAX_DOCUMENT, ProviderDocuments, fetch_json
from flask_signoff.core.logout_token import LogoutTokenValidator
from flask_signoff.exceptions import ConfigError, ProviderUnavailable
from tests.support.oidc import ProviderServer, SigningKey, provider_server

WELL_KNOWN = "/.well-known/openid-configuration"


@pytest.fixture
def idp() -> Iterator[ProviderServer]:
    yield from provider_server()


def documents(idp: ProviderServer, clock: FrozenClock) -> ProviderDocuments:
    return ProviderDocuments(
        idp.issuer, idp.issuer + WELL_KNOWN, timeout=2.0, clock=clock
    )


def test_documents_are_kept_for_their_lifespan(
    idp: ProviderServer, clock: FrozenClock
) -> None:
    docs = documents(idp, clock)
    assert docs.endpoint("end_session_endpoint") == f"{idp.issuer}/logout?ui=1"
    assert docs.signing_key("key-1", "RS256") is not None
    assert docs.signing_key("key-1", "RS256") is not None
    assert idp.requests == {WELL_KNOWN: 1, "/jwks": 1}
    clock.advance(docs.lifespan)
    assert docs.signing_key("key-1", "RS256") is not None
    assert idp.requests == {WELL_KNOWN: 2, "/jwks": 2}


def test_a_document_naming_another_issuer_is_refused(
    idp: ProviderServer, clock: FrozenClock
) -> None:
    # OpenID Connect Discovery 1.0, 4.3: a provider impersonating another.
    metadata = {**idp.metadata(), "issuer": "http://evil.example"}
    idp.raw[WELL_KNOWN] = (200, {}, json.dumps(metadata).encode())
    with pytest.raises(ProviderUnavailable, match="names the issuer"):
        documents(idp, clock).metadata()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((302, {"Location": "/jwks"}, b""), "answered 302"),
        ((500, {}, b"{}"), "answered 500"),
        ((200, {}, b"<html>"), "not send JSON"),
        ((200, {}, b"[" + b" " * MAX_DOCUMENT + b"]"), "more than"),
    ],
)
def test_odd_answers_are_an_unavailable_provider(
    idp: ProviderServer, answer: tuple[int, dict[str, str], bytes], message: str
) -> None:
    idp.raw["/odd"] = answer
    with pytest.raises(ProviderUnavailable, match=message):
        fetch_json(idp.issuer + "/odd", 2.0)


def test_only_http_urls_are_fetched() -> None:
    with pytest.raises(ProviderUnavailable, match="http"):
        fetch_json("file:///etc/passwd", 2.0)


def test_a_provider_that_never_answers_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
    thread.start()
    port = listener.getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable):
            fetch_json(f"http://127.0.0.1:{port}/jwks", 0.3)
        assert time.monotonic() - started < 2
    finally:
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


def test_only_keys_of_the_algorithm_s_type_are_used(
    idp: ProviderServer, clock: FrozenClock
) -> None:
    ec_key = SigningKey("key-ec", "ES256")
    oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "key-oct", "alg": "HS256"}
    idp.raw["/jwks"] = (
        200,
        {},
        json.dumps({"keys": [idp.keys[0].jwk, ec_key.jwk, oct_key]}).encode(),
    )
    docs = documents(idp, clock)
    assert docs.signing_key("key-1", "RS256") is not None
    # The JWK names RS256: not for PS256, though the type would do.
    assert docs.signing_key("key-1", "PS256") is None
    assert docs.signing_key("key-ec", "RS256") is None
    assert docs.signing_key("key-ec", "ES256") is not None
    assert docs.signing_key("key-oct", "HS256") is None
    # Without a kid: the one key of the type, if there is only one.
    assert docs.signing_key(None, "ES256") is not None


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS512"], []])
def test_no_symmetric_or_empty_algorithm_may_be_allowed(
    idp: ProviderServer, clock: FrozenClock, algorithms: list[str]
) -> None:
    with pytest.raises(ConfigError, match="asymmetric"):
        LogoutTokenValidator(documents(idp, clock), "app", algorithms=algorithms)


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example/endpoint",  # plain http from a document got over TLS
        "//evil.example/endpoint",  # scheme-relative: a redirect to any host
        "/endpoint",  # relative: our own site, id_token_hint in its logs
        "javascript:alert(1)",
        "https:///endpoint",  # no host
    ],
)
@pytest.mark.parametrize("name", ["jwks_uri", "end_session_endpoint"])
def test_an_endpoint_must_be_an_https_url_like_the_document(
    clock: FrozenClock, name: str, url: str
) -> None:
    # A document fetched over https whose endpoints a network attacker could
    # then answer (keys that sign any logout token), or that send the
    # browser, with its ID token, somewhere else than a provider's page.
    issuer = "https://idp.example"
    metadata = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks", name: url}
    fetched: list[str] = []

    def fetch(target: str, timeout: float) -> object:
        fetched.append(target)
        return metadata

    docs = ProviderDocuments(issuer, issuer + WELL_KNOWN, clock=clock, fetch=fetch)
    with pytest.raises(ProviderUnavailable, match=name):
        docs.endpoint(name)
    assert fetched == [issuer + WELL_KNOWN]
    metadata[name] = f"{issuer}/{name}?x=1"
    clock.advance(docs.lifespan)
    assert docs.endpoint(name) == f"{issuer}/{name}?x=1"
