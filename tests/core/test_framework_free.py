"""The core never imports Flask (core/README.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import flask_signoff

PACKAGE = Path(flask_signoff.__file__).parent
FRAMEWORK_FREE = [*sorted((PACKAGE / "core").rglob("*.py")), PACKAGE / "exceptions.py"]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_core_modules_import_no_framework() -> None:
    assert len(FRAMEWORK_FREE) > 5
    for path in FRAMEWORK_FREE:
        bad = {
            n
            for n in imported_modules(path)
            if n.split(".")[0] in {"flask", "werkzeug"}
        }
        assert not bad, f"{path.name} imports {bad}"


def test_core_imports_without_flask_loaded() -> None:
    code = (
        "import sys, flask_signoff.core.sessions, flask_signoff.core.store;"
        "import flask_signoff.stores.sql;"
        "assert 'flask' not in sys.modules, 'flask was imported'"
    )
    # Importing flask_signoff.core goes through flask_signoff/__init__, which
    # loads the Flask layer; block it to see what the core alone pulls in.
    code = (
        "import sys, types, importlib.util, pathlib;"
        f"p = pathlib.Path({str(PACKAGE)!r});"
        "m = types.ModuleType('flask_signoff'); m.__path__ = [str(p)];"
        "sys.modules['flask_signoff'] = m;" + code
    )
    subprocess.run([sys.executable, "-c", code], check=True)
