"""``SIGNOFF_*`` settings: defaults set once, read once, typed.

:func:`Settings.from_config` reads an app's config at ``init_app`` and fails
with a :class:`~flask_signoff.exceptions.ConfigError` that names the key, the
value and what it expects. Values from ``app.config.from_prefixed_env()``
(``FLASK_SIGNOFF_IDLE_TIMEOUT=2``) arrive already JSON-decoded and work as is;
a value that is not JSON arrives as a string, so every list setting also
takes a string (:func:`string_list`, :func:`secret_list`, :func:`key_list`).

This is also Flask-Login's ``flask_login.config`` module: its constants
(``LOGIN_MESSAGE``, ``COOKIE_NAME`` ...) are importable from here, with
Flask-Login's values; they are defined in :mod:`flask_signoff.compat`.

Nothing reads a ``SIGNOFF_*`` key after ``init_app``: the rest of the
extension reads :class:`Settings`, and the core's policies
(:class:`~flask_signoff.core.sessions.SessionPolicy` ...) are built here,
once, so each rule (the touch interval's cap, say) lives in the core alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

# Flask-Login's constants, so that ``from flask_login.config import ...``
# becomes ``from flask_signoff.config import ...``.
from .compat import AUTH_HEADER_NAME as AUTH_HEADER_NAME
from .compat import COOKIE_DURATION as COOKIE_DURATION
from .compat import COOKIE_HTTPONLY as COOKIE_HTTPONLY
from .compat import COOKIE_NAME as COOKIE_NAME
from .compat import COOKIE_SAMESITE as COOKIE_SAMESITE
from .compat import COOKIE_SECURE as COOKIE_SECURE
from .compat import EXEMPT_METHODS as EXEMPT_METHODS
from .compat import ID_ATTRIBUTE as ID_ATTRIBUTE
from .compat import LOGIN_MESSAGE as LOGIN_MESSAGE
from .compat import LOGIN_MESSAGE_CATEGORY as LOGIN_MESSAGE_CATEGORY
from .compat import REFRESH_MESSAGE as REFRESH_MESSAGE
from .compat import REFRESH_MESSAGE_CATEGORY as REFRESH_MESSAGE_CATEGORY
from .compat import SESSION_KEYS as SESSION_KEYS
from .compat import USE_SESSION_FOR_NEXT as USE_SESSION_FOR_NEXT
from .core.sessions import SessionPolicy
from .core.throttle import ThrottlePolicy
from .core.tokens import TokenPolicy
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
    "SIGNOFF_JWT_SECRET_KEY_FALLBACKS": [],
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
    "SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL": None,
}


#: Flask-Login settings that mean nothing here, with why: ``init_app``
#: names those an app sets in one warning.
FLASK_LOGIN_IGNORED: dict[str, str] = {
    **dict.fromkeys(
        (
            "REMEMBER_COOKIE_NAME",
            "REMEMBER_COOKIE_DOMAIN",
            "REMEMBER_COOKIE_PATH",
            "REMEMBER_COOKIE_SECURE",
            "REMEMBER_COOKIE_HTTPONLY",
            "REMEMBER_COOKIE_SAMESITE",
            "REMEMBER_COOKIE_REFRESH_EACH_REQUEST",
        ),
        "there is no remember cookie: remember=True makes the session cookie "
        "persistent, and it follows the SESSION_COOKIE_* settings and "
        "SIGNOFF_COOKIE_SECURE",
    ),
    "SESSION_PROTECTION": "a copied session id is ended by revocation on the "
    "server, not by hashing the client's address into the session",
    "AUTH_HEADER_NAME": "the Authorization header alone carries Bearer tokens, "
    "and the request_loader reads any other header itself",
}

#: The Flask-Login settings that name the old cookies: they mean something
#: while ``SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL`` is set (see
#: :mod:`flask_signoff.adoption`), so they are not warned about then.
FLASK_LOGIN_ADOPTION_KEYS = (
    "REMEMBER_COOKIE_NAME",
    "REMEMBER_COOKIE_DOMAIN",
    "REMEMBER_COOKIE_PATH",
    "REMEMBER_COOKIE_SECURE",
    "REMEMBER_COOKIE_HTTPONLY",
    "REMEMBER_COOKIE_SAMESITE",
    "SESSION_PROTECTION",
)


def set_defaults(config: MutableMapping[str, Any]) -> None:
    """Put every default into ``config`` where the app set nothing.

    Flask-Login's ``REMEMBER_COOKIE_DURATION`` stands for
    ``SIGNOFF_REMEMBER_DURATION`` when the app set only the former.
    """
    if (
        "SIGNOFF_REMEMBER_DURATION" not in config
        and "REMEMBER_COOKIE_DURATION" in config
    ):
        # Read now, so that a bad value is reported under the name the app set.
        duration(config, "REMEMBER_COOKIE_DURATION")
        config["SIGNOFF_REMEMBER_DURATION"] = config["REMEMBER_COOKIE_DURATION"]
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


def secret(config: Mapping[str, Any], key: str) -> str | bytes | None:
    """Read a secret key: a string or bytes; never shown in an error."""
    value = config[key]
    if value is None or isinstance(value, (str, bytes)):
        return value or None
    raise ConfigError(key, f"<{type(value).__name__}>", "a string or bytes")


def secret_list(config: Mapping[str, Any], key: str) -> tuple[str | bytes, ...]:
    """Read a list of secret keys, oldest first.

    A string is split as :func:`string_list` splits it (on commas and
    whitespace), never into characters: that is what
    ``FLASK_SIGNOFF_JWT_SECRET_KEY_FALLBACKS=<old>,<older>`` gives.
    """
    value = config[key]
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, bytes)) and v for v in value
    ):
        return tuple(value)
    raise ConfigError(key, f"<{type(value).__name__}>", "a list of keys, oldest first")


#: One PEM block: ``-----BEGIN <label>-----`` ... ``-----END <label>-----``.
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


def key_list(config: Mapping[str, Any], key: str) -> tuple[Any, ...]:
    """Read a list of public keys, oldest first.

    A string holds one or more PEM blocks, one key each (a PEM has spaces
    and newlines, so it is split at its ``-----END ...-----`` lines, not on
    whitespace); a string without one is a single key. Items of a list are
    PEM strings or bytes, or ``cryptography`` key objects.
    """
    value = config[key]
    if isinstance(value, (str, bytes)):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        blocks = [m.group(0) for m in _PEM.finditer(text)]
        value = blocks or ([text.strip()] if text.strip() else [])
    if isinstance(value, (list, tuple)) and all(v for v in value):
        return tuple(value)
    raise ConfigError(key, f"<{type(value).__name__}>", "a list of keys, oldest first")


def optional_instant(config: Mapping[str, Any], key: str) -> float | None:
    """Read a point in time as Unix seconds: a timezone-aware ``datetime``,
    or an ISO 8601 date and time with its UTC offset; ``None`` (or an empty
    string, what an unset environment variable gives) for none.

    A time without an offset is refused rather than guessed: the server's
    local time and UTC may be hours apart.
    """
    value = config[key]
    if value is None or value == "":
        return None
    instant: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        instant = value
    elif isinstance(value, str):
        text = value.strip()
        # Python before 3.11 does not read the "Z" of UTC.
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            instant = dt.datetime.fromisoformat(text)
        except ValueError:
            instant = None
    if instant is None or instant.utcoffset() is None:
        raise ConfigError(
            key,
            value,
            "a timezone-aware datetime.datetime, or an ISO 8601 date and time "
            "with its UTC offset such as '2026-06-30T00:00:00+00:00', or None",
        )
    return instant.timestamp()


def mapping(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config[key]
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(key, value, "a dict")


#: The claims whose settings default to the app's import name.
_NAMED_CLAIMS = {"SIGNOFF_JWT_ISSUER": "issuer", "SIGNOFF_JWT_AUDIENCE": "audience"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The typed view of an app's ``SIGNOFF_*`` settings."""

    store_url: str
    store_options: dict[str, Any]
    idle_timeout: float
    absolute_timeout: float
    remember_duration: float
    fresh_for: float
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
    # The keys are kept out of repr(): settings may end up in a log.
    #: ``SIGNOFF_JWT_SECRET_KEY``: the HMAC key of access tokens, if explicit.
    jwt_secret_key: str | bytes | None = dataclasses.field(repr=False)
    #: ``SIGNOFF_JWT_SECRET_KEY_FALLBACKS``: older HMAC keys, oldest first.
    jwt_secret_key_fallbacks: tuple[str | bytes, ...] = dataclasses.field(repr=False)
    #: ``SIGNOFF_JWT_PRIVATE_KEY``: the signing key of asymmetric algorithms.
    jwt_private_key: Any = dataclasses.field(repr=False)
    #: ``SIGNOFF_JWT_PUBLIC_KEYS``: older public keys, oldest first.
    jwt_public_keys: tuple[Any, ...]
    #: The JWT settings left to default to the import name, with their
    #: claim (``{"SIGNOFF_JWT_ISSUER": "issuer"}``): warned about.
    jwt_names_defaulted: dict[str, str]
    #: The session rules of the core, built from the settings above.
    session_policy: SessionPolicy
    #: The throttling limits of the core.
    throttle_policy: ThrottlePolicy
    #: Lifetimes, issuer and audience of API tokens.
    token_policy: TokenPolicy
    #: ``SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL`` as Unix seconds: until then, a
    #: Flask-Login sign-in is adopted once (:mod:`flask_signoff.adoption`);
    #: ``None``, the default, adopts nothing.
    adopt_flask_login_until: float | None = None

    @staticmethod
    def flask_login_ignored(config: Mapping[str, Any]) -> str | None:
        """One warning naming the Flask-Login settings in ``config`` that
        Flask-Signoff ignores, and why; ``None`` if there are none."""
        found = [key for key in FLASK_LOGIN_IGNORED if key in config]
        if config.get("SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL"):
            found = [key for key in found if key not in FLASK_LOGIN_ADOPTION_KEYS]
        if not found:
            return None
        reasons: dict[str, list[str]] = {}
        for key in found:
            reasons.setdefault(FLASK_LOGIN_IGNORED[key], []).append(key)
        return (
            "These Flask-Login settings have no effect with Flask-Signoff: "
            + ("; ".join(f"{', '.join(keys)} ({why})" for why, keys in reasons.items()))
            + ". See docs/migration.md."
        )

    def warnings(self, import_name: str) -> list[str]:
        """What is unsafe outside development in these settings: logged by
        ``init_app`` unless the app is in debug or testing mode."""
        found = []
        if not self.cookie_secure:
            found.append(
                "SIGNOFF_COOKIE_SECURE is off: the session cookie will be sent "
                "over plain http. Only do this for local development."
            )
        unnamed = self.jwt_names_defaulted
        if unnamed:
            keys = " and ".join(unnamed)
            found.append(
                f"{keys} {'are' if len(unnamed) > 1 else 'is'} not set: access "
                f"tokens carry the app's import name {import_name!r} as their "
                f"{' and '.join(unnamed.values())}, so the tokens of two apps "
                "with that import name and a shared signing key would be "
                f"accepted by each other. Set {keys} to a name of this "
                "deployment (its URL, say)."
            )
        return found

    @property
    def touch_interval(self) -> float:
        """``SIGNOFF_TOUCH_INTERVAL`` as it applies: capped by the core's rule
        (:attr:`~flask_signoff.core.sessions.SessionPolicy.effective_touch_interval`)."""
        return self.session_policy.effective_touch_interval

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
        session_policy = SessionPolicy(
            idle_timeout=idle,
            absolute_timeout=duration(config, "SIGNOFF_ABSOLUTE_TIMEOUT"),
            remember_duration=duration(config, "SIGNOFF_REMEMBER_DURATION"),
            fresh_for=duration(config, "SIGNOFF_FRESH_FOR", allow_zero=True),
            touch_interval=duration(config, "SIGNOFF_TOUCH_INTERVAL"),
            max_sessions_per_user=optional_int(config, "SIGNOFF_MAX_SESSIONS_PER_USER"),
        )
        throttle_policy = ThrottlePolicy(
            account_limit=optional_int(config, "SIGNOFF_THROTTLE_ACCOUNT_LIMIT"),
            ip_limit=optional_int(config, "SIGNOFF_THROTTLE_IP_LIMIT"),
            window=duration(config, "SIGNOFF_THROTTLE_WINDOW"),
        )
        defaulted = {k: c for k, c in _NAMED_CLAIMS.items() if not config.get(k)}
        issuer = optional_str(config, "SIGNOFF_JWT_ISSUER") or import_name
        audience = optional_str(config, "SIGNOFF_JWT_AUDIENCE") or import_name
        access_ttl = duration(config, "SIGNOFF_ACCESS_TOKEN_TTL")
        token_policy = TokenPolicy(
            issuer=issuer,
            audience=audience,
            access_ttl=int(access_ttl),
            refresh_ttl=duration(config, "SIGNOFF_REFRESH_TOKEN_TTL"),
            refresh_grace=duration(config, "SIGNOFF_REFRESH_GRACE", allow_zero=True),
            leeway=duration(config, "SIGNOFF_TOKEN_LEEWAY", allow_zero=True),
        )
        return cls(
            store_url=optional_str(config, "SIGNOFF_STORE_URL") or default_store_url,
            store_options=options,
            idle_timeout=session_policy.idle_timeout,
            absolute_timeout=session_policy.absolute_timeout,
            remember_duration=session_policy.remember_duration,
            fresh_for=session_policy.fresh_for,
            max_sessions_per_user=session_policy.max_sessions_per_user,
            cookie_secure=boolean(config, "SIGNOFF_COOKIE_SECURE"),
            trusted_origins=string_list(config, "SIGNOFF_TRUSTED_ORIGINS"),
            clear_site_data=clear or None,
            access_token_ttl=access_ttl,
            refresh_token_ttl=token_policy.refresh_ttl,
            refresh_grace=token_policy.refresh_grace,
            token_leeway=token_policy.leeway,
            jwt_algorithm=algorithm,
            jwt_issuer=issuer,
            jwt_audience=audience,
            logout_redirect=logout_redirect,
            csrf_protect=boolean(config, "SIGNOFF_CSRF_PROTECT"),
            throttle_account_limit=throttle_policy.account_limit,
            throttle_ip_limit=throttle_policy.ip_limit,
            throttle_window=throttle_policy.window,
            redis_allow_eviction=allow_eviction,
            jwt_secret_key=secret(config, "SIGNOFF_JWT_SECRET_KEY"),
            jwt_secret_key_fallbacks=secret_list(
                config, "SIGNOFF_JWT_SECRET_KEY_FALLBACKS"
            ),
            jwt_private_key=config["SIGNOFF_JWT_PRIVATE_KEY"] or None,
            jwt_public_keys=key_list(config, "SIGNOFF_JWT_PUBLIC_KEYS"),
            jwt_names_defaulted=defaulted,
            session_policy=session_policy,
            throttle_policy=throttle_policy,
            token_policy=token_policy,
            adopt_flask_login_until=optional_instant(
                config, "SIGNOFF_ADOPT_FLASK_LOGIN_UNTIL"
            ),
        )
