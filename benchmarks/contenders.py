"""The apps under test: one small Flask app per contender, same three routes.

``GET /me`` answers the signed-in user's name (401 when nobody is signed in),
``POST /login`` signs user 1 in (a cookie, or a token in the JSON body) and
``POST /logout`` signs out. Every app loads its user from the same in-memory
table, so what differs is only the authentication machinery.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import typing as t
from collections.abc import Callable

from flask import Flask, abort, jsonify, session

SECRET = "benchmark-secret-key-0123456789abcdef"


class User:
    """A user as the peers expect it (Flask-Login's mixin methods by hand)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user_id: str, name: str) -> None:
        self.id = user_id
        self.name = name

    def get_id(self) -> str:
        return self.id


USERS = {str(i): User(str(i), "alice" if i == 1 else f"user{i}") for i in range(1, 101)}


@dataclasses.dataclass
class Env:
    """Where the servers of this run are."""

    workdir: str
    redis_url: str | None = None
    postgres_url: str | None = None

    def redis_db(self, db: int) -> str:
        assert self.redis_url is not None
        return self.redis_url.rsplit("/", 1)[0] + f"/{db}"


@dataclasses.dataclass
class Contender:
    name: str
    label: str
    build: Callable[[Env], Flask]
    #: Python modules that must be importable.
    needs_modules: tuple[str, ...] = ()
    #: Servers it needs: "redis", "postgres".
    needs_servers: tuple[str, ...] = ()
    #: "cookie", "bearer" or "none" (bare Flask).
    credential: str = "cookie"
    #: After logout, is a copy of the credential refused (server-side revocation)?
    revokes: bool | None = None
    #: What "one store read" means for it (a primitive's name), if anything.
    store_read: str | None = None
    #: The contender that is bare Flask plus that one read, if there is one.
    floor: str | None = None
    #: Whether it takes part in the login -> GET -> logout -> GET cycle (a
    #: token that cannot be revoked still works after the logout).
    in_cycle: bool = True

    def missing(self, env: Env) -> str | None:
        """Why it cannot run here, or ``None``."""
        for module in self.needs_modules:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed"
        if "redis" in self.needs_servers and env.redis_url is None:
            return "no Redis server"
        if "postgres" in self.needs_servers and env.postgres_url is None:
            return "no PostgreSQL server"
        return None


def _base_app() -> Flask:
    app = Flask("bench")
    app.config.update(SECRET_KEY=SECRET, TESTING=False)
    return app


# -- bare Flask and Flask's cookie session ------------------------------------


def bare(env: Env) -> Flask:
    app = _base_app()

    @app.get("/me")
    def me() -> str:
        return USERS["1"].name

    return app


def flask_session(env: Env) -> Flask:
    app = _base_app()

    @app.get("/me")
    def me() -> str:
        uid = session.get("uid")
        if uid is None:
            abort(401)
        return USERS[uid].name

    @app.post("/login")
    def login() -> str:
        session["uid"] = "1"
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        session.pop("uid", None)
        return "ok"

    return app


# -- Flask-Login, alone and with Flask-Session ---------------------------------


def _flask_login(app: Flask) -> Flask:
    import flask_login

    manager = flask_login.LoginManager(app)
    manager.user_loader(USERS.get)

    @app.get("/me")
    @flask_login.login_required
    def me() -> str:
        return t.cast(str, flask_login.current_user.name)

    @app.post("/login")
    def login() -> str:
        flask_login.login_user(USERS["1"])
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "ok"

    return app


def flask_login_cookie(env: Env) -> Flask:
    return _flask_login(_base_app())


def flask_login_session_redis(env: Env) -> Flask:
    import redis
    from flask_session import Session

    app = _base_app()
    app.config.update(
        SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(env.redis_db(1))
    )
    Session(app)
    return _flask_login(app)


def flask_login_session_cachelib(env: Env) -> Flask:
    from cachelib.file import FileSystemCache
    from flask_session import Session

    app = _base_app()
    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(
            os.path.join(env.workdir, "flask-session"), threshold=100_000
        ),
    )
    Session(app)
    return _flask_login(app)


# -- bare Flask + one store read ------------------------------------------------

