"""docs/configuration.md lists every setting the code reads, and no other.

The keys the code reads are found in the code itself, not in a list kept by
hand: every string constant of the package that is a whole ``SIGNOFF_*``
key (the keys of ``config.DEFAULTS``, the keys given to the typed readers,
the names that messages tell the user to set), and, for Flask's and
Flask-Login's settings, every constant key read from a ``config``
(``config["K"]``, ``config.get("K")``, ``"K" in config``) plus the
Flask-Login settings that ``init_app`` warns about. A key added to the code
fails :func:`test_every_signoff_key_the_code_reads_is_on_the_page` until the
page has its row; a key removed fails the reverse test until its row goes.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from functools import cache
from pathlib import Path
from typing import Any

import flask_signoff
from flask_signoff.config import DEFAULTS, FLASK_LOGIN_IGNORED
from tests.support.docs import DOCS

SRC = Path(flask_signoff.__file__).resolve().parent
PAGE = DOCS / "configuration.md"

SIGNOFF_KEY = re.compile(r"SIGNOFF_[A-Z0-9]+(?:_[A-Z0-9]+)*")
CONFIG_KEY = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
#: Names under which the package holds an app's config.
CONFIG_NAMES = {"config", "_config"}


@cache
def package_trees() -> list[ast.AST]:
    return [ast.parse(p.read_text(encoding="utf-8")) for p in SRC.rglob("*.py")]


def signoff_keys_in_code() -> set[str]:
    return {
        node.value
        for tree in package_trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and SIGNOFF_KEY.fullmatch(node.value)
    }


def _is_config(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in CONFIG_NAMES
    return isinstance(node, ast.Name) and node.id in CONFIG_NAMES


def _key_read(node: ast.AST) -> object:
    """The constant key ``node`` reads from a config, if it reads one."""
    if isinstance(node, ast.Subscript) and _is_config(node.value):
        return getattr(node.slice, "value", None)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "setdefault", "pop")
        and _is_config(node.func.value)
        and node.args
    ):
        return getattr(node.args[0], "value", None)
    if (
        isinstance(node, ast.Compare)
        and isinstance(node.ops[0], (ast.In, ast.NotIn))
        and _is_config(node.comparators[0])
    ):
        return getattr(node.left, "value", None)
    return None


def other_keys_in_code() -> set[str]:
    """Flask's and Flask-Login's keys that the package reads or warns about."""
    read = {_key_read(node) for tree in package_trees() for node in ast.walk(tree)}
    keys = {k for k in read if isinstance(k, str) and CONFIG_KEY.fullmatch(k)}
    return {k for k in keys | set(FLASK_LOGIN_IGNORED) if not k.startswith("SIGNOFF_")}


def page_rows() -> list[list[str]]:
    """The cells of every table row of the page (header rows left out)."""
    rows = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0] != "key":
            rows.append(cells)
    return rows


def signoff_rows() -> dict[str, list[str]]:
    rows = {}
    for cells in page_rows():
        for key in re.findall(r"`(SIGNOFF_[A-Z0-9_]+)`", cells[0]):
            assert key not in rows, f"{key} has two rows"
            rows[key] = cells
    return rows


def test_the_scan_finds_the_keys_of_the_registry_and_of_flask_login() -> None:
    # The scan is what the page is held to: it must see what it is meant to.
    assert set(DEFAULTS) <= signoff_keys_in_code()
    assert {"LOGIN_DISABLED", "USE_SESSION_FOR_NEXT", "SECRET_KEY"} <= (
        other_keys_in_code()
    )


def test_every_signoff_key_the_code_reads_is_on_the_page() -> None:
    missing = signoff_keys_in_code() - set(signoff_rows())
    assert not missing, (
        f"add a row (key, type, default, meaning) to {PAGE.name} for: "
        + ", ".join(sorted(missing))
    )


def test_the_page_lists_no_signoff_key_the_code_ignores() -> None:
    unknown = set(signoff_rows()) - signoff_keys_in_code()
    assert not unknown, f"{PAGE.name} lists keys the code never reads: {unknown}"


def test_every_row_gives_type_default_and_meaning() -> None:
    for key, cells in signoff_rows().items():
        assert len(cells) == 4, key
        assert all(cells), key


def test_flask_and_flask_login_keys_are_on_the_page() -> None:
    listed = {k for cells in page_rows() for k in re.findall(r"`(\w+)`", cells[0])}
    missing = other_keys_in_code() - listed
    assert not missing, f"{PAGE.name} has no row for: {sorted(missing)}"


def test_the_warned_flask_login_keys_are_in_the_warned_table() -> None:
    text = PAGE.read_text(encoding="utf-8")
    warned = text[text.index("Warned about") :]
    for key in FLASK_LOGIN_IGNORED:
        assert f"`{key}`" in warned, key


def _shown(value: Any) -> set[str]:
    """How the page may show the default ``value``."""
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
        units = (("days", 86400), ("h", 3600), ("min", 60), ("s", 1))
        return {f"{seconds // n} {unit}" for unit, n in units if seconds % n == 0}
    if isinstance(value, bool):
        return {f"`{value}`"}
    if isinstance(value, int):
        return {str(value), f"{value} s"}
    if isinstance(value, str):
        return {f"`{value}`"}
    if value in ([], {}):
        return {f"`{value}`", "none"}
    return set()


def test_the_defaults_on_the_page_are_the_codes() -> None:
    rows = signoff_rows()
    for key, value in DEFAULTS.items():
        if value is None:
            continue  # derived at init_app: the page says from what
        default = rows[key][2]
        shown = _shown(value)
        assert any(default == s or default.startswith(f"{s} ") for s in shown), (
            key,
            default,
        )
