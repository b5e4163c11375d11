"""The user table of the migration examples, the same before and after.

A dictionary stands in for the app's database: what changes in a move
between extensions is how a signed-in user is remembered, not where users
live.
"""

from __future__ import annotations

import dataclasses

from werkzeug.security import check_password_hash, generate_password_hash

#: The password of every example account.
PASSWORD = "correct horse battery staple"


@dataclasses.dataclass(frozen=True)
class Account:
    """A row of the user table."""

    username: str
    password_hash: str


ACCOUNTS = {
    name: Account(name, generate_password_hash(PASSWORD)) for name in ("alice", "bob")
}


def check_password(username: object, password: object) -> Account | None:
    """The account whose password this is, or ``None``.

    Takes whatever a form or a JSON body held: anything but two strings is a
    failed sign-in, not an error.
    """
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    account = ACCOUNTS.get(username)
    if account is None or not check_password_hash(account.password_hash, password):
        return None
    return account
