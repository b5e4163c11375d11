"""The demo's users: their own table (SQLAlchemy Core), argon2 password hashes.

The table lives in its own SQLite file in the instance folder by default
(``DEMO_DATABASE_URL`` to change it), apart from Flask-Signoff's store, so
the demo works the same whatever the session store is (SQLite, Redis,
PostgreSQL).

Ids are never given twice (``AUTOINCREMENT`` on SQLite; a sequence on
PostgreSQL): an account created after another was deleted must not inherit
anything that still names the old id. A users table made by an older demo
keeps SQLite's default, which reuses the highest id once it is deleted:
delete the file (or let ``revoke_user`` run before every deletion).

A user's security stamp is the argon2 hash read with their row, so a session
or token signed in with the old password ends once the password changes.

A user who signed in through an OpenID Connect provider is linked to it by
the provider's ``(issuer, subject)`` in ``demo_oidc_identities``, never by
name: a provider account called like a local user does not become that user.
Such a user has no usable password (their hash column holds a marker no
password verifies against).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Iterable

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flask_signoff import UserMixin

metadata = sa.MetaData()

users_table = sa.Table(
    "demo_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # Without it SQLite gives a deleted user's id (the highest) to the next.
    sqlite_autoincrement=True,
)

oidc_identities_table = sa.Table(
    "demo_oidc_identities",
    metadata,
    sa.Column("issuer", sa.Text, primary_key=True),
    sa.Column("subject", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("demo_users.id"), nullable=False),
)

#: How the password column of a user without a password starts: no argon2
#: hash does, so no password ever verifies against it.
NO_PASSWORD = "!no-password:"


def _create_private_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` 0600 (password hashes inside).

    SQLite would create it 0644 less the umask; its journal files take the
    database file's permissions. An existing file is left as it is.
    """
    parsed = sa.make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return
    if path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exactly, whatever bits the umask took
    finally:
        os.close(fd)


@dataclasses.dataclass(eq=False)
class User(UserMixin):
    id: int
    username: str
    #: The hash as read with the row this object was loaded from; never
    #: read again, so a sign-in binds to the password it checked.
    password_hash: str = dataclasses.field(default="", repr=False)

    def get_security_stamp(self) -> str:
        # A new password (or a rehash) changes it: every session and token
        # signed in before then ends.
        return self.password_hash


class DuplicateUser(Exception):
    """Raised when a username is already taken."""


class UserStore:
    """Create, find and check users.

    :param url: a SQLAlchemy URL; the table is created if missing.
    :param argon2_parameters: ``PasswordHasher`` arguments (``time_cost``,
        ``memory_cost`` ...); argon2-cffi's defaults (RFC 9106) when empty.
    """

    def __init__(
        self, url: str, argon2_parameters: dict[str, int] | None = None
    ) -> None:
        _create_private_sqlite_file(url)
        self.engine = sa.create_engine(url)
        self.hasher = PasswordHasher(**(argon2_parameters or {}))
        # Verified against when the username is unknown, so that a wrong name
        # takes as long as a wrong password and does not reveal who exists.
        self._dummy_hash = self.hasher.hash("not a password")
        try:
            metadata.create_all(self.engine)
        except sa.exc.OperationalError:
            # Another worker created it at the same moment: use theirs.
            metadata.create_all(self.engine)

    def get(self, user_id: str) -> User | None:
        if not user_id.isdigit():
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    users_table.c.id,
                    users_table.c.username,
                    users_table.c.password_hash,
                ).where(users_table.c.id == int(user_id))
            ).first()
        return User(row.id, row.username, row.password_hash) if row else None

    def create(self, username: str, password: str) -> User:
        """Add a user; :class:`DuplicateUser` if the name is taken."""
        password_hash = self.hasher.hash(password)
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    users_table.insert().values(
                        username=username,
                        password_hash=password_hash,
                        created_at=time.time(),
                    )
                )
        except sa.exc.IntegrityError:
            raise DuplicateUser(username) from None
        key = result.inserted_primary_key
        assert key is not None
        return User(int(key[0]), username, password_hash)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right, else ``None``.

        The user carries the hash that was checked, read in the same query:
        a password changed meanwhile makes its sessions and tokens dead.
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users_table).where(users_table.c.username == username)
            ).first()
        if row is None or row.password_hash.startswith(NO_PASSWORD):
            # As long as a wrong password: nobody learns who has none.
            self._verify(self._dummy_hash, password)
            return None
        if not self._verify(row.password_hash, password):
            return None
        password_hash = row.password_hash
        if self.hasher.check_needs_rehash(password_hash):
            # A new hash is a new stamp: the user's other sessions end.
            password_hash = self.set_password(row.id, password)
        return User(row.id, row.username, password_hash)

    def oidc_user(
        self, issuer: str, subject: str, names: Iterable[str | None]
    ) -> User | None:
        """The user linked to ``(issuer, subject)``, created on first sign-in.

        A new user takes the first of ``names`` that is free (and of 1 to 64
        characters) and gets no usable password. ``None`` if every name is
        taken. Two first sign-ins at once end with one user: the loser of the
        race finds the winner's link.
        """
        user = self._linked_user(issuer, subject)
        if user is not None:
            return user
        # Unique per user, so it is a security stamp like a hash.
        no_password = NO_PASSWORD + secrets.token_urlsafe(16)
        for name in names:
            if not name or len(name) > 64:
                continue
            try:
                with self.engine.begin() as conn:
                    key = conn.execute(
                        users_table.insert().values(
                            username=name,
                            password_hash=no_password,
                            created_at=time.time(),
                        )
                    ).inserted_primary_key
                    assert key is not None
                    conn.execute(
                        oidc_identities_table.insert().values(
                            issuer=issuer, subject=subject, user_id=int(key[0])
                        )
                    )
            except sa.exc.IntegrityError:
                # The name is taken, or a concurrent first sign-in linked
                # this identity: in that case theirs is the user.
                user = self._linked_user(issuer, subject)
                if user is not None:
                    return user
                continue
            return User(int(key[0]), name, no_password)
        return None

    def _linked_user(self, issuer: str, subject: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    users_table.c.id,
                    users_table.c.username,
                    users_table.c.password_hash,
                )
                .join(
                    oidc_identities_table,
                    oidc_identities_table.c.user_id == users_table.c.id,
                )
                .where(
                    oidc_identities_table.c.issuer == issuer,
                    oidc_identities_table.c.subject == subject,
                )
            ).first()
        return User(row.id, row.username, row.password_hash) if row else None

    def check_password(self, user: User, password: str) -> bool:
        return self.authenticate(user.username, password) is not None

    def set_password(self, user_id: int, password: str) -> str:
        """Store a new hash of ``password``; return it."""
        password_hash = self.hasher.hash(password)
        with self.engine.begin() as conn:
            conn.execute(
                users_table.update()
                .where(users_table.c.id == user_id)
                .values(password_hash=password_hash)
            )
        return password_hash

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