#: A record of the size and shape of a Flask-Signoff session, for the reads
#: of the "bare Flask + one read" baselines.
_RECORD = {
    "tag": "0123abcd",
    "public_id": "x" * 16,
    "user_id": "1",
    "data": "",
    "created_at": "1700000000.123456",
    "last_seen_at": "1700000000.123456",
    "expires_at": "1700043200.123456",
    "drop_at": "1700001800.123456",
    "remember": "0",
    "fresh_until": "1700000600.123456",
    "ip": "127.0.0.1",
    "user_agent": "bench/1.0",
    "auth_stamp": "s" * 43,
}
_RECORD_KEY = "0123abcd." + "f" * 64


def bare_redis(env: Env) -> Flask:
    """Bare Flask whose view makes one ``HGETALL`` of a session-sized hash:
    what a Redis-backed credential check cannot go below."""
    import redis

    client = redis.Redis.from_url(env.redis_db(3))
    name = "bench:session:" + _RECORD_KEY
    client.hset(name, mapping=_RECORD)
    app = _base_app()

    @app.get("/me")
    def me() -> str:
        if not client.hgetall(name):
            abort(401)
        return USERS["1"].name

    return app


def bare_postgres(env: Env) -> Flask:
    """Bare Flask whose view makes one prepared primary-key ``SELECT`` of a
    session-sized row through psycopg, in autocommit: the PostgreSQL floor."""
    import psycopg

    assert env.postgres_url is not None
    url = env.postgres_url
    columns = ", ".join(
        f"{c} double precision" if c.endswith("_at") or c == "fresh_until"
        else f"{c} boolean" if c == "remember" else f"{c} text"
        for c in _RECORD
    )  # fmt: skip
    values = [_RECORD_KEY]
    values += [v == "1" if k == "remember" else v for k, v in _RECORD.items()]
    marks = ", ".join(["%s"] * len(values))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_sessions"
            f" (key text PRIMARY KEY, {columns})"
        )
        conn.execute(
            f"INSERT INTO bench_sessions VALUES ({marks}) ON CONFLICT DO NOTHING",
            values,
        )
    sql = "SELECT * FROM bench_sessions WHERE key = %s"
    # One connection per process (gunicorn forks after the app is built).
    conns: dict[int, t.Any] = {}
    app = _base_app()

    @app.get("/me")
    def me() -> str:
        conn = conns.get(os.getpid())
        if conn is None:
            conn = conns[os.getpid()] = psycopg.connect(url, autocommit=True)
        if conn.execute(sql, (_RECORD_KEY,), prepare=True).fetchone() is None:
            abort(401)
        return USERS["1"].name

    return app


# -- Flask-JWT-Extended, without and with a Redis blocklist -----------------------


def _jwt_extended(app: Flask) -> t.Any:
    import flask_jwt_extended as fj

    app.config.update(JWT_SECRET_KEY=SECRET, JWT_TOKEN_LOCATION=["headers"])
    jwt = fj.JWTManager(app)

    @jwt.user_lookup_loader
    def load(header: dict[str, t.Any], payload: dict[str, t.Any]) -> t.Any:
        return USERS.get(payload["sub"])

    @app.get("/me")
    @fj.jwt_required()
    def me() -> str:
        return t.cast(str, fj.current_user.name)

    @app.post("/login")
    def login() -> t.Any:
        return jsonify(access_token=fj.create_access_token(identity="1"))

    return jwt


def jwt_extended(env: Env) -> Flask:
    """Flask-JWT-Extended as most apps run it: no blocklist, so a token
    works until it expires, whatever happens to the user."""
    import flask_jwt_extended as fj

    app = _base_app()
    _jwt_extended(app)

    @app.post("/logout")
    @fj.jwt_required()
    def logout() -> str:
        return "ok"  # nothing to revoke a token with

    return app


def jwt_extended_redis(env: Env) -> Flask:
    import flask_jwt_extended as fj
    import redis

    app = _base_app()
    blocklist = redis.Redis.from_url(env.redis_db(2))
    jwt = _jwt_extended(app)

    @jwt.token_in_blocklist_loader
    def revoked(header: dict[str, t.Any], payload: dict[str, t.Any]) -> bool:
        return bool(blocklist.exists("jwt:revoked:" + payload["jti"]))

    @app.post("/logout")
    @fj.jwt_required()
    def logout() -> str:
        claims = fj.get_jwt()
        blocklist.set("jwt:revoked:" + claims["jti"], "1", exat=int(claims["exp"]))
        return "ok"

    return app


# -- Flask-Signoff ---------------------------------------------------------------


