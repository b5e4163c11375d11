"""Password-check attempts of the current request, for the throttle.

:meth:`Signoff.reserve_attempt` and :meth:`Signoff.check_throttle` reserve
an attempt before the password is checked; those of ``check_throttle`` are
settled here at the end of the request (given back when it succeeded).
"""

from __future__ import annotations

import logging

from flask import Response, has_request_context, request

from .core.throttle import Attempt, ReservedAttempts
from .request import RequestState, request_state
from .state import get_state

logger = logging.getLogger("flask_signoff")


def reserve(username: str, ip: str | None, *, settle: bool) -> Attempt:
    """Reserve one attempt for ``username`` and ``ip`` (the client's address
    by default), remembered on the request when there is one."""
    if ip is None and has_request_context():
        ip = request.remote_addr
    attempt = get_state().throttle.reserve(username, ip)
    if has_request_context():
        # Remembered so that record_failure() finds it instead of counting
        # the failure a second time.
        current = request_state()
        if current.attempts is None:
            current.attempts = ReservedAttempts()
        current.attempts.add(attempt, settle=settle)
    return attempt


def settle(response: Response, current: RequestState) -> None:
    """Give back the attempts of ``check_throttle`` reserved in ``current``
    if the request succeeded."""
    if current.attempts is not None:
        for error in current.attempts.settle(succeeded=response.status_code < 400):
            logger.warning("Could not give back a sign-in attempt: %s", error)
