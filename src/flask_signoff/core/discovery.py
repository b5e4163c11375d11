"""An OpenID Connect provider's discovery document and signing keys.

What a relying party reads from its provider, over HTTP, for sign-out:
the discovery document (``end_session_endpoint``, ``jwks_uri``; OpenID
Connect Discovery 1.0) and the JWK Set that signs logout tokens. Both are
fetched with a timeout and kept for :attr:`ProviderDocuments.lifespan`
seconds, so a logout costs no request to the provider in the common case.

Key rotation: a token signed with a ``kid`` the kept set lacks makes one
fetch of the set, at most once per :attr:`ProviderDocuments.refetch_interval`
seconds; a ``kid`` still unknown is refused. The interval counts from the
last attempt, whether it succeeded or not: a set never fetched, or kept too
long, that fails to come is not asked for again within it either (the token
gets a 503, which the provider retries). A stream of forged tokens with
made-up ``kid`` values therefore costs the provider at most one request per
interval, also while it is failing.

No redirect is followed, an endpoint of the document that is not an
absolute ``https`` URL (``http`` too if the document came over ``http``) is
refused, and so is a document over :data:`MAX_DOCUMENT` bytes: the URLs
come from configuration and from the provider's own document, and an
answer of another shape is a fault to report, not to chase. Any failure
to fetch or read a document raises
:class:`~flask_signoff.exceptions.ProviderUnavailable` (a 503: the logout
can be retried), never a refusal of the token.

Framework-free; time comes from an injected clock.
"""

from __future__ import annotations

import http.client
import json
import threading
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from jwt import PyJWK
from jwt.exceptions import PyJWKError

from ..exceptions import ProviderUnavailable
from .clock import Clock, system_clock

#: Largest discovery document or JWK Set read, in bytes.
MAX_DOCUMENT = 512 * 1024

#: ``fetch(url, timeout)``: the JSON document at ``url``.
Fetch = Callable[[str, float], t.Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None


def fetch_json(url: str, timeout: float) -> t.Any:
    """GET ``url`` and parse its body as JSON, within ``timeout`` seconds.

    :raises ProviderUnavailable: for any failure: no answer in time, an
        HTTP error or redirect, a body too large or not JSON.
    """
    if not url.lower().startswith(("https://", "http://")):
        raise ProviderUnavailable(f"{url} is not an http(s) URL.")
    # The scheme is checked above: no file: or custom scheme is opened.
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT + 1)
    except urllib.error.HTTPError as error:
        error.close()
        raise ProviderUnavailable(f"{url} answered {error.code}.") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise ProviderUnavailable(f"{url} could not be fetched: {error}.") from None
    if len(body) > MAX_DOCUMENT:
        raise ProviderUnavailable(f"{url} sent more than {MAX_DOCUMENT} bytes.")
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderUnavailable(f"{url} did not send JSON.") from None