def _signoff(store_url: str, *, bearer: bool = False, **config: t.Any) -> Flask:
    import flask_signoff as fs

    app = _base_app()
    app.config.update(
        SIGNOFF_STORE_URL=store_url, SIGNOFF_COOKIE_SECURE=False, **config
    )
    signoff = fs.Signoff(app)
    signoff.user_loader(USERS.get)

    @app.get("/me")
    @fs.login_required
    def me() -> str:
        return t.cast(str, fs.current_user.name)

    @app.post("/login")
    def login() -> t.Any:
        if bearer:
            return jsonify(signoff.issue_tokens(USERS["1"]).as_dict())
        fs.login_user(USERS["1"])
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        fs.logout_user()
        return "ok"

    return app


def sqlite_url(env: Env) -> str:
    return "sqlite:///" + os.path.join(env.workdir, "signoff.sqlite3")


def signoff_sqlite(env: Env) -> Flask:
    return _signoff(sqlite_url(env))


def signoff_redis(env: Env) -> Flask:
    assert env.redis_url is not None
    return _signoff(env.redis_url)


def signoff_postgres(env: Env) -> Flask:
    assert env.postgres_url is not None
    return _signoff(env.postgres_url)


def signoff_bearer_sqlite(env: Env) -> Flask:
    return _signoff(sqlite_url(env), bearer=True)


def signoff_bearer_redis(env: Env) -> Flask:
    assert env.redis_url is not None
    return _signoff(env.redis_url, bearer=True)


_LOGIN = ("flask_login",)
_FS = ("flask_login", "flask_session", "cachelib")
_SIGNOFF = ("flask_signoff", "sqlalchemy")

CONTENDERS = [
    Contender("bare", "bare Flask (no auth)", bare, credential="none"),
    Contender(
        "bare_redis",
        "bare Flask + one HGETALL",
        bare_redis,
        ("redis",),
        ("redis",),
        credential="none",
    ),
    Contender(
        "bare_postgres",
        "bare Flask + one prepared PK SELECT",
        bare_postgres,
        ("psycopg",),
        ("postgres",),
        credential="none",
    ),
    Contender("flask_session", "Flask cookie session", flask_session, revokes=False),
    Contender(
        "flask_login",
        "Flask-Login (cookie session)",
        flask_login_cookie,
        _LOGIN,
        revokes=False,
    ),
    Contender(
        "flask_login_fs_redis",
        "Flask-Login + Flask-Session (Redis)",
        flask_login_session_redis,
        (*_FS, "redis"),
        ("redis",),
        revokes=True,
        store_read="redis_get",
    ),
    Contender(
        "flask_login_fs_cachelib",
        "Flask-Login + Flask-Session (cachelib files)",
        flask_login_session_cachelib,
        _FS,
        revokes=True,
    ),
    Contender(
        "jwt_extended",
        "Flask-JWT-Extended (no blocklist)",
        jwt_extended,
        ("flask_jwt_extended",),
        credential="bearer",
        revokes=False,
        in_cycle=False,
    ),
    Contender(
        "jwt_extended_redis",
        "Flask-JWT-Extended + Redis blocklist",
        jwt_extended_redis,
        ("flask_jwt_extended", "redis"),
        ("redis",),
        credential="bearer",
        revokes=True,
        store_read="redis_get",
    ),
    Contender(
        "signoff_sqlite",
        "Flask-Signoff, SQLite, cookie",
        signoff_sqlite,
        _SIGNOFF,
        revokes=True,
        store_read="sqlite3_pk",
    ),
    Contender(
        "signoff_redis",
        "Flask-Signoff, Redis, cookie",
        signoff_redis,
        (*_SIGNOFF, "redis"),
        ("redis",),
        revokes=True,
        store_read="redis_hgetall",
        floor="bare_redis",
    ),
    Contender(
        "signoff_postgres",
        "Flask-Signoff, PostgreSQL, cookie",
        signoff_postgres,
        (*_SIGNOFF, "psycopg"),
        ("postgres",),
        revokes=True,
        store_read="psycopg_pk",
        floor="bare_postgres",
    ),
    Contender(
        "signoff_bearer_sqlite",
        "Flask-Signoff, SQLite, Bearer",
        signoff_bearer_sqlite,
        _SIGNOFF,
        credential="bearer",
        revokes=True,
        store_read="sqlite3_pk",
    ),
    Contender(
        "signoff_bearer_redis",
        "Flask-Signoff, Redis, Bearer",
        signoff_bearer_redis,
        (*_SIGNOFF, "redis"),
        ("redis",),
        credential="bearer",
        revokes=True,
        store_read="redis_mget",
    ),
]

BY_NAME = {c.name: c for c in CONTENDERS}
