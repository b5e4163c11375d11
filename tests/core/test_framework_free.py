"""The core never imports Flask or Werkzeug (core/README.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import flask_signoff

PACKAGE = Path(flask_signoff.__file__).parent
CORE = sorted((PACKAGE / "core").rglob("*.py"))
FORBIDDEN = ("flask", "werkzeug")


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.append(node.module)
            elif node.level == 2 and node.module:
                # ``from ..x import`` inside core/ reaches flask_signoff.x.
                names.append(f"flask_signoff.{node.module}")
    return names


def test_core_imports_neither_flask_nor_werkzeug() -> None:
    assert any(p.name == "tokens.py" for p in CORE)
    for path in [*CORE, PACKAGE / "exceptions.py"]:
        for name in imports(path):
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path.name} imports {name}"
            if root == "flask_signoff":
                allowed = name.startswith("flask_signoff.core") or (
                    name == "flask_signoff.exceptions"
                )
                assert allowed, f"{path.name} imports {name}"


@pytest.mark.slow  # a new interpreter
def test_core_and_sql_store_load_without_flask() -> None:
    # Importing flask_signoff.core goes through flask_signoff/__init__, which
    # loads the Flask layer; stand in an empty package to see what the core
    # and a store pull in on their own.
    code = (
        "import sys, types;"
        f"m = types.ModuleType('flask_signoff'); m.__path__ = [{str(PACKAGE)!r}];"
        "sys.modules['flask_signoff'] = m;"
        "import flask_signoff.core.sessions, flask_signoff.core.tokens;"
        "import flask_signoff.stores.sql;"
        "assert 'flask' not in sys.modules, 'flask was imported';"
        "assert 'werkzeug' not in sys.modules, 'werkzeug was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
