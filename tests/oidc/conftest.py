"""Fixtures of the OpenID Connect tests: a provider's documents served on
127.0.0.1, and an app signed in through it on the ``backend`` store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_signoff.core.clock import FrozenClock
from flask_signoff.core.store import Store
from flask_signoff.oidc import OIDCProvider
from tests.support.oidc import ProviderServer, make_oidc_app, provider_server


@pytest.fixture
def idp() -> Iterator[ProviderServer]:
    yield from provider_server()


@pytest.fixture
def oidc_app(
    store: Store, clock: FrozenClock, idp: ProviderServer
) -> tuple[Flask, OIDCProvider]:
    return make_oidc_app(store, clock, idp.issuer)


@pytest.fixture
def app(oidc_app: tuple[Flask, OIDCProvider]) -> Flask:
    return oidc_app[0]


@pytest.fixture
def provider(oidc_app: tuple[Flask, OIDCProvider]) -> OIDCProvider:
    return oidc_app[1]


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()
