"""The shape of the package: layers without cycles, small modules.

Read from the source, nothing is run. Imports inside functions count (an
import moved into a function to dodge a cycle is still a cycle); imports
under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import flask_signoff

PACKAGE = Path(flask_signoff.__file__).parent
#: The modules ``state`` may import: the core, settings, errors and stores.
STATE_MAY_IMPORT = ("core", "config", "exceptions", "stores")
#: Longest module of the Flask binding, in lines.
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for sub in node.body for n in ast.walk(sub))
    return skip


def imports_of(name: str) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its code."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_cycle() -> None:
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            for nxt in GRAPH[current]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = sorted(
        f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets if reaches(b, a)
    )
    assert cycles == []


def test_state_is_the_root_of_the_binding() -> None:
    allowed = tuple(f"flask_signoff.{name}" for name in STATE_MAY_IMPORT)
    imported = GRAPH["flask_signoff.state"]
    assert imported
    assert {m for m in imported if not m.startswith(allowed)} == set()


def test_every_module_is_short() -> None:
    lengths = {
        name: len(path.read_text().splitlines()) for name, path in MODULES.items()
    }
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
