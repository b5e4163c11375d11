"""What Flask-Signoff keeps for one app, and how to find it: :func:`get_state`.

The root of the Flask binding: every other module of the binding may import
this one, and it imports none of them, only the framework-free core, the
settings, the exceptions and the stores. Everything per app lives in one
:class:`SignoffState` in ``app.extensions["signoff"]``, never on the
:class:`~flask_signoff.Signoff` object, which may serve several apps.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from collections.abc import Mapping

from flask import Flask, current_app

from .config import Settings
from .core.clock import Clock
from .core.keys import HMAC_DIGESTS, JWTKey, KeySet, derive_hmac_key
from .core.sessions import SessionLifecycle
from .core.store import Store
from .core.throttle import Throttle
from .core.tokens import TokenLifecycle
from .exceptions import ConfigError, StoreUnavailable

if t.TYPE_CHECKING:
    from .extension import Signoff
    from .session_interface import SignoffSessionInterface
    from .stamps import StampBinding

logger = logging.getLogger("flask_signoff")

#: The label of the subkey of ``SECRET_KEY`` that keys the throttle's counters.
THROTTLE_LABEL = b"flask-signoff throttle"


def _throttle_key(config: Mapping[str, t.Any]) -> bytes | None:
    """The key of the throttle's counter names, from the current ``SECRET_KEY``.

    Read at each password check (rare), so an app that sets its secret after
    ``init_app`` is keyed too; without one the counters fall back to a plain
    SHA-256, as Flask itself cannot sign anything then.
    """
    secret = config.get("SECRET_KEY")
    return derive_hmac_key(secret, THROTTLE_LABEL) if secret else None


class SignoffState:
    """Everything Flask-Signoff keeps for one app.

    :param manager: the :class:`~flask_signoff.Signoff` that set the app up
        (its callbacks: ``user_loader`` ...).
    :param settings: the app's settings, read at ``init_app``.
    :param store: where records live.
    :param clock: where time comes from.
    :param stamps: the digests of users' security stamps.
    :param config: the app's config, for a ``SECRET_KEY`` set after
        ``init_app`` (see :class:`TokenService`).
    """

    def __init__(
        self,
        manager: Signoff,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        stamps: StampBinding,
        config: Mapping[str, t.Any],
    ) -> None:
        self.manager = manager
        self.settings = settings
        self.store = store
        self.clock = clock
        self.stamps = stamps
        self.lifecycle = SessionLifecycle(store, settings.session_policy, clock)
        self.throttle = Throttle(
            store, settings.throttle_policy, clock, key=lambda: _throttle_key(config)
        )
        self.tokens = TokenService(settings, store, clock, config)
        #: ``flask.session``'s interface; set by ``init_app``, which installs
        #: it as the app's ``session_interface``.
        self.interface: SignoffSessionInterface
        #: Whether the store passed its ``check_config``; until it has, every
        #: request gets 503 (:meth:`check_store`).
        self.store_checked = False
        self._check_lock = threading.Lock()
        self._check_refused: str | None = None

    def check_store(self) -> None:
        """Run the store's check now if it has not passed yet.

        For a store that was down at start-up: the first request that finds
        it up runs the check; no request is served before it has passed.

        :raises StoreUnavailable: the check has not passed: the store is
            still down, another request is running the check, or the store's
            configuration is refused (logged as an error, once per message).
        """
        if self.store_checked:
            return
        # Without waiting: requests behind a slow check get 503 at once
        # rather than queueing for a worker each.
        if not self._check_lock.acquire(blocking=False):
            raise StoreUnavailable("The session store is being checked.")
        try:
            if self.store_checked:
                return
            try:
                warnings = self.store.check_config()
            except ConfigError as e:
                if str(e) != self._check_refused:
                    self._check_refused = str(e)
                    logger.error(
                        "The session store is refused; every request gets 503 "
                        "until this is fixed. %s",
                        e,
                    )
                raise StoreUnavailable(
                    "The session store's configuration is refused."
                ) from e
            for warning in warnings:
                logger.warning(warning)
            self.store_checked = True
            logger.info("The session store passed its check; serving requests.")
        finally:
            self._check_lock.release()


def check_store_at_start(store: Store) -> bool:
    """Run the store's check at ``init_app``; whether it passed.

    A refused configuration stops the app (:class:`ConfigError`). A store
    that cannot be reached does not: the app starts, answers 503, and runs
    the check on the first request that finds the store up
    (:meth:`SignoffState.check_store`), so an outage at deploy time does not
    turn into an app that cannot start.
    """
    try:
        warnings = store.check_config()
    except StoreUnavailable as e:
        logger.warning(
            "The session store cannot be reached at start-up (%s). Its "
            "configuration will be checked when it answers; until then every "
            "request gets 503.",
            e,
        )
        return False
    for warning in warnings:
        logger.warning(warning)
    return True


def get_state(app: Flask | None = None) -> SignoffState:
    """Return the :class:`SignoffState` of ``app`` (default: the current app)."""
    app = app if app is not None else current_app
    try:
        return t.cast(SignoffState, app.extensions["signoff"])
    except KeyError:
        raise RuntimeError(
            "Flask-Signoff is not set up on this app: call Signoff(app) or "
            "signoff.init_app(app) first."
        ) from None


# -- the keys of access tokens -----------------------------------------------


def build_keys(
    settings: Settings, secret_key: t.Any, secret_key_fallbacks: t.Any
) -> KeySet | None:
    """The key set for access tokens, or ``None`` if ``SECRET_KEY`` is not set yet.

    In order of precedence: ``SIGNOFF_JWT_PRIVATE_KEY`` (asymmetric; older
    public keys in ``SIGNOFF_JWT_PUBLIC_KEYS``, oldest first), an explicit
    ``SIGNOFF_JWT_SECRET_KEY`` (older ones in
    ``SIGNOFF_JWT_SECRET_KEY_FALLBACKS``), else a labelled subkey of
    ``SECRET_KEY`` and of each of Flask's ``SECRET_KEY_FALLBACKS``.
    """
    algorithm = settings.jwt_algorithm
    if settings.jwt_private_key is not None:
        older = [
            JWTKey.asymmetric(algorithm, public_key=pem)
            for pem in settings.jwt_public_keys
        ]
        newest = JWTKey.asymmetric(algorithm, private_key=settings.jwt_private_key)
        return KeySet([*older, newest])
    explicit = settings.jwt_secret_key
    if explicit is not None:
        if explicit == secret_key:
            raise ConfigError(
                "SIGNOFF_JWT_SECRET_KEY",
                "<the SECRET_KEY>",
                "a key of its own, or unset to derive one from SECRET_KEY",
            )
        keys = [*settings.jwt_secret_key_fallbacks, explicit]
        return KeySet(JWTKey.hmac(k, algorithm=algorithm) for k in keys)
    if not secret_key:
        return None
    fallbacks = secret_key_fallbacks or []
    return KeySet.from_secret_keys([*fallbacks, secret_key], algorithm=algorithm)


class TokenService:
    """The token lifecycle of one app; its keys are read once.

    At ``init_app`` if they are known then; else (``SECRET_KEY`` set later,
    by an app factory or a test) at the first token operation that finds
    them. Changing ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS`` or a
    ``SIGNOFF_JWT_*`` key afterwards changes nothing until the app restarts,
    which is how keys are rotated anyway; so no request pays for comparing
    the config with what was read.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        config: Mapping[str, t.Any],
    ) -> None:
        self.settings = settings
        self.policy = settings.token_policy
        self._store = store
        self._clock = clock
        self._config = config
        self._lifecycle: TokenLifecycle | None = None
        self._lock = threading.Lock()
        # Check what can be checked now; SECRET_KEY may come later. Keys
        # derived from SECRET_KEY with an HMAC algorithm (the default) can
        # only be wrong if a secret is empty: that is checked here, and they
        # are made, PyJWT with them, when the first token is made or read,
        # so that an app serving only cookie sessions never loads PyJWT.
        if (
            settings.jwt_private_key is None
            and settings.jwt_secret_key is None
            and settings.jwt_algorithm in HMAC_DIGESTS
        ):
            if config.get("SECRET_KEY"):
                for key in config.get("SECRET_KEY_FALLBACKS") or []:
                    derive_hmac_key(key)
        else:
            self.lifecycle_or_none()

    def lifecycle_or_none(self) -> TokenLifecycle | None:
        """The lifecycle, or ``None`` while no key is known."""
        lifecycle = self._lifecycle
        if lifecycle is not None:
            return lifecycle
        with self._lock:
            if self._lifecycle is None:
                keys = build_keys(
                    self.settings,
                    self._config.get("SECRET_KEY"),
                    self._config.get("SECRET_KEY_FALLBACKS"),
                )
                if keys is None:
                    return None
                self._lifecycle = TokenLifecycle(
                    self._store, keys, self.policy, self._clock
                )
            return self._lifecycle

    @property
    def lifecycle(self) -> TokenLifecycle:
        """The lifecycle.

        :raises RuntimeError: no key is known: neither ``SECRET_KEY`` nor a
            ``SIGNOFF_JWT_*`` key is set.
        """
        lifecycle = self.lifecycle_or_none()
        if lifecycle is None:
            raise RuntimeError(
                "API tokens need a key: set SECRET_KEY (a subkey is derived from "
                "it) or SIGNOFF_JWT_SECRET_KEY."
            )
        return lifecycle


__all__ = [
    "SignoffState",
    "TokenService",
    "build_keys",
    "check_store_at_start",
    "get_state",
]