class ProviderDocuments:
    """The discovery document and JWK Set of one provider, fetched and kept.

    :param issuer: the provider's issuer identifier; the discovery document
        must name exactly this one (OpenID Connect Discovery 1.0, 4.3).
    :param metadata_url: where the discovery document is.
    :param timeout: seconds each fetch may take.
    :param clock: the time source.
    :param fetch: how a document is fetched (:func:`fetch_json`).
    """

    #: Seconds a fetched document is kept before it is fetched again.
    lifespan: float = 3600.0
    #: Fewest seconds between two fetches of the JWK Set made because a
    #: token named an unknown ``kid``, or because the kept set is too old or
    #: missing (counted from the last attempt, failed or not).
    refetch_interval: float = 60.0

    def __init__(
        self,
        issuer: str,
        metadata_url: str,
        *,
        timeout: float = 5.0,
        clock: Clock = system_clock,
        fetch: Fetch = fetch_json,
    ) -> None:
        self.issuer = issuer
        self.metadata_url = metadata_url
        self.timeout = timeout
        self.clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, t.Any]] | None = None
        self._keys: tuple[float, list[_Key]] | None = None
        #: When the JWK Set was last asked for, successfully or not.
        self._keys_tried: float | None = None

    # -- discovery -----------------------------------------------------------

    def metadata(self) -> dict[str, t.Any]:
        """The discovery document, fetched if none is kept or it is too old.

        :raises ProviderUnavailable: it cannot be fetched, is not a JSON
            object, or names another issuer.
        """
        now = self.clock()
        with self._lock:
            kept = self._metadata
            if kept is not None and now - kept[0] < self.lifespan:
                return kept[1]
        document = self._fetch(self.metadata_url, self.timeout)
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{self.metadata_url} is not a JSON object.")
        if document.get("issuer") != self.issuer:
            raise ProviderUnavailable(
                f"{self.metadata_url} names the issuer "
                f"{document.get('issuer')!r}, not {self.issuer!r}."
            )
        with self._lock:
            self._metadata = (now, document)
        return document

    def endpoint(self, name: str) -> str | None:
        """The URL of ``name`` (``end_session_endpoint``) in the discovery
        document, or ``None`` if it has none.

        The URL must be absolute, with a host, and ``https`` unless the
        document itself came over plain ``http`` (a provider on the
        developer's machine): an ``http`` key set named by a document got
        over TLS could be answered by anyone on the network with keys that
        sign any logout token, and a relative or odd URL would send the
        browser, ID token and all, somewhere else than a provider's page.

        :raises ProviderUnavailable: the document cannot be fetched, or names
            a URL of another kind.
        """
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value:
            return None
        parts = urllib.parse.urlsplit(value)
        schemes = {"https"} if self._secure else {"https", "http"}
        if parts.scheme.lower() not in schemes or not parts.hostname:
            raise ProviderUnavailable(
                f"{self.metadata_url} gives a {name} that is not an absolute "
                f"{' or '.join(sorted(schemes))} URL."
            )
        return value

    @property
    def _secure(self) -> bool:
        return self.metadata_url.lower().startswith("https://")

    # -- keys ----------------------------------------------------------------

    def _key_set(self, now: float) -> list[_Key]:
        url = self.endpoint("jwks_uri")
        if url is None:
            raise ProviderUnavailable(
                f"{self.metadata_url} has no jwks_uri: logout tokens cannot be "
                "verified."
            )
        document = self._fetch(url, self.timeout)
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ProviderUnavailable(f"{url} is not a JWK Set.")
        keys = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = PyJWK(entry)
            except (PyJWKError, ValueError, TypeError, KeyError):
                continue  # a key of a type we cannot use: not ours to judge
            declared = entry.get("alg")
            keys.append(_Key(declared if isinstance(declared, str) else None, key))
        with self._lock:
            self._keys = (now, keys)
        return keys

    def signing_key(self, kid: str | None, algorithm: str) -> PyJWK | None:
        """The provider's key named ``kid`` for ``algorithm``, or ``None``.

        Without ``kid``, the one key of the set usable with ``algorithm``, if
        there is exactly one. A key usable with ``algorithm`` has the
        algorithm's type (RSA for ``RS*``/``PS*``, EC for ``ES*``, OKP for
        ``EdDSA``) and, if its JWK names an ``alg``, names this one. The kept
        set is fetched again when it is too old or lacks the key, at most
        once per :attr:`refetch_interval`, counted from the last attempt.

        :raises ProviderUnavailable: the set cannot be fetched, or is too
            old or missing and was asked for within the interval.
        """
        now = self.clock()
        with self._lock:
            kept = self._keys
            current = kept is not None and now - kept[0] < self.lifespan
            if current:
                assert kept is not None
                key = _find(kept[1], kid, algorithm)
                if key is not None:
                    return key
            tried = self._keys_tried
            # Claimed under the lock: of the requests that find the interval
            # over, one fetches; a failed fetch counts as much as one that
            # came back, or each forged token would cost the provider a
            # request for as long as it fails.
            may_fetch = tried is None or now - tried >= self.refetch_interval
            if may_fetch:
                self._keys_tried = now
        if may_fetch:
            return _find(self._key_set(now), kid, algorithm)
        if current:
            return None  # an unknown kid, and the set was asked for lately
        raise ProviderUnavailable(
            f"The provider's keys could not be fetched; they are asked for at "
            f"most once every {self.refetch_interval:g} seconds."
        )


class _Key(t.NamedTuple):
    #: The JWK's own ``alg``, if it names one.
    declared: str | None
    key: PyJWK


#: The key type each algorithm family verifies with.
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _find(keys: list[_Key], kid: str | None, algorithm: str) -> PyJWK | None:
    kty = _KEY_TYPES.get(algorithm[:2])
    usable = [
        k.key for k in keys if k.key.key_type == kty and k.declared in (None, algorithm)
    ]
    if kid is None:
        return usable[0] if len(usable) == 1 else None
    for key in usable:
        if key.key_id == kid:
            return key
    return None
