"""How a database error becomes a Flask-Signoff error: in one place.

.. code-block:: text

    raised below the store                          raised to the caller
    ---------------------------------------------   --------------------------
    IntegrityError, ProgrammingError (SQLAlchemy's  StoreError: the database
      or the driver's), connection still alive        refused a statement
    any other DBAPIError, a pool TimeoutError,      StoreUnavailable: fail
      any other error of the driver                   closed (503)
    CallOverrun (the watchdog ended the call)       StoreUnavailable
    CommitFailed (the connection died in COMMIT)    as its cause

Every :class:`~flask_signoff.exceptions.StoreUnavailable` names the backend
(``sqlite``, ``postgresql``) and the store operation that failed. Messages
name error classes only, never a statement or its parameters (which hold
key hashes and user ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import StoreError, StoreUnavailable
from .lazy import LazyModule
from .watchdog import CallOverrun

if TYPE_CHECKING:
    from sqlalchemy import exc
else:
    exc = LazyModule("sqlalchemy.exc")


class CommitFailed(Exception):
    """Raised when the connection failed while committing: the write may
    have happened, so it must not run again. Its ``__cause__`` is the
    driver's error."""


class ErrorTranslator:
    """Turns the errors of one store's database into :class:`StoreError`.

    :param backend: the store's dialect, named in every error.
    :param dbapi: the driver's DB-API module (``sqlite3``, ``psycopg``), whose
        errors the fast read path raises unwrapped.
    :param overrun_after: seconds after which the watchdog ends a call, for
        the message; 0 without a watchdog.
    """

    def __init__(self, backend: str, dbapi: Any, overrun_after: float) -> None:
        self.backend = backend
        self.overrun_after = overrun_after
        self._refused: tuple[type[Exception], ...] = (
            exc.IntegrityError,
            exc.ProgrammingError,
            dbapi.IntegrityError,
            dbapi.ProgrammingError,
        )
        #: Every error :meth:`translate` knows, for ``except`` clauses.
        self.handled: tuple[type[Exception], ...] = (
            exc.DBAPIError,
            exc.TimeoutError,
            CallOverrun,
            CommitFailed,
            dbapi.Error,
        )

    def translate(self, error: Exception, operation: str) -> StoreError:
        """The error to raise for ``error``, raised by ``operation``.

        Raise it ``from`` :func:`cause` of ``error``.
        """
        if isinstance(error, CallOverrun):
            return StoreUnavailable(
                f"The session store did not answer within {self.overrun_after:g} s",
                backend=self.backend,
                operation=operation,
            )
        if isinstance(error, CommitFailed) and isinstance(error.__cause__, Exception):
            error = error.__cause__
        lost = isinstance(error, exc.DBAPIError) and error.connection_invalidated
        if isinstance(error, self._refused) and not lost:
            refused = error.orig if isinstance(error, exc.DBAPIError) else error
            return StoreError(
                f"The session store ({self.backend}) refused a statement in "
                f"{operation}(): {type(refused).__name__}"
            )
        cause = error.orig if isinstance(error, exc.DBAPIError) else error
        return StoreUnavailable(
            f"The session store is unavailable: {type(cause).__name__}",
            backend=self.backend,
            operation=operation,
        )


def cause(error: BaseException) -> BaseException:
    """What to chain the translated error to: the database's own error."""
    if isinstance(error, (CallOverrun, CommitFailed)) and error.__cause__:
        return error.__cause__
    return error
