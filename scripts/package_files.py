"""Check the file lists of a built wheel and sdist, for ``package_check.sh``.

    python scripts/package_files.py <dist dir>

The wheel holds the package only, with every file of ``src/flask_signoff``
(modules, ``py.typed``, the Lua scripts, ``static/``, ``templates/``); the
sdist holds what a packager needs to rebuild and test, and no virtualenv,
benchmark results, instance folder, bytecode or ``node_modules``.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "src/flask_signoff"

SDIST_REQUIRED = (
    "pyproject.toml",
    "README.md",
    "CHANGES.md",
    "LICENSE",
    "SECURITY.md",
    "CONTRIBUTING.md",
    "src/flask_signoff/__init__.py",
    "src/flask_signoff/py.typed",
    "tests/conftest.py",
    "docs/index.md",
    "examples/demo/__init__.py",
    "tests/oidc_provider/package-lock.json",
)
SDIST_FORBIDDEN = (
    ".venv/",
    "benchmarks/results/",
    "instance/",
    "__pycache__/",
    "node_modules/",
)


def package_files() -> set[str]:
    """Every file of the package as git tracks it (the source of truth)."""
    listed = subprocess.run(  # noqa: S603 (a fixed command)
        ["git", "ls-files", "--", PACKAGE],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {name.removeprefix("src/") for name in listed}


def check_wheel(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        names = {n for n in wheel.namelist() if not n.endswith("/")}
    errors = []
    expected = package_files()
    for name in sorted(expected - names):
        errors.append(f"wheel: missing {name}")
    for name in sorted(names - expected):
        if ".dist-info/" not in name:
            errors.append(f"wheel: unexpected {name}")
    if not any(n.endswith(".lua") for n in names):
        errors.append("wheel: no Lua script")
    return errors


def check_sdist(path: Path) -> list[str]:
    with tarfile.open(path) as sdist:
        names = {m.name.partition("/")[2] for m in sdist.getmembers() if m.isfile()}
    errors = [f"sdist: missing {name}" for name in SDIST_REQUIRED if name not in names]
    for name in sorted(names):
        if any(f"/{bad}" in f"/{name}" for bad in SDIST_FORBIDDEN):
            errors.append(f"sdist: should not hold {name}")
    for name in sorted(package_files()):
        if f"src/{name}" not in names:
            errors.append(f"sdist: missing src/{name}")
    return errors


def main(dist: Path) -> int:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    errors = check_wheel(wheel) + check_sdist(sdist)
    for error in errors:
        print(error, file=sys.stderr)
    if not errors:
        print(f"file lists: {wheel.name} and {sdist.name} OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
