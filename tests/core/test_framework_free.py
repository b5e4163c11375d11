"""The core never imports Flask or Werkzeug (core/README.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import flask_signoff.core

CORE = Path(flask_signoff.core.__file__).parent
FORBIDDEN = ("flask", "werkzeug")


def _imports(path: Path) -> list[str]:
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
    modules = sorted(CORE.glob("*.py"))
    assert any(p.name == "tokens.py" for p in modules)
    for path in modules:
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path.name} imports {name}"
            if root == "flask_signoff":
                allowed = name.startswith("flask_signoff.core") or (
                    name == "flask_signoff.exceptions"
                )
                assert allowed, f"{path.name} imports {name}"
