"""User mixins, as in Flask-Login, so user classes need no change."""

from __future__ import annotations

from typing import Any


class UserMixin:
    """Default implementations of what Flask-Signoff expects of a user object.

    ``get_id()`` returns ``str(self.id)``; override it to return something
    else (for example an alternative id that changes with the password).
    """

    __hash__ = object.__hash__

    @property
    def is_active(self) -> bool:
        return True

    @property
    def is_authenticated(self) -> bool:
        return self.is_active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        try:
            return str(self.id)  # type: ignore[attr-defined]
        except AttributeError:
            raise NotImplementedError("No `id` attribute - override `get_id`") from None

    def get_security_stamp(self) -> str | None:
        """A string that changes whenever the user's credentials change.

        Every session and refresh family is bound to (an HMAC of) the stamp
        of the user it was signed in for, and ends once the user, as the
        ``user_loader`` returns it, has another: after a password change, a
        new second factor, a reset. The password hash read with the user's
        row is a good stamp; fold in whatever else should sign the user out
        everywhere (``f"{password_hash}:{otp_secret}:{active}"``). Read it
        from the row the user object was loaded from, never again from the
        database: a sign-in that checked the old password must bind to the
        old stamp.

        ``None`` (the default) binds nothing.

        .. versionadded:: 0.1
        """
        return None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UserMixin):
            return self.get_id() == other.get_id()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        if equal is NotImplemented:
            return NotImplemented
        return not equal


class AnonymousUserMixin:
    """The user object of a request that nobody is signed in to."""

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def is_active(self) -> bool:
        return False

    @property
    def is_anonymous(self) -> bool:
        return True

    def get_id(self) -> Any:
        return None
