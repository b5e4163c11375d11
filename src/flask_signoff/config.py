"""``SIGNOFF_*`` settings: defaults set once, read once, typed.

:func:`Settings.from_config` reads an app's config at ``init_app`` and fails
with a :class:`~flask_signoff.exceptions.ConfigError` that names the key, the
value and what it expects. Values from ``app.config.from_prefixed_env()``
(``FLASK_SIGNOFF_IDLE_TIMEOUT=2``) arrive already JSON-decoded and work as is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, MutableMapping
from typing import Any

from .exceptions import ConfigError

#: Every setting with its default. ``None`` means "derived at init_app".
DEFAULTS: dict[str, Any] = {
    "SIGNOFF_STORE_URL": None,
    "SIGNOFF_STORE_OPTIONS": {},
    "SIGNOFF_STORE_TIMEOUT": 5,
    "SIGNOFF_KEY_PREFIX": "signoff:",
    "SIGNOFF_REDIS_ALLOW_EVICTION": False,
    "SIGNOFF_TABLE_PREFIX": "signoff_",
    "SIGNOFF_IDLE_TIMEOUT": dt.timedelta(minutes=30),
    "SIGNOFF_ABSOLUTE_TIMEOUT": dt.timedelta(hours=12),
    "SIGNOFF_REMEMBER_DURATION": dt.timedelta(days=30),
    "SIGNOFF_FRESH_FOR": dt.timedelta(minutes=10),
    "SIGNOFF_TOUCH_INTERVAL": dt.timedelta(seconds=60),
    "SIGNOFF_MAX_SESSIONS_PER_USER": 100,
    "SIGNOFF_COOKIE_SECURE": True,
    "SIGNOFF_TRUSTED_ORIGINS": [],
    "SIGNOFF_CLEAR_SITE_DATA": '"cache", "storage"',
    "SIGNOFF_ACCESS_TOKEN_TTL": dt.timedelta(minutes=15),
    "SIGNOFF_REFRESH_TOKEN_TTL": dt.timedelta(days=30),
    "SIGNOFF_REFRESH_GRACE": dt.timedelta(seconds=5),
    "SIGNOFF_TOKEN_LEEWAY": 0,
    "SIGNOFF_JWT_SECRET_KEY": None,
    "SIGNOFF_JWT_ALGORITHM": "HS256",
    "SIGNOFF_JWT_ISSUER": None,
    "SIGNOFF_JWT_AUDIENCE": None,
    "SIGNOFF_JWT_PRIVATE_KEY": None,
    "SIGNOFF_JWT_PUBLIC_KEYS": [],
    "SIGNOFF_LOGOUT_REDIRECT": "/",
    "SIGNOFF_CSRF_PROTECT": False,
    "SIGNOFF_THROTTLE_ACCOUNT_LIMIT": 10,
    "SIGNOFF_THROTTLE_IP_LIMIT": 100,
    "SIGNOFF_THROTTLE_WINDOW": dt.timedelta(minutes=5),
}


def set_defaults(config: MutableMapping[str, Any]) -> None:
    """Put every default into ``config`` where the app set nothing."""
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)


def duration(config: Mapping[str, Any], key: str, *, allow_zero: bool = False) -> float:
    """Read seconds: an int, a float, a numeric string or a ``timedelta``."""
    value = config[key]
    seconds: float | None = None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            seconds = None
    if (
        seconds is None
        or seconds != seconds
        or seconds < 0
        or (seconds == 0 and not allow_zero)
    ):
        raise ConfigError(
            key,
            value,
            "a duration: seconds as a number "
            + ("(0 or more)" if allow_zero else "greater than 0")
            + " or a datetime.timedelta",
        )
    return seconds


def boolean(config: Mapping[str, Any], key: str) -> bool:
    value = config[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(key, value, "true or false")


def optional_int(config: Mapping[str, Any], key: str) -> int | None:
    value = config[key]
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    raise ConfigError(key, value, "a whole number greater than 0, or None")


def optional_str(config: Mapping[str, Any], key: str) -> str | None:
    value = config[key]
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(key, value, "a string")


def string_list(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = config[key]
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(v, str) for v in value
    ):
        return tuple(value)
    raise ConfigError(key, value, "a list of strings")


def mapping(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config[key]
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(key, value, "a dict")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The typed view of an app's ``SIGNOFF_*`` settings."""

    store_url: str
    store_options: dict[str, Any]
    idle_timeout: float
    absolute_timeout: float
    remember_duration: float
    fresh_for: float
    touch_interval: float
    max_sessions_per_user: int | None
    cookie_secure: bool
    trusted_origins: tuple[str, ...]
    clear_site_data: str | None
    access_token_ttl: float
    refresh_token_ttl: float
    refresh_grace: float
    token_leeway: float
    jwt_algorithm: str
    jwt_issuer: str
    jwt_audience: str
    logout_redirect: str
    csrf_protect: bool
    throttle_account_limit: int | None
    throttle_ip_limit: int | None
    throttle_window: float
    #: Start on a Redis that may evict keys (or whose policy is hidden).
    redis_allow_eviction: bool

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, default_store_url: str, import_name: str
    ) -> Settings:
        options = mapping(config, "SIGNOFF_STORE_OPTIONS")
        options.setdefault("timeout", duration(config, "SIGNOFF_STORE_TIMEOUT"))
        options.setdefault("key_prefix", optional_str(config, "SIGNOFF_KEY_PREFIX"))
        options.setdefault("table_prefix", optional_str(config, "SIGNOFF_TABLE_PREFIX"))
        allow_eviction = boolean(config, "SIGNOFF_REDIS_ALLOW_EVICTION")
        options.setdefault("allow_eviction", allow_eviction)
        algorithm = optional_str(config, "SIGNOFF_JWT_ALGORITHM") or "HS256"
        if algorithm.lower() == "none":
            raise ConfigError("SIGNOFF_JWT_ALGORITHM", algorithm, "a signing algorithm")
        idle = duration(config, "SIGNOFF_IDLE_TIMEOUT")
        clear = config["SIGNOFF_CLEAR_SITE_DATA"]
        if clear is not None and not isinstance(clear, str):
            raise ConfigError(
                "SIGNOFF_CLEAR_SITE_DATA", clear, "a header value such as '\"cache\"'"
            )
        logout_redirect = optional_str(config, "SIGNOFF_LOGOUT_REDIRECT") or "/"
        return cls(
            store_url=optional_str(config, "SIGNOFF_STORE_URL") or default_store_url,
            store_options=options,
            idle_timeout=idle,
            absolute_timeout=duration(config, "SIGNOFF_ABSOLUTE_TIMEOUT"),
            remember_duration=duration(config, "SIGNOFF_REMEMBER_DURATION"),
            fresh_for=duration(config, "SIGNOFF_FRESH_FOR", allow_zero=True),
            touch_interval=min(duration(config, "SIGNOFF_TOUCH_INTERVAL"), idle / 2),
            max_sessions_per_user=optional_int(config, "SIGNOFF_MAX_SESSIONS_PER_USER"),
            cookie_secure=boolean(config, "SIGNOFF_COOKIE_SECURE"),
            trusted_origins=string_list(config, "SIGNOFF_TRUSTED_ORIGINS"),
            clear_site_data=clear or None,
            access_token_ttl=duration(config, "SIGNOFF_ACCESS_TOKEN_TTL"),
            refresh_token_ttl=duration(config, "SIGNOFF_REFRESH_TOKEN_TTL"),
            refresh_grace=duration(config, "SIGNOFF_REFRESH_GRACE", allow_zero=True),
            token_leeway=duration(config, "SIGNOFF_TOKEN_LEEWAY", allow_zero=True),
            jwt_algorithm=algorithm,
            jwt_issuer=optional_str(config, "SIGNOFF_JWT_ISSUER") or import_name,
            jwt_audience=optional_str(config, "SIGNOFF_JWT_AUDIENCE") or import_name,
            logout_redirect=logout_redirect,
            csrf_protect=boolean(config, "SIGNOFF_CSRF_PROTECT"),
            throttle_account_limit=optional_int(
                config, "SIGNOFF_THROTTLE_ACCOUNT_LIMIT"
            ),
            throttle_ip_limit=optional_int(config, "SIGNOFF_THROTTLE_IP_LIMIT"),
            throttle_window=duration(config, "SIGNOFF_THROTTLE_WINDOW"),
            redis_allow_eviction=allow_eviction,
        )
