"""The exception tree: what each class means and answers."""

from __future__ import annotations

import inspect
import re

import flask_signoff
from flask_signoff import exceptions


def test_too_many_attempts_is_not_a_refused_request() -> None:
    # RequestRefused is the 403 of a refused state-changing request; a 429
    # that asks to wait is not one of those, and `except RequestRefused`
    # must not swallow it.
    assert not issubclass(exceptions.TooManyAttempts, exceptions.RequestRefused)
    assert issubclass(exceptions.TooManyAttempts, exceptions.SignoffError)
    error = exceptions.TooManyAttempts(1.5)
    assert error.status_code == 429
    assert error.retry_after == 2
    assert "2 seconds" in error.description
    for refused in (exceptions.CSRFError, exceptions.CrossSiteRequest):
        assert refused("no").status_code == 403


def test_the_tree_in_the_docstring_is_the_tree() -> None:
    # Each name in the drawing sits under the class it is drawn under.
    doc = exceptions.__doc__ or ""
    drawn: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+)\b", line)
        if match is None or not hasattr(exceptions, match.group(2)):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if parents:
            drawn[match.group(2)] = parents[-1][1]
        parents.append((depth, match.group(2)))
    classes = {
        name: cls
        for name, cls in vars(exceptions).items()
        if inspect.isclass(cls) and issubclass(cls, exceptions.SignoffError)
    }
    assert set(drawn) == set(classes) - {"SignoffError"}
    for name, parent in drawn.items():
        assert classes[name].__bases__[0].__name__ == parent, name
    assert set(classes) <= set(flask_signoff.__all__)
